"""The transcript feeder: a video's timed text segments, read from a transcript feature set in the store.

Extractors of this input name the transcript they read in :meth:`dependencies` (role
``transcript``), e.g. ``whisper`` (extracted in an earlier pass of the same run, or in an
earlier run) or a dataset's own transcripts stored as a feature set. A video whose
transcript is missing or failed fails for the reader with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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

        ctx = self.context
        feature = next(ctx.extractors[i].dependencies()["transcript"] for i in wanted)
        try:
            segments = ctx.store.read_video(ctx.dataset, feature, entry.id)
        except StoreError as error:
            raise InputError(f"no transcript {feature!r} for this video in the store ({error}); extract {feature} first") from None
        if not hasattr(segments, "text"):
            raise InputError(f"feature set {feature!r} holds numbers, not a transcript; name a text feature set")
        return DecodedTranscript(segments)
