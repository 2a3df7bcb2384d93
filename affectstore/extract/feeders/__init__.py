"""Feeders: one per input kind (audio, faces, frames, transcript); see :mod:`.base`.

A new input kind is one module with a :class:`~affectstore.extract.feeders.base.Feeder`
subclass and one line in :data:`FEEDERS`.
"""

from __future__ import annotations

from affectstore.extract.base import Input
from affectstore.extract.feeders.audio import AudioFeeder
from affectstore.extract.feeders.base import Decoded, FeedContext, Feeder
from affectstore.extract.feeders.faces import FacesFeeder
from affectstore.extract.feeders.frames import FramesFeeder
from affectstore.extract.feeders.transcript import TranscriptFeeder

FEEDERS: dict[Input, type[Feeder]] = {
    Input.AUDIO: AudioFeeder,
    Input.FACES: FacesFeeder,
    Input.FRAMES: FramesFeeder,
    Input.TRANSCRIPT: TranscriptFeeder,
}


def feeder_class(kind: Input) -> type[Feeder]:
    """The feeder of an input kind."""
    return FEEDERS[kind]


__all__ = ["FEEDERS", "AudioFeeder", "Decoded", "FacesFeeder", "FeedContext", "Feeder", "FramesFeeder", "TranscriptFeeder", "feeder_class"]
