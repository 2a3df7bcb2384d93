"""The frames feeder: video frames sampled at the pass's rate, each with its presentation time.

Frames are decoded one at a time and handed on in chunks of ``RunOptions.face_chunk``
frames, so memory does not grow with the video's length. Extractors of this input set
``frame_rate`` (frames per second, or None for every frame); those with different rates run
in separate passes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from affectstore.extract.base import Extractor, Input
from affectstore.extract.errors import ExtractionError
from affectstore.extract.feeders.base import ChunkedDecoded, Decoded, Feeder
from affectstore.extract.images import ImageBatch


def frame_chunks(path: Any, rate: float | None, chunk: int) -> Iterator[ImageBatch]:
    """Frames of ``path`` at ``rate`` fps in ImageBatch chunks of at most ``chunk`` frames."""
    from affectstore.media import iter_frames

    times: list[float] = []
    images: list[np.ndarray] = []
    for time, image in iter_frames(path, rate=rate):
        times.append(time)
        images.append(image)
        if len(images) == chunk:
            yield ImageBatch(np.asarray(times, dtype=np.float64), images)
            times, images = [], []
    if images:
        yield ImageBatch(np.asarray(times, dtype=np.float64), images)


def audio_only(entry: Any) -> bool:
    """An entry that is a sound file by nature (no video, no crops, but audio): no frames or faces."""
    return entry.video is None and entry.audio is not None and getattr(entry, "faces", None) is None


def require_video(entry: Any) -> Any:
    """The entry's video file, or an error that says why there is none."""
    if entry.video is None:
        if entry.audio is not None:
            raise ExtractionError(f"{entry.id!r} is audio only ({entry.audio.name}): there are no frames or faces in it")
        why = getattr(entry, "problem", None) or "missing from its layout"
        raise ExtractionError(f"no video file for video {entry.id!r} in the dataset ({why}); add the file or leave the video out")
    return entry.video


class FramesFeeder(Feeder):
    """Sampled frames of each video (the entry's ``video`` file)."""

    input = Input.FRAMES
    unit = "frames"

    @classmethod
    def group_key(cls, extractor: Extractor[Any]) -> Any:
        return getattr(extractor, "frame_rate", None)

    def pool_units(self) -> int:
        return self.context.options.pool_faces

    def applies(self, entry: Any) -> bool:
        return not audio_only(entry)

    def decode(self, entry: Any, wanted: Mapping[int, Sequence[str]]) -> Decoded:
        rate = next((getattr(self.context.extractors[i], "frame_rate", None) for i in wanted), None)
        chunks = frame_chunks(require_video(entry), rate, self.context.options.face_chunk)
        return ChunkedDecoded(chunks, ImageBatch.concatenate)
