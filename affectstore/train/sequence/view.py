"""The sequence view of a batch: per item, each feature's ragged (T_i x D) array with its times.

An item is a video (video-level tasks) or a target frame of a video (frame-level tasks:
``times[r]`` is the frame's time, and estimators cut windows around it, see
`affectstore.train.sequence.streams`). Nothing is pooled or padded here: padding happens per
mini-batch in ``collate``.

Arrays come from the store through `VideoSource`, which reads whole chunks of videos with
`FeatureStore.load_feature` and keeps them under a byte budget. When the first chunk shows
that every video fits in the budget, the rest is read in one call (which uses the store's
packed copy); otherwise chunks are read as batches need them and the least recently used
are dropped, so memory stays bounded whatever the dataset size. `SequenceView.batches`
orders items chunk by chunk in that case (chunks shuffled, items shuffled within a chunk),
so every chunk is read once per epoch.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 1_500_000_000
DEFAULT_CHUNK_VIDEOS = 256


class VideoSource:
    """Per-video arrays of some frame features of one store dataset, read in chunks and cached.

    ``infos``: feature name -> `affectstore.train.data.FeatureInfo`; ``video_ids``: the videos
    this source may be asked for (their order defines the chunks).
    """

    def __init__(self, store, dataset: str, infos: dict, video_ids: Sequence[str],
                 cache_bytes: int = DEFAULT_CACHE_BYTES, chunk_videos: int = DEFAULT_CHUNK_VIDEOS):
        self.store = store
        self.dataset = dataset
        self.infos = dict(infos)
        self.video_ids = list(dict.fromkeys(video_ids))
        self.cache_bytes = int(cache_bytes)
        self.chunk_videos = int(chunk_videos)
        self.present = {f: set(store.completed(dataset, f)) & set(self.video_ids) for f in self.infos}
        self._chunk_of = {v: i // self.chunk_videos for i, v in enumerate(self.video_ids)}
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._bytes: dict[int, int] = {}
        self.fits: bool | None = None  # known after the first read
        self.reads = 0  # store calls made (for tests and benchmarks)

    @property
    def dims(self) -> dict[str, int]:
        return {f: i.dim for f, i in self.infos.items()}

    def chunk_of(self, video_id: str) -> int:
        return self._chunk_of[video_id]

    def _read(self, video_ids: list[str]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        out: dict[str, dict] = {v: {} for v in video_ids}
        for f in self.infos:
            ids = [v for v in video_ids if v in self.present[f]]
            if not ids:
                continue
            # pack=None lets the store use its packed copy when most of the feature is asked for.
            table = self.store.load_feature(self.dataset, f, ids=ids, pack=None if len(ids) > self.chunk_videos else False)
            self.reads += 1
            for v in ids:
                arr = table[v]
                if len(arr.times):
                    # Copies: a view would keep the whole table (or pack) alive after eviction.
                    out[v][f] = (np.array(arr.values), np.array(arr.times, dtype=np.float64))
        return out

    @staticmethod
    def _size(videos: dict) -> int:
        return sum(a.nbytes + t.nbytes for feats in videos.values() for a, t in feats.values())

    def _load_chunks(self, chunks: list[int]) -> None:
        ids = [v for c in chunks for v in self._chunk_videos(c)]
        data = self._read(ids)
        for c in chunks:
            part = {v: data[v] for v in self._chunk_videos(c)}
            self._cache[c] = part
            self._bytes[c] = self._size(part)
        if self.fits is None:
            per_video = sum(self._bytes[c] for c in chunks) / max(len(ids), 1)
            self.fits = per_video * len(self.video_ids) <= self.cache_bytes
            logger.info("Sequence source %s: ~%.1f MB for %d videos; %s.", list(self.infos),
                        per_video * len(self.video_ids) / 1e6, len(self.video_ids),
                        "held in memory" if self.fits else "streamed chunk by chunk")
            if self.fits:
                rest = [c for c in range(self.n_chunks) if c not in self._cache]
                if rest:
                    self._load_chunks(rest)
        while self.fits is False and sum(self._bytes.values()) > self.cache_bytes and len(self._cache) > 1:
            old, _ = self._cache.popitem(last=False)
            self._bytes.pop(old)

    @property
    def n_chunks(self) -> int:
        return (len(self.video_ids) + self.chunk_videos - 1) // self.chunk_videos

    def _chunk_videos(self, c: int) -> list[str]:
        return self.video_ids[c * self.chunk_videos:(c + 1) * self.chunk_videos]

    def get(self, video_id: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{feature: (values (T, D), times (T,))} of one video; features it lacks are absent."""
        c = self._chunk_of[video_id]
        if c not in self._cache:
            self._load_chunks([c])
        else:
            self._cache.move_to_end(c)
        return self._cache[c][video_id]


class SequenceView:
    """Items (rows) over a `VideoSource`: ``videos[r]`` and, at frame level, ``times[r]`` (seconds).

    Indexing with an int array or a boolean mask gives a view of those rows sharing the source.
    """

    def __init__(self, source: VideoSource, videos: Sequence[str], times: np.ndarray | None = None,
                 frames: np.ndarray | None = None):
        self.source = source
        self.videos = np.asarray(list(videos), dtype=object)
        self.times = None if times is None else np.asarray(times, dtype=np.float64)
        self.frames = None if frames is None else np.asarray(frames, dtype=np.int64)
        if self.times is not None and len(self.times) != len(self.videos):
            raise ValueError(f"times must give one time per item: {len(self.times)} times for {len(self.videos)} items.")

    @property
    def level(self) -> str:
        return "video" if self.times is None else "frame"

    @property
    def features(self) -> list[str]:
        return list(self.source.infos)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index) -> SequenceView:
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SequenceView(self.source, self.videos[idx], None if self.times is None else self.times[idx],
                            None if self.frames is None else self.frames[idx])

    def has(self, feature: str) -> np.ndarray:
        """(N,) whether each item's video has ``feature``."""
        present = self.source.present[feature]
        return np.fromiter((v in present for v in self.videos), dtype=bool, count=len(self.videos))

    @property
    def covered(self) -> np.ndarray:
        """Items whose video has at least one of the features."""
        out = np.zeros(len(self), dtype=bool)
        for f in self.features:
            out |= self.has(f)
        return out

    def item(self, r: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The raw arrays of item ``r``'s video (whole sequences; windows are cut by the streams)."""
        return self.source.get(self.videos[r])

    def batches(self, rows: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
        """Row indices in mini-batches; shuffled with ``rng`` (None: in order).

        While the source streams (its videos do not fit its memory budget), items are grouped by
        the chunk of their video: chunks in random order, items shuffled within a chunk.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rng is not None:
            rows = rows[rng.permutation(len(rows))]
        if self.source.fits is not True:
            chunk = np.fromiter((self.source.chunk_of(v) for v in self.videos[rows]), dtype=np.int64, count=len(rows))
            if rng is not None:
                rank = rng.permutation(self.source.n_chunks)
                rows = rows[np.argsort(rank[chunk], kind="stable")]
            else:
                rows = rows[np.argsort(chunk, kind="stable")]
        for a in range(0, len(rows), batch_size):
            yield rows[a:a + batch_size]
