"""The transcript feeder: a video's timed text segments.

Extractors of this input name the transcript they read in :meth:`dependencies` (role
``transcript``), e.g. ``whisper`` (extracted in an earlier pass of the same run, or in an
earlier run) or ``bah-transcript`` (the dataset's own, stored as a feature set); the feeder
reads it from the store. An extractor without that dependency is fed the dataset's own
transcript from the adapter (``dataset-transcript``, which stores it). A video whose
transcript is missing or failed fails for the reader with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from affectstore.extract.base import Input
from affectstore.extract.errors import InputError
from affectstore.extract.feeders.base import Decoded, Feeder


class DecodedTranscript(Decoded):
    """A video's stored segments; ``amount`` counts them (none for a silent video), ``units`` at least 1 per video."""

    def __init__(self, segments: Any) -> None:
        super().__init__()
        self.item = segments
        self.amount = float(len(segments.text))
        self.units = max(len(segments.text), 1)


class TranscriptFeeder(Feeder):
    """Timed text segments of each video from the store."""

    input = Input.TRANSCRIPT
    unit = "segments"

    @classmethod
    def group_key(cls, extractor: Any) -> Any:
        return extractor.dependencies().get("transcript")

    def pool_units(self) -> int:
        return 4096

    def order_key(self, entry: Any) -> int:
        return 0

    def decode(self, entry: Any, wanted: Mapping[int, Sequence[str]]) -> Decoded:
        from affectstore.store import StoreError
        from affectstore.store.store import TextSegments

        ctx = self.context
        feature = next(ctx.extractors[i].dependencies().get("transcript") for i in wanted)
        if feature is None:
            from affectstore.datasets.base import DatasetError

            try:
                segments = ctx.adapter.transcript(entry.id)
            except DatasetError as error:
                raise InputError(f"the dataset gives no transcript for this video: {error}") from None
            return DecodedTranscript(TextSegments(
                np.array([s.start for s in segments], dtype=np.float64),
                np.array([s.end for s in segments], dtype=np.float64),
                [s.text for s in segments],
            ))
        try:
            segments = ctx.store.read_video(ctx.dataset, feature, entry.id)
        except StoreError as error:
            raise InputError(f"no transcript {feature!r} for this video in the store ({error}); extract {feature} first") from None
        if not hasattr(segments, "text"):
            raise InputError(f"feature set {feature!r} holds numbers, not a transcript; name a text feature set")
        return DecodedTranscript(segments)
