"""Feature stores with planted signal for a generated dataset (see `affectstore.testing.datasets`).

Trainer tests need stores whose features predict the labels without running any model:
`planted_store` writes made-up feature sets, each a (T, D) sequence per video whose first
columns are ``gain * label + noise``. Video-level datasets (EMI, clips) plant the video's
targets; frame-level ones (BAH, Aff-Wild2) the label of the frame nearest each sample.
``face=True`` features have one sample per face crop (so frames without a crop are not
covered); ``rate=None`` features have one sample per transcript segment (BAH) or a single
row (``kind="video"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstore.store import FeatureStore


@dataclass(frozen=True)
class Planted:
    """One made-up feature set: ``dim`` columns at ``rate`` Hz carrying ``gain`` x label plus ``noise``."""

    dim: int = 8
    rate: float | None = 25.0
    gain: float = 2.0
    noise: float = 0.5
    face: bool = False
    kind: str = "frames"
    config: str = "v1"
    task: str | None = None  # frame labels to plant ("bah", "expr", "va"); None: the video labels
    columns: int | None = None  # how many label columns to plant (None: all that fit)
    order: tuple[int, ...] | None = None  # EXPR: class c is planted in column order[c] (e.g. AffectNet logits)


def provenance(dim: int, rate, kind: str = "frames", config: str = "v1") -> dict:
    """Provenance of a made-up feature set (the hash changes with ``config``)."""
    return {"extractor": "synthetic", "config_hash": f"hash-{config}", "dim": dim, "dtype": "float32",
            "kind": kind, "rate": rate, "config": {"name": config}}


def write_feature(store: FeatureStore, dataset: str, name: str, videos: dict, rate, kind: str = "frames",
                  config: str = "v1") -> None:
    """Write ``videos``: id -> (values (T, D), times (T,)) as one feature set."""
    dim = next(iter(videos.values()))[0].shape[1]
    prov = provenance(dim, rate, kind, config)
    store.create_feature(dataset, name, prov)
    for vid, (values, times) in videos.items():
        store.write_video(dataset, name, vid, values, times, config_hash=prov["config_hash"])


def _frame_target(built, task: str, vid: str, fps: float, first: int):
    labels = built.frame_labels[task][vid]

    def at(t: float) -> np.ndarray:
        k = min(max(int(round(t * fps)), 0), len(labels) - 1)
        y = np.asarray(labels[k], dtype=np.float64)
        return y if task == "expr" else np.where(y == -5.0, 0.0, y)  # VA's invalid code plants nothing

    return at


def planted_store(path: str | Path, dataset: str, built, features: dict[str, Planted], duration: float,
                  fps: float | None = None, seed: int = 0) -> Path:
    """Write a store at ``path`` with one planted feature set per entry of ``features``; returns ``path``.

    ``built``: what the dataset builder returned; ``duration``: the videos' length in
    seconds; ``fps``: the label frame rate of frame-level datasets (BAH 24, Aff-Wild2 the
    builder's fps). Aff-Wild2 frame i is at ``(i - 1) / fps``, BAH frame N at ``N / fps``.
    EXPR classes are planted one-hot (column = class).
    """
    rng = np.random.default_rng(seed)
    st = FeatureStore.open(path, mode="a")
    first = 1 if dataset == "affwild2" else 0
    for name, f in features.items():
        videos = {}
        for vid in built.ids:
            if f.kind == "video":
                times = np.zeros(1)
            elif f.face:
                n = len(built.frame_labels[f.task][vid]) if f.task else int(round(duration * (f.rate or fps)))
                missing = set(built.missing_crops.get(vid, []))
                frames = np.array([i for i in range(first, first + n) if i not in missing])
                times = (frames - first) / float(f.rate or fps)
            elif f.rate is None:
                times = np.array([s[0] for s in built.transcripts[vid]]) if built.transcripts.get(vid) else np.zeros(1)
            else:
                times = np.arange(int(round(duration * f.rate))) / float(f.rate)
            values = rng.normal(0, f.noise, size=(len(times), f.dim)).astype(np.float32)
            if f.task is not None:
                target = _frame_target(built, f.task, vid, fps, first)
                for i, t in enumerate(times):
                    y = target(t)
                    if f.task == "expr":
                        col = int(y[0]) if f.order is None or y[0] < 0 else f.order[int(y[0])]
                        if y[0] >= 0 and col < f.dim:
                            values[i, col] += f.gain
                    else:
                        k = min(len(y), f.dim, f.columns or len(y))
                        values[i, :k] += f.gain * y[:k]
            elif vid in built.video_labels:
                y = np.asarray(built.video_labels[vid], dtype=np.float64)
                k = min(len(y), f.dim, f.columns or len(y))
                values[:, :k] += f.gain * y[:k]
            videos[vid] = (values, np.asarray(times, dtype=np.float64))
        write_feature(st, dataset, name, videos, f.rate, f.kind, f.config)
    return Path(path)
