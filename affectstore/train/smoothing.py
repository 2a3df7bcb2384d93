"""Temporal smoothing of frame-level predictions, one video at a time.

Rows belong to videos through ``groups`` (one id per row) and must be in time
order within each video; rows of different videos may be interleaved. Filters
never cross a video boundary. Two edge modes:

- ``edge="nearest"`` (default): the signal is extended with its edge value (scipy
  ``mode="nearest"``), so the first and last frames are not pulled towards zero;
- ``edge="truncate"``: the window is cut at the video's ends and the filter runs over
  the frames inside it only (box: the mean of the frames present; gaussian: the
  weights renormalised; median: the median of the frames present). This is the
  authors' edge handling in the seed code (a mean over ``x[max(0, i - r): i + r + 1]``).

Kernels, all covering ``size`` frames:
- ``box``: moving average (``scipy.ndimage.uniform_filter1d``),
- ``median``: moving median (``scipy.ndimage.median_filter``),
- ``gaussian``: ``gaussian_filter1d`` with sigma = size / 6 truncated at radius
  (size - 1) // 2, i.e. about +/- 3 sigma inside the window.
Size 1 leaves predictions unchanged, so a sweep that includes 1 can only help.
Even sizes are allowed; scipy then centres the window half a frame early.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from affectstore.train.fusion import apply_decision
from affectstore.train.metrics import get_metric

logger = logging.getLogger(__name__)

SMOOTHING_METHODS = ("box", "median", "gaussian")
EDGE_MODES = ("nearest", "truncate")
DEFAULT_SIZES = (1, 3, 5, 9, 15, 25, 41, 61)


def _check_size(size) -> int:
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive int (kernel length in frames). Got {size!r} instead.")
    return int(size)


def _kernel(method: str, size: int) -> np.ndarray:
    """The box or gaussian weights scipy uses for a window of ``size`` frames."""
    if method == "box":
        return np.full(size, 1.0 / size)
    radius = (size - 1) // 2
    sigma = size / 6.0
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return k / k.sum()


def _filter_truncated(x: np.ndarray, method: str, size: int) -> np.ndarray:
    """The filter over the part of each window inside the signal (no padding values)."""
    if method == "median":
        before = (size - 1) // 2 if size % 2 else size // 2  # the window scipy uses (centred half a frame early if even)
        pad = [(before, size - 1 - before)] + [(0, 0)] * (x.ndim - 1)
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, constant_values=np.nan), size, axis=0)
        return np.nanmedian(windows, axis=-1)
    k = _kernel(method, size)
    origin = 0 if method == "gaussian" or size % 2 else -1
    num = ndimage.convolve1d(x, k[::-1], axis=0, mode="constant", cval=0.0, origin=origin)
    den = ndimage.convolve1d(np.ones(x.shape[0]), k[::-1], mode="constant", cval=0.0, origin=origin)
    return num / den.reshape((-1,) + (1,) * (x.ndim - 1))


def _filter(x: np.ndarray, method: str, size: int, edge: str = "nearest") -> np.ndarray:
    if size == 1:
        return x.copy()
    if edge == "truncate":
        return _filter_truncated(x, method, size)
    if method == "box":
        return ndimage.uniform_filter1d(x, size, axis=0, mode="nearest")
    if method == "median":
        return ndimage.median_filter(x, size=(size,) + (1,) * (x.ndim - 1), mode="nearest")
    return ndimage.gaussian_filter1d(x, sigma=size / 6.0, axis=0, mode="nearest", radius=(size - 1) // 2)


def smooth_by_group(values, groups, method: str = "box", size: int = 5, edge: str = "nearest") -> np.ndarray:
    """Smooth (N,) or (N, K) predictions along time within each group; same shape out (float).

    ``edge``: "nearest" (hold the edge value) or "truncate" (filter over the frames
    inside the window only); see the module docstring.
    """
    if method not in SMOOTHING_METHODS:
        raise ValueError(f"method must be one of {SMOOTHING_METHODS}. Got {method!r} instead.")
    if edge not in EDGE_MODES:
        raise ValueError(f"edge must be one of {EDGE_MODES}. Got {edge!r} instead.")
    size = _check_size(size)
    x = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups)
    if x.ndim not in (1, 2) or g.shape != (x.shape[0],):
        raise ValueError(
            f"values must be (N,) or (N, K) with one group id per row. Got values {x.shape} and groups {g.shape} instead."
        )
    out = np.empty_like(x)
    if x.shape[0] == 0:
        return out
    # A stable sort keeps each video's rows in their given (time) order.
    order = np.argsort(g, kind="stable")
    _, starts = np.unique(g[order], return_index=True)
    bounds = np.append(starts, len(order))
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = order[a:b]
        out[rows] = _filter(x[rows], method, size, edge)
    return out


def smoothing_curve(
    y_true, y_pred, groups, metric, method: str = "box", sizes: Sequence[int] = DEFAULT_SIZES, decision=None,
    edge: str = "nearest",
    scored=None,
) -> dict[int, float]:
    """Validation score for every kernel size: {size: metric(y_true, decision(smoothed))}.

    ``scored``: optional (N,) bool mask of the rows with a label. Every row is smoothed (an
    unlabelled frame still has a prediction its neighbours average over), only those rows
    are scored, and ``y_true`` then holds their labels only.
    """
    metric_fn = get_metric(metric)
    keep = slice(None) if scored is None else np.asarray(scored, dtype=bool)
    return {
        int(s): float(metric_fn(y_true, apply_decision(smooth_by_group(y_pred, groups, method, s, edge)[keep], decision)))
        for s in sizes
    }


class TemporalSmoother(BaseEstimator):
    """Per-video smoothing whose kernel size is chosen on validation data.

    ``fit(y_pred, y_true, groups)`` sweeps ``sizes`` and keeps the best
    (``size_``; the whole curve in ``curve_`` for the report plot);
    ``transform(y_pred, groups)`` smooths with it and ``predict`` also applies
    ``decision`` (None, "argmax" or a threshold).
    """

    def __init__(self, method: str = "box", sizes: Sequence[int] = DEFAULT_SIZES, metric="mean_ccc", decision=None,
                 edge: str = "nearest"):
        self.method = method
        self.sizes = sizes
        self.metric = metric
        self.decision = decision
        self.edge = edge

    def fit(self, y_pred, y_true, groups, scored=None):
        """Choose the kernel size that maximises the metric on validation predictions (``scored``: see `smoothing_curve`)."""
        if self.method not in SMOOTHING_METHODS:
            raise ValueError(f"method must be one of {SMOOTHING_METHODS}. Got {self.method!r} instead.")
        sizes = [_check_size(s) for s in self.sizes]
        if not sizes:
            raise ValueError("sizes must hold at least one kernel size.")
        self.curve_ = smoothing_curve(y_true, y_pred, groups, self.metric, self.method, sizes, self.decision, self.edge, scored)
        self.size_ = max(self.curve_, key=lambda s: (self.curve_[s], -s))  # ties: the smaller kernel
        self.score_ = self.curve_[self.size_]
        logger.debug("Smoothing %s size %d (validation score %.4f).", self.method, self.size_, self.score_)
        return self

    def transform(self, y_pred, groups) -> np.ndarray:
        """Smoothed scores with the chosen kernel."""
        check_is_fitted(self, "size_")
        return smooth_by_group(y_pred, groups, self.method, self.size_, self.edge)

    def predict(self, y_pred, groups) -> np.ndarray:
        """Smoothed scores with ``decision`` applied."""
        return apply_decision(self.transform(y_pred, groups), self.decision)
