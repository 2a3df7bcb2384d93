"""Feature stores with planted *temporal* signal: labels that the order of frames carries and
pooling cannot see.

- `make_order_store` (video level, EMI-like): each video's ``audio`` (50 Hz-like) and ``face``
  sequences are i.i.d. Gaussian values; for output k, the value in column k of the LAST frame is
  the ``round(y_k * (T - 1))``-th smallest of that column, so the multiset of a column (hence
  its mean, std, min and max, i.e. STAT pooling) does not depend on y at all, while the last
  frame ranks it. A ``text`` per-video vector is pure noise.
- `make_slope_store` (frame level, BAH/VA-like): one ``audio`` and one ``face`` sequence per
  video are random walks whose slope carries the frame label (up in positive stretches, down
  in negative ones) on top of a random per-video level, so the value at a frame (what an
  aligned row sees) says little while a window around it shows the direction.

Both return the store path, per-video labels / per-frame labels and times, and the ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectstore.store import FeatureStore


@dataclass
class SyntheticStore:
    """What a builder wrote: store path, dataset name, ids, labels (video: id -> (K,); frame: id -> (T,) or (T, K))."""

    path: Path
    dataset: str
    ids: list[str]
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    frame_times: dict[str, np.ndarray] = field(default_factory=dict)


def _feature(st: FeatureStore, dataset: str, name: str, dim: int, rate, kind: str, inp: str) -> str:
    prov = {"extractor": "synthetic", "config_hash": f"seq-{name}", "dim": dim, "dtype": "float32", "kind": kind,
            "rate": rate, "input": inp, "config": {"name": name}}
    st.create_feature(dataset, name, prov)
    return prov["config_hash"]


def _order_column(rng, T: int, y: float) -> np.ndarray:
    v = rng.normal(size=T)
    order = np.argsort(v)
    last = order[int(round(y * (T - 1)))]
    rest = rng.permutation(np.delete(np.arange(T), last))
    return np.concatenate([v[rest], v[[last]]])


def make_order_store(path, n_videos: int = 80, n_outputs: int = 2, dim: int = 6, frames=(20, 40),
                     dataset: str = "emi", seed: int = 0, no_face: int = 3) -> SyntheticStore:
    """Video-level store of ``audio`` (rate 50), ``face`` (rate 6; ``no_face`` videos lack it) and ``text``."""
    rng = np.random.default_rng(seed)
    st = FeatureStore.open(path, mode="a")
    ids = [f"{k:05d}" for k in range(n_videos)]
    h_audio = _feature(st, dataset, "audio", dim, 50.0, "frames", "audio")
    h_face = _feature(st, dataset, "face", dim, 6.0, "frames", "faces")
    h_text = _feature(st, dataset, "text", 4, None, "video", "transcript")
    out = SyntheticStore(Path(path), dataset, ids)
    for i, vid in enumerate(ids):
        y = rng.uniform(0, 1, n_outputs)
        out.labels[vid] = y
        for name, h, rate, n_sig in (("audio", h_audio, 50.0, n_outputs), ("face", h_face, 6.0, 1)):
            if name == "face" and i < no_face:
                continue
            T = int(rng.integers(frames[0], frames[1] + 1))
            x = rng.normal(size=(T, dim)).astype(np.float32)
            for k in range(min(n_sig, dim)):
                x[:, k] = _order_column(rng, T, y[k])
            st.write_video(dataset, name, vid, x, np.arange(T) / rate, config_hash=h)
        st.write_video(dataset, "text", vid, rng.normal(size=(1, 4)).astype(np.float32), np.zeros(1), config_hash=h_text)
    return out


def make_slope_store(path, n_videos: int = 24, duration: float = 20.0, label_rate: float = 5.0, dim: int = 4,
                     dataset: str = "bah", seed: int = 0, continuous: bool = False) -> SyntheticStore:
    """Frame-level store: ``audio`` (10 Hz) and ``face`` (5 Hz) random walks whose slope is the label.

    Labels at ``label_rate`` Hz: 0/1 stretches of 2-5 s (``continuous``: a value in [-1, 1]
    per stretch, the slope's size and sign).
    """
    rng = np.random.default_rng(seed)
    st = FeatureStore.open(path, mode="a")
    ids = [f"v{k:03d}" for k in range(n_videos)]
    hashes = {n: _feature(st, dataset, n, dim, r, "frames", inp) for n, r, inp in
              (("audio", 10.0, "audio"), ("face", 5.0, "faces"))}
    out = SyntheticStore(Path(path), dataset, ids)
    for vid in ids:
        t_lab = np.arange(0, duration, 1.0 / label_rate)
        edges = np.cumsum(rng.uniform(2, 5, size=int(duration)))
        seg = np.searchsorted(edges, t_lab)
        vals = rng.uniform(-1, 1, size=len(edges) + 1) if continuous else rng.integers(0, 2, size=len(edges) + 1)
        lab = vals[seg].astype(np.float64)
        out.labels[vid], out.frame_times[vid] = lab, t_lab
        for name, rate in (("audio", 10.0), ("face", 5.0)):
            t = np.arange(0, duration, 1.0 / rate)
            s = np.interp(t, t_lab, lab if continuous else 2 * lab - 1)
            walk = np.cumsum(s / rate) + rng.normal(0, 3.0)
            x = rng.normal(0, 0.05, size=(len(t), dim)).astype(np.float32)
            x[:, 0] += walk.astype(np.float32)
            st.write_video(dataset, name, vid, x, t, config_hash=hashes[name])
    return out
