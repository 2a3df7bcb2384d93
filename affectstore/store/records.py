"""What the store hands out: one video's arrays or segments, failure records, feature tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import numpy as np

from affectstore.store.errors import UnknownVideoError


@dataclass(frozen=True)
class VideoArrays:
    """One video's frames: `values` (T x D) and `times` (T, seconds from the video start)."""

    values: np.ndarray
    times: np.ndarray


@dataclass(frozen=True)
class TextSegments:
    """One video's transcript segments: `start`, `end` (seconds) and `text`, one entry per segment."""

    start: np.ndarray
    end: np.ndarray
    text: list[str]


@dataclass(frozen=True)
class Failure:
    """Why a video could not be extracted."""

    video_id: str
    stage: str
    reason: str
    time: str
    config_hash: str | None


@dataclass(frozen=True)
class FeatureSetInfo:
    """A feature set with its provenance and counts."""

    dataset: str
    feature: str
    provenance: dict[str, Any]
    n_complete: int
    n_failed: int


class FeatureTable:
    """All requested videos of one feature, concatenated: row block `offsets[i]:offsets[i+1]` is video `ids[i]`.

    Indexing by id returns views, so a 1.3 GB feature is held once in memory.
    """

    def __init__(self, ids: list[str], values: np.ndarray, times: np.ndarray, offsets: np.ndarray):
        self.ids = list(ids)
        self.values = values
        self.times = times
        self.offsets = offsets
        self._index = {vid: i for i, vid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __getitem__(self, video_id: str) -> VideoArrays:
        try:
            i = self._index[video_id]
        except KeyError:
            raise UnknownVideoError(f"Video {video_id!r} is not in this feature table ({len(self)} videos).") from None
        a, b = self.offsets[i], self.offsets[i + 1]
        return VideoArrays(self.values[a:b], self.times[a:b])

    @property
    def lengths(self) -> np.ndarray:
        """Number of frames of each video, in `ids` order."""
        return np.diff(self.offsets)


def now() -> str:
    """The current UTC time as ISO 8601 seconds (what records store)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
