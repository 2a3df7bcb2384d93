"""Alignment of feature sequences (or per-frame predictions) onto labelled frames.

Two methods put a (T, D) sequence with times in seconds onto F label frames:

- ``"interp1d"`` (default): scipy ``interp1d`` over the stored timestamps, evaluated
  at the label frame times. Frames before the first or after the last sample hold
  the first / last value (no extrapolation), so a short audio stream or a late
  first face does not produce wild values.
- ``"position"``: the papers' alignment (Savchenko 2025 and the EmotiEffLib ABAW
  code): ``scipy.interpolate.interp1d`` over sample *indices*, resampling each
  modality's sequence to the visual length (the number of label frames), so sample 0
  lands on the first frame and sample T-1 on the last, whatever the timestamps say.
  Use it to reproduce the published numbers (train/papers/savchenko2025-bah.toml); it
  is wrong whenever a sequence does not span the whole video (late first face, audio
  shorter than the video), which ``"interp1d"`` over timestamps handles.

``fill_missing`` fills rows that are missing (no face crop, so no prediction) from
their neighbours; rows before the first valid one take its value and the tail is
padded with the last valid value.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import interp1d
from sklearn.base import BaseEstimator, TransformerMixin

logger = logging.getLogger(__name__)

ALIGN_METHODS = ("interp1d", "position")
INTERP_KINDS = ("linear", "nearest", "nearest-up", "zero", "slinear", "quadratic", "cubic", "previous", "next")


def _check_kind(kind: str) -> None:
    if kind not in INTERP_KINDS:
        raise ValueError(f"kind must be one of {INTERP_KINDS}. Got {kind!r} instead.")


def _interp_held(x: np.ndarray, values: np.ndarray, x_new: np.ndarray, kind: str) -> np.ndarray:
    """interp1d along axis 0 with the edges held at the first / last value."""
    if values.shape[0] == 1:
        # interp1d needs two points; a single sample is held everywhere.
        return np.repeat(values, len(x_new), axis=0)
    f = interp1d(
        x, values, kind=kind, axis=0, bounds_error=False, fill_value=(values[0], values[-1]), assume_sorted=True
    )
    return f(x_new)


def align_to_frames(
    values: np.ndarray,
    times: np.ndarray | None,
    frame_times: np.ndarray | int,
    method: str = "interp1d",
    kind: str = "linear",
) -> np.ndarray:
    """Values of a (T, D) sequence at each label frame; returns an (F, D) array.

    ``times`` (T,) are seconds from the video start, strictly increasing (not
    needed for ``method="position"``). ``frame_times`` (F,) are the label frame
    times in seconds; for ``"position"`` only their count matters, so an int F works.
    """
    if method not in ALIGN_METHODS:
        raise ValueError(f"method must be one of {ALIGN_METHODS}. Got {method!r} instead.")
    _check_kind(kind)
    vals = np.asarray(values)
    squeeze = vals.ndim == 1
    if squeeze:
        vals = vals[:, None]
    if vals.ndim != 2:
        raise ValueError(f"values must be a (T, D) or (T,) array. Got shape {np.shape(values)} instead.")
    if vals.shape[0] == 0:
        raise ValueError("Cannot align an empty sequence (T = 0): there are no values to interpolate from.")
    if not np.issubdtype(vals.dtype, np.floating):
        vals = vals.astype(np.float64)

    if method == "position":
        n_frames = int(frame_times) if np.ndim(frame_times) == 0 else len(frame_times)
        t = vals.shape[0]
        pos = np.linspace(0.0, t - 1, n_frames) if n_frames > 1 else np.zeros(n_frames)
        out = _interp_held(np.arange(t, dtype=np.float64), vals, pos, kind)
    else:
        if times is None:
            raise ValueError("method='interp1d' needs the sample times; pass times or use method='position'.")
        x = np.asarray(times, dtype=np.float64)
        if x.shape != (vals.shape[0],):
            raise ValueError(f"times must have shape ({vals.shape[0]},) to match values. Got {x.shape} instead.")
        if x.size > 1 and not np.all(np.diff(x) > 0):
            bad = int(np.flatnonzero(np.diff(x) <= 0)[0])
            raise ValueError(
                f"times must be strictly increasing. Got times[{bad}]={x[bad]} followed by {x[bad + 1]}; "
                "sort the samples and drop duplicates first."
            )
        x_new = np.asarray(frame_times, dtype=np.float64)
        if x_new.ndim != 1:
            raise ValueError(f"frame_times must be a 1-D array. Got shape {x_new.shape} instead.")
        out = _interp_held(x, vals, x_new, kind)
    out = out.astype(vals.dtype, copy=False)
    return out[:, 0] if squeeze else out


def fill_missing(values: np.ndarray, missing: np.ndarray | None = None, kind: str = "linear") -> np.ndarray:
    """Fill missing rows of a (F, D) or (F,) array from neighbouring rows.

    ``missing`` is a boolean mask of rows to fill; when None, rows holding any NaN
    are missing. Leading missing rows take the first valid value and the tail is
    padded with the last valid value. For class labels use ``kind="nearest"`` (or
    fill probabilities and take the argmax afterwards).
    """
    _check_kind(kind)
    vals = np.asarray(values)
    squeeze = vals.ndim == 1
    v2 = vals[:, None] if squeeze else vals
    if v2.ndim != 2:
        raise ValueError(f"values must be a (F, D) or (F,) array. Got shape {vals.shape} instead.")
    if missing is None:
        miss = np.isnan(v2).any(axis=1) if np.issubdtype(v2.dtype, np.floating) else np.zeros(len(v2), bool)
    else:
        miss = np.asarray(missing, dtype=bool)
        if miss.shape != (v2.shape[0],):
            raise ValueError(f"missing must be a boolean mask of shape ({v2.shape[0]},). Got {miss.shape} instead.")
    if not miss.any():
        return vals.copy()
    valid = np.flatnonzero(~miss)
    if valid.size == 0:
        raise ValueError(f"All {len(v2)} rows are missing: there is nothing to interpolate from.")
    out = v2.astype(np.float64 if not np.issubdtype(v2.dtype, np.floating) else v2.dtype, copy=True)
    filled = _interp_held(valid.astype(np.float64), out[valid], np.flatnonzero(miss).astype(np.float64), kind)
    out[miss] = filled
    return out[:, 0] if squeeze else out


class FrameAligner(TransformerMixin, BaseEstimator):
    """Transformer over videos: each item ``(values, times, frame_times)`` -> (F_i, D) array.

    Stateless (``fit`` only validates parameters); see ``align_to_frames``.
    """

    def __init__(self, method: str = "interp1d", kind: str = "linear"):
        self.method = method
        self.kind = kind

    def _check_params(self) -> None:
        if self.method not in ALIGN_METHODS:
            raise ValueError(f"method must be one of {ALIGN_METHODS}. Got {self.method!r} instead.")
        _check_kind(self.kind)

    def fit(self, X=None, y=None):
        """Validate the parameters; alignment learns nothing."""
        self._check_params()
        self.fitted_ = True
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True  # stateless: usable without fit

    def transform(self, X: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray]]) -> list[np.ndarray]:
        """Align every video's sequence onto its label frames."""
        self._check_params()
        out = []
        for i, item in enumerate(X):
            if len(item) != 3:
                raise ValueError(f"Item {i} must be a (values, times, frame_times) triple. Got {len(item)} elements.")
            values, times, frame_times = item
            out.append(align_to_frames(values, times, frame_times, method=self.method, kind=self.kind))
        return out
