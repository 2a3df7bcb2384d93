"""Streams: what a sequence model sees of each item, and padding them into mini-batches.

A stream is one model input built from one or more stored features:

- ``features``: joined frame by frame (the later ones put on the first one's timestamps by
  nearest sample, e.g. wav2vec2 states + per-frame VAD -> 1027-d);
- ``window``: seconds centred on the item's target time (frame-level items); None: the whole video;
- ``samples``: resample the window to this many equidistant times (nearest stored sample;
  the edge sample where the grid leaves the video), e.g. 400 face frames over 20 s;
- ``max_frames``: keep at most this many samples (the first ones), e.g. the first 400 faces;
- ``pooled``: mean over the (windowed) samples: one vector, joined to the model directly;
- ``marker``: add two channels, the time relative to the target (in half-windows) and a flag,
  and insert a flagged zero row at the target time (the text marker of windowed models).

A video that lacks the stream's first feature has length 0 in that stream: models replace
its encoding by a learned missing token (a video without a face is not an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class StreamSpec:
    """One model input; see the module docstring."""

    features: tuple[str, ...]
    window: float | None = None
    samples: int | None = None
    max_frames: int | None = None
    pooled: bool = False
    marker: bool = False

    def dim(self, dims: Mapping[str, int]) -> int:
        """Width of this stream given each feature's stored dim."""
        return sum(int(dims[f]) for f in self.features) + (2 if self.marker else 0)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d


STREAM_KEYS = {"features", "window", "samples", "max_frames", "pooled", "marker"}


def parse_streams(streams, features: list[str], kinds: Mapping[str, str] | None = None) -> dict[str, StreamSpec]:
    """Stream specs from an estimator's ``streams`` parameter.

    None: one stream per feature, pooled for per-video vectors (store kind ``"video"``).
    Otherwise a mapping name -> {features = [...], window, samples, max_frames, pooled, marker}.
    """
    kinds = kinds or {}
    if streams is None:
        return {f: StreamSpec((f,), pooled=kinds.get(f) == "video") for f in features}
    if not isinstance(streams, Mapping) or not streams:
        raise ValueError(f"streams must be a non-empty mapping name -> {{features = [...], ...}}. Got {streams!r} instead.")
    out = {}
    for name, spec in streams.items():
        if isinstance(spec, StreamSpec):
            out[name] = spec
            continue
        if not isinstance(spec, Mapping) or "features" not in spec:
            raise ValueError(f"stream {name!r} must be a table with a 'features' list. Got {spec!r} instead.")
        bad = sorted(set(spec) - STREAM_KEYS)
        if bad:
            raise ValueError(f"Unknown key(s) {bad} in stream {name!r}. Valid keys: {sorted(STREAM_KEYS)}.")
        feats = spec["features"]
        feats = (feats,) if isinstance(feats, str) else tuple(feats)
        unknown = [f for f in feats if f not in features]
        if unknown or not feats:
            raise ValueError(f"stream {name!r} names feature(s) {list(unknown) or feats} that are not among the "
                             f"recipe's features {features}. Add them to features or fix the stream.")
        for key in ("samples", "max_frames"):
            v = spec.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"stream {name!r}: {key} must be a positive int or absent. Got {v!r} instead.")
        w = spec.get("window")
        if w is not None and (not isinstance(w, (int, float)) or w <= 0):
            raise ValueError(f"stream {name!r}: window must be a positive number of seconds. Got {w!r} instead.")
        out[name] = StreamSpec(feats, None if w is None else float(w), spec.get("samples"), spec.get("max_frames"),
                               bool(spec.get("pooled", False)), bool(spec.get("marker", False)))
    return out


def _nearest(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the stored sample nearest to each time in ``at``."""
    idx = np.clip(np.searchsorted(times, at), 1, max(len(times) - 1, 1))
    left = np.maximum(idx - 1, 0)
    return np.where(np.abs(at - times[left]) <= np.abs(times[np.minimum(idx, len(times) - 1)] - at), left,
                    np.minimum(idx, len(times) - 1))


def stream_values(spec: StreamSpec, arrays: Mapping[str, tuple[np.ndarray, np.ndarray]], dims: Mapping[str, int],
                  target: float | None) -> np.ndarray:
    """The (T, dim) float32 input of one item for one stream; (0, dim) when its first feature is absent."""
    width = spec.dim(dims)
    first = spec.features[0]
    if first not in arrays:
        return np.zeros((0, width), np.float32)
    values, times = arrays[first]
    if spec.window is not None and target is not None:
        half = spec.window / 2.0
        if spec.samples is not None:
            grid = np.linspace(target - half, target + half, spec.samples)
            idx = _nearest(times, grid)
        else:
            idx = np.flatnonzero((times >= target - half) & (times <= target + half))
    elif spec.samples is not None and len(times) > 0:
        idx = _nearest(times, np.linspace(times[0], times[-1], spec.samples))
    else:
        idx = np.arange(len(times))
    if spec.max_frames is not None:
        idx = idx[: spec.max_frames]
    t = times[idx]
    blocks = [np.asarray(values[idx], dtype=np.float32)]
    for f in spec.features[1:]:
        if f in arrays and len(arrays[f][1]):
            v2, t2 = arrays[f]
            blocks.append(np.asarray(v2[_nearest(t2, t)], dtype=np.float32))
        else:
            blocks.append(np.zeros((len(idx), int(dims[f])), np.float32))
    x = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    if spec.marker:
        ref = target if target is not None else 0.0
        scale = spec.window / 2.0 if spec.window else 1.0
        x = np.concatenate([x, ((t - ref) / scale)[:, None].astype(np.float32), np.zeros((len(t), 1), np.float32)], 1)
        pos = int(np.searchsorted(t, ref))
        mark = np.zeros((1, width), np.float32)
        mark[0, -1] = 1.0
        x = np.concatenate([x[:pos], mark, x[pos:]], axis=0)
    if spec.pooled:
        return x.mean(axis=0, keepdims=True) if len(x) else np.zeros((0, width), np.float32)
    return x


def collate(view, rows: np.ndarray, specs: Mapping[str, StreamSpec]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{stream: (padded (B, T_max, dim) float32, lengths (B,) int64)} for items ``rows`` of ``view``.

    Pooled streams have T_max = 1. A batch in which no item has the stream gets T_max = 1 of zeros.
    """
    dims = view.source.dims
    per = {name: [] for name in specs}
    for r in rows:
        arrays = view.item(int(r))
        target = None if view.times is None else float(view.times[r])
        for name, spec in specs.items():
            per[name].append(stream_values(spec, arrays, dims, target))
    out = {}
    for name, xs in per.items():
        lengths = np.array([len(x) for x in xs], dtype=np.int64)
        width = specs[name].dim(dims)
        pad = np.zeros((len(xs), max(int(lengths.max(initial=0)), 1), width), np.float32)
        for i, x in enumerate(xs):
            pad[i, : len(x)] = x
        out[name] = (pad, lengths)
    return out
