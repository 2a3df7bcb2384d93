"""Loading a task's features from the store and its labels from the dataset adapter.

Two shapes of data:

- video level (`load_video_features`): one row per video. Frame features are pooled
  over time (``mean`` or ``stat`` = concat(mean, std, min, max)); per-video vectors
  (provenance kind ``"video"``) are used as they are.
- frame level (`load_frame_data`): one row per labelled frame. Every feature sequence
  is put onto the label frames' times (``interp1d`` over the stored timestamps by
  default, or ``position``, see `affectstore.train.align`). A label frame is
  *covered* by a feature when a stored sample lies within half a sample period
  (``0.5 / rate``) of it; frames without a face crop are therefore not covered by a
  face feature. Models train on covered frames only, and predictions for uncovered
  frames are interpolated from their neighbours (tail padded) by the caller.

Dims, rates and kinds always come from the store's provenance (`FeatureInfo`), never
from a recipe. Feature names are checked against the store first; an unknown name
raises `TrainError` listing the available ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from affectstore.store import FeatureStore, UnknownDatasetError
from affectstore.train.align import align_to_frames
from affectstore.train.errors import TrainError
from affectstore.train.pooling import POOLED_WIDTH, POOLING_METHODS, pool_sequences

logger = logging.getLogger(__name__)

CHUNK_VIDEOS = 2000  # videos per read when pooling: bounds memory on EMI-scale 1024-d frame features


@dataclass(frozen=True)
class FeatureInfo:
    """What the store says about one feature set."""

    name: str
    config_hash: str
    dim: int
    rate: float | None
    kind: str
    dtype: str
    extractor: str | None = None
    input: str | None = None

    def as_dict(self) -> dict:
        return {
            "name": self.name, "config_hash": self.config_hash, "dim": self.dim, "rate": self.rate,
            "kind": self.kind, "dtype": self.dtype, "extractor": self.extractor, "input": self.input,
        }


def open_store(path) -> FeatureStore:
    """Open a store read-only (training never writes to it)."""
    return FeatureStore.open(path, mode="r")


def feature_infos(store: FeatureStore, dataset: str, names: Sequence[str]) -> dict[str, FeatureInfo]:
    """Provenance facts of each named feature set; unknown names list the available ones."""
    try:
        available = store.features(dataset)
    except UnknownDatasetError:
        raise TrainError(
            f"Dataset {dataset!r} is not in store {store.location}. Datasets there: "
            f"{', '.join(store.datasets()) or 'none'}. Pass --store-dataset NAME (or store_dataset in the "
            "recipe), or extract features first with `affect extract`."
        ) from None
    if not names:
        raise TrainError(f"No features named. Pass --features with some of: {', '.join(available) or 'none'}.")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise TrainError(
            f"Unknown feature(s) {', '.join(map(repr, unknown))} in dataset {dataset!r} of store {store.location}. "
            f"Available features: {', '.join(available) or 'none'}. Fix --features (or the recipe's features), "
            "or extract the missing ones with `affect extract`."
        )
    if len(set(names)) != len(names):
        raise TrainError(f"Features must be named once each. Got {list(names)}.")
    out = {}
    for n in names:
        p = store.provenance(dataset, n)
        out[n] = FeatureInfo(
            name=n, config_hash=str(p["config_hash"]), dim=int(p["dim"]), rate=p.get("rate"),
            kind=str(p["kind"]), dtype=str(p.get("dtype")), extractor=p.get("extractor"), input=p.get("input"),
        )
        if out[n].kind == "text":
            raise TrainError(
                f"Feature {n!r} holds transcript segments (kind 'text'), which a model cannot take as numbers. "
                "Train on an embedding of the transcripts instead (e.g. minilm, gte or gigachat features)."
            )
    return out


def _load_chunks(store: FeatureStore, dataset: str, feature: str, ids: list[str], chunk: int):
    """Yield (ids, FeatureTable) for consecutive chunks of ``ids`` (one read when small)."""
    if len(ids) <= chunk:
        yield ids, store.load_feature(dataset, feature, ids=ids)
        return
    # Per-video reads: a packed copy would be read whole for every chunk.
    for a in range(0, len(ids), chunk):
        part = ids[a:a + chunk]
        yield part, store.load_feature(dataset, feature, ids=part, pack=False)


def load_video_features(
    store: FeatureStore,
    dataset: str,
    info: FeatureInfo,
    ids: Sequence[str],
    pooling: str = "mean",
    chunk_videos: int = CHUNK_VIDEOS,
) -> tuple[np.ndarray, np.ndarray]:
    """One row per video: ``(X (N, D'), present (N,) bool)``.

    Videos that are not complete in the store (failed, not yet extracted) or have no
    frames get a row of NaN and ``present`` False; the caller decides to drop or fill them.
    """
    if pooling not in POOLING_METHODS:
        raise TrainError(f"pooling of feature {info.name!r} must be one of {POOLING_METHODS}. Got {pooling!r} instead.")
    method = "mean" if info.kind == "video" else pooling
    n_out = POOLED_WIDTH[method] * info.dim
    X = np.full((len(ids), n_out), np.nan, dtype=np.float32)
    present = np.zeros(len(ids), dtype=bool)
    done = set(store.completed(dataset, info.name))
    pos = {vid: i for i, vid in enumerate(ids)}
    wanted = [v for v in ids if v in done]
    for part, table in _load_chunks(store, dataset, info.name, wanted, chunk_videos):
        lengths = table.lengths
        keep = [v for v, n in zip(table.ids, lengths) if n > 0]
        if not keep:
            continue
        seqs = [table[v].values for v in keep]
        pooled = pool_sequences(seqs, method=method, ids=keep)
        rows = np.array([pos[v] for v in keep])
        X[rows] = pooled
        present[rows] = True
    n_missing = int((~present).sum())
    if n_missing:
        logger.warning(
            "%s/%s: %d of %d videos have no features (not extracted, failed or empty).",
            dataset, info.name, n_missing, len(ids),
        )
    return X, present


@dataclass
class FrameData:
    """Rows are labelled frames of several videos, video by video in time order.

    ``offsets[i]:offsets[i+1]`` are the rows of ``video_ids[i]``; ``y`` is (R, K) float
    (None for unlabelled splits); ``valid`` marks rows with a usable label;
    ``X[name]`` (R, D) the aligned feature and ``covered[name]`` (R,) where it has data.
    """

    video_ids: list[str]
    offsets: np.ndarray
    frames: np.ndarray
    times: np.ndarray
    y: np.ndarray | None
    valid: np.ndarray
    X: dict[str, np.ndarray] = field(default_factory=dict)
    covered: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def groups(self) -> np.ndarray:
        """Video id of each row."""
        return np.repeat(np.asarray(self.video_ids, dtype=object), np.diff(self.offsets))

    def __len__(self) -> int:
        return int(self.offsets[-1])


def _frame_rate(adapter, video_id: str) -> float | None:
    if hasattr(adapter, "video_fps"):
        return float(adapter.video_fps(video_id))
    rate = getattr(adapter, "fps", None)
    return float(rate) if rate else None


def label_frames(adapter, video_id: str, labelled: bool, first_frame: int | None = None):
    """(frames, times, values (F, K) or None, valid) of one video.

    Labelled splits use the adapter's frame labels. Unlabelled ones (test) list the
    frames to predict: with ``first_frame`` (Aff-Wild2: 1, BAH: 0) every frame of the
    video, from ``first_frame`` to its last one (the adapter's ``frame_count``: the
    container's count, decoded timestamps where it is missing), frames without a face
    crop included: the challenge wants a prediction for each (they are not covered by
    face features, so their predictions are interpolated from neighbours, the tail padded
    with the last value). Frame n is at ``(n - first_frame) / fps``, as the adapters time
    labels and crops. Without a frame count (no readable video) the frames run to the
    last crop; without ``first_frame``, only frames with a crop are listed.
    """
    if labelled:
        fl = adapter.frame_labels(video_id)
        return fl.frames, fl.times, np.asarray(fl.values, dtype=np.float64), np.asarray(fl.valid, dtype=bool)
    crops = adapter.face_crops(video_id)
    count = adapter.frame_count(video_id) if first_frame is not None and hasattr(adapter, "frame_count") else None
    if len(crops) == 0 and not count:
        raise TrainError(
            f"Video {video_id!r} has neither frame labels, face crops nor a readable video, so there are no frames "
            "to predict. Check its video and face-crop folder in the dataset root."
        )
    frames = np.asarray(crops.frames, dtype=np.int64)
    times = np.asarray(crops.times, dtype=np.float64)
    if first_frame is None:
        return frames, times, None, np.ones(len(frames), dtype=bool)
    last = first_frame + int(count) - 1 if count else (int(frames[-1]) if len(frames) else first_frame - 1)
    if len(frames) and frames[-1] > last:
        logger.warning("%s: face crops run to frame %d but the video has %d frames; listing up to the last crop.",
                       video_id, int(frames[-1]), count)
        last = int(frames[-1])
    every = np.arange(min(int(first_frame), int(frames[0]) if len(frames) else first_frame), last + 1, dtype=np.int64)
    fps = _frame_rate(adapter, video_id)
    if fps:
        times = (every - first_frame) / fps
    elif len(frames) >= 2 and frames[-1] > frames[0]:
        step = (times[-1] - times[0]) / float(frames[-1] - frames[0])  # seconds per frame, from the crops
        times = times[0] + (every - frames[0]) * step
    else:
        raise TrainError(f"Cannot time the frames of {video_id!r}: no frame rate and fewer than 2 face crops.")
    if len(every) > len(frames):
        logger.debug("%s: %d frames without a face crop added to the frames to predict.", video_id, len(every) - len(frames))
    return every, times, None, np.ones(len(every), dtype=bool)


def _dedupe(values: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop samples with a repeated timestamp (the store allows non-decreasing times)."""
    if times.size > 1 and not np.all(np.diff(times) > 0):
        _, first = np.unique(times, return_index=True)
        return values[first], times[first]
    return values, times


def coverage(sample_times: np.ndarray, frame_times: np.ndarray, rate: float | None) -> np.ndarray:
    """Which frames have a stored sample within half a sample period (inside the span when rate is None)."""
    if sample_times.size == 0:
        return np.zeros(len(frame_times), dtype=bool)
    if rate is None:
        return (frame_times >= sample_times[0] - 1e-6) & (frame_times <= sample_times[-1] + 1e-6)
    idx = np.clip(np.searchsorted(sample_times, frame_times), 1, max(len(sample_times) - 1, 1))
    left = sample_times[np.maximum(idx - 1, 0)]
    right = sample_times[np.minimum(idx, len(sample_times) - 1)]
    dist = np.minimum(np.abs(frame_times - left), np.abs(frame_times - right))
    return dist <= 0.5 / float(rate) + 1e-6


def load_frame_data(
    store: FeatureStore,
    dataset: str,
    adapter,
    infos: dict[str, FeatureInfo],
    video_ids: Sequence[str],
    labelled: bool = True,
    align: str = "interp1d",
    first_frame: int | None = None,
) -> FrameData:
    """Label frames of ``video_ids`` with every feature aligned onto them (``first_frame``: see `label_frames`)."""
    parts = [label_frames(adapter, v, labelled, first_frame) for v in video_ids]
    lengths = np.array([len(p[0]) for p in parts], dtype=np.int64)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    frames = np.concatenate([p[0] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    times = np.concatenate([p[1] for p in parts]).astype(np.float64) if parts else np.zeros(0)
    y = np.concatenate([p[2] for p in parts]) if labelled and parts else None
    valid = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, bool)
    data = FrameData(list(video_ids), offsets, frames, times, y, valid)
    for name, info in infos.items():
        X = np.zeros((len(frames), info.dim), dtype=np.float32)
        cov = np.zeros(len(frames), dtype=bool)
        done = set(store.completed(dataset, name))
        wanted = [v for v in video_ids if v in done]
        table = store.load_feature(dataset, name, ids=wanted) if wanted else None
        for i, vid in enumerate(video_ids):
            a, b = offsets[i], offsets[i + 1]
            if table is None or vid not in table or b == a:
                continue
            arr = table[vid]
            if len(arr.times) == 0:
                continue
            values, t = _dedupe(np.asarray(arr.values, dtype=np.float32), np.asarray(arr.times, dtype=np.float64))
            ft = times[a:b]
            X[a:b] = align_to_frames(values, t, ft, method=align)
            cov[a:b] = True if align == "position" else coverage(t, ft, info.rate)
        n_none = len(video_ids) - len(wanted)
        if n_none:
            logger.warning("%s/%s: %d of %d videos have no features; their frames are not covered.",
                           dataset, name, n_none, len(video_ids))
        data.X[name] = X
        data.covered[name] = cov
    return data
