"""Feature stores with planted *temporal* signal: labels that the order of frames carries and
pooling cannot see.

- `make_order_store` (video level, EMI-like): each video's ``audio`` (50 Hz-like) and ``face``
  sequences are i.i.d. Gaussian values; for output k, column k's last quarter of frames holds
  a block of consecutive ranks starting at ``y_k * (T - T/4)`` (shuffled), the rest the other
  values (shuffled). The multiset of a column (hence its mean, std, min and max, i.e. STAT
  pooling) does not depend on y at all; the late frames' level does. A ``text`` per-video vector is pure noise.
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
    """T i.i.d. values; the last quarter holds the ranks ``s .. s + T//4`` (s = y * (T - T//4)) in random order."""
    v = np.sort(rng.normal(size=T))
    q = max(1, T // 4)
    s = int(round(y * (T - q)))
    late = rng.permutation(v[s:s + q])
    early = rng.permutation(np.concatenate([v[:s], v[s + q:]]))
    return np.concatenate([early, late])


def make_order_store(path, n_videos: int = 80, n_outputs: int = 2, dim: int = 6, frames=(20, 40),
                     dataset: str = "emi", seed: int = 0, no_face: int = 3, labels: dict | None = None) -> SyntheticStore:
    """Video-level store of ``audio`` (rate 50), ``face`` (rate 6; ``no_face`` videos lack it) and ``text``.

    ``labels``: id -> (n_outputs,) targets in [0, 1] to plant (default: ``n_videos`` ids with uniform ones).
    """
    rng = np.random.default_rng(seed)
    st = FeatureStore.open(path, mode="a")
    ids = list(labels) if labels is not None else [f"{k:05d}" for k in range(n_videos)]
    h_audio = _feature(st, dataset, "audio", dim, 50.0, "frames", "audio")
    h_face = _feature(st, dataset, "face", dim, 6.0, "frames", "faces")
    h_text = _feature(st, dataset, "text", 4, None, "video", "transcript")
    out = SyntheticStore(Path(path), dataset, ids)
    for i, vid in enumerate(ids):
        y = np.asarray(labels[vid], dtype=np.float64) if labels is not None else rng.uniform(0, 1, n_outputs)
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


EMI_HEADER = ("Filename", "Admiration", "Amusement", "Determination", "Empathic Pain", "Excitement", "Joy")


def write_emi_labels(root, n_train: int, n_valid: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A labels-only EMI root (``train_split.csv``, ``valid_split.csv``); returns id -> (6,) intensities."""
    import csv

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"{k:05d}" for k in range(n_train + n_valid)]
    y = {v: np.round(rng.uniform(0, 1, 6), 6) for v in ids}
    for name, part in (("train_split.csv", ids[:n_train]), ("valid_split.csv", ids[n_train:])):
        with open(root / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(EMI_HEADER)
            for v in part:
                w.writerow([v] + [f"{x:.6f}" for x in y[v]])
    return y
