"""Early fusion (concatenate features), late blending (weights on validation
predictions) and decision-threshold search.

All searches run on validation predictions only and keep the whole curve
(``grid_scores_``, ``scores_``) for report plots. Ties go to the first grid point
(grid order is lexicographic in the weights, thresholds ascending), so results are
deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from affectstore.train.metrics import get_metric

logger = logging.getLogger(__name__)


def simplex_grid(n_modalities: int, step: float = 0.05) -> np.ndarray:
    """All weight vectors of length ``n_modalities`` with entries on multiples of ``step`` summing to 1.

    Returns a (G, n_modalities) array; e.g. 3 modalities at step 0.05 give 231 rows.
    """
    if not isinstance(n_modalities, (int, np.integer)) or n_modalities < 1:
        raise ValueError(f"n_modalities must be a positive int. Got {n_modalities!r} instead.")
    n_steps = round(1.0 / step) if step > 0 else 0
    if step <= 0 or step > 1 or abs(n_steps * step - 1.0) > 1e-9:
        raise ValueError(f"step must divide 1 into a whole number of steps (e.g. 0.05, 0.1, 0.25). Got {step!r} instead.")
    rows: list[list[int]] = []

    def rec(prefix: list[int], left: int, slots: int) -> None:
        if slots == 1:
            rows.append(prefix + [left])
            return
        for k in range(left, -1, -1):
            rec(prefix + [k], left - k, slots - 1)

    rec([], n_steps, n_modalities)
    return np.asarray(rows, dtype=np.float64) / n_steps


def apply_decision(scores: np.ndarray, decision) -> np.ndarray:
    """Turn scores into what a metric expects: None (unchanged), "argmax" (column index) or a threshold."""
    s = np.asarray(scores)
    if decision is None:
        return s
    if isinstance(decision, str):
        if decision != "argmax":
            raise ValueError(f"decision must be None, 'argmax' or a float threshold. Got {decision!r} instead.")
        if s.ndim != 2:
            raise ValueError(f"decision='argmax' needs (n_samples, n_classes) scores. Got shape {s.shape} instead.")
        return s.argmax(axis=1)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim not in (1, 2):
        raise ValueError(f"A threshold decision needs 1-D (binary) or 2-D (multilabel) scores. Got shape {s.shape} instead.")
    # 2-D: one 0/1 decision per label column (multilabel, e.g. action units).
    return (s >= np.asarray(decision, dtype=np.float64)).astype(np.int64)


class ConcatFeatures(TransformerMixin, BaseEstimator):
    """Early fusion: a list of (N, D_m) blocks (one per modality) -> one (N, sum D_m) matrix.

    With ``standardize=True`` every column is scaled to zero mean / unit variance
    using training statistics, so a 40-d eGeMAPS block is not drowned by a 1024-d
    embedding of a different scale.
    """

    def __init__(self, standardize: bool = True):
        self.standardize = standardize

    def _blocks(self, blocks) -> list[np.ndarray]:
        if isinstance(blocks, np.ndarray) or not len(blocks):
            raise ValueError("ConcatFeatures expects a non-empty list of (N, D_m) arrays, one per modality.")
        arrs = [np.asarray(b, dtype=np.float64) for b in blocks]
        for i, a in enumerate(arrs):
            if a.ndim != 2:
                raise ValueError(f"Block {i} must be a 2-D (N, D) array. Got shape {a.shape} instead.")
        rows = {a.shape[0] for a in arrs}
        if len(rows) != 1:
            raise ValueError(f"All blocks must have the same number of rows. Got {sorted(rows)} instead.")
        return arrs

    def fit(self, blocks, y=None):
        """Learn each block's dimension (and column statistics when standardising)."""
        arrs = self._blocks(blocks)
        self.dims_ = [a.shape[1] for a in arrs]
        cat = np.concatenate(arrs, axis=1)
        self.mean_ = cat.mean(axis=0) if self.standardize else np.zeros(cat.shape[1])
        std = cat.std(axis=0) if self.standardize else np.ones(cat.shape[1])
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        return self

    def transform(self, blocks) -> np.ndarray:
        """Concatenate (and scale) the blocks in the order seen in ``fit``."""
        check_is_fitted(self, "dims_")
        arrs = self._blocks(blocks)
        dims = [a.shape[1] for a in arrs]
        if dims != self.dims_:
            raise ValueError(f"Blocks have dimensions {dims}, but ConcatFeatures was fitted with {self.dims_}.")
        return (np.concatenate(arrs, axis=1) - self.mean_) / self.scale_


def _stack_predictions(predictions: Sequence[np.ndarray]) -> np.ndarray:
    """(M, N, K) float array from M prediction arrays of shape (N,) or (N, K)."""
    if isinstance(predictions, np.ndarray) or len(predictions) < 1:
        raise ValueError("Blending expects a list with one prediction array per modality.")
    arrs = [np.asarray(p, dtype=np.float64) for p in predictions]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise ValueError(f"All modality predictions must have the same shape. Got {sorted(shapes)} instead.")
    stacked = np.stack(arrs)
    return stacked[:, :, None] if stacked.ndim == 2 else stacked


def apply_blend(weights, predictions: Sequence[np.ndarray]) -> np.ndarray:
    """Weighted sum of M modalities' predictions, each (N,) or (N, K), with ``weights`` (M,) or per output (K, M)."""
    w = np.asarray(weights, dtype=np.float64)
    P = _stack_predictions(predictions)
    if w.shape[-1] != P.shape[0]:
        raise ValueError(f"Got predictions of {P.shape[0]} modalities but {w.shape[-1]} weights per output.")
    if w.ndim == 2:
        if P.shape[2] != w.shape[0]:
            raise ValueError(f"Predictions have {P.shape[2]} columns; the per-output weights cover {w.shape[0]}.")
        out = np.einsum("km,mnk->nk", w, P)
    else:
        out = np.tensordot(w, P, axes=(0, 0))
    return out[:, 0] if np.asarray(predictions[0]).ndim == 1 else out


class BlendSearch(BaseEstimator):
    """Late fusion: weights on the probability simplex for M modalities' predictions.

    ``fit(val_predictions, y_val)`` tries every point of ``simplex_grid(M, step)``
    and keeps the one that maximises ``metric``; ``transform(predictions)`` returns
    the weighted sum. With ``per_output=True`` each output column gets its own
    weights, scored by ``metric`` on that column alone (use a 1-D metric such as
    "pearson_r" or "ccc").

    Parameters
    ----------
    metric : metric name from ``affectstore.train.metrics.METRICS`` or a callable(y_true, y_pred).
    step : grid step; 1/step must be a whole number.
    per_output : one weight vector per output column instead of one overall.
    decision : applied to blended scores before the metric: None, "argmax" or a threshold.
    """

    def __init__(self, metric="mean_pearson_r", step: float = 0.05, per_output: bool = False, decision=None):
        self.metric = metric
        self.step = step
        self.per_output = per_output
        self.decision = decision

    def fit(self, predictions: Sequence[np.ndarray], y):
        """Search the weights on validation predictions and labels."""
        metric = get_metric(self.metric)
        P = _stack_predictions(predictions)
        n_mod, n, k = P.shape
        y = np.asarray(y)
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} rows but the predictions have {n}.")
        if self.per_output and self.decision == "argmax":
            raise ValueError("per_output=True scores each column alone, which cannot use decision='argmax'.")
        self.grid_ = simplex_grid(n_mod, self.step)
        self.n_modalities_ = n_mod
        self.squeeze_ = np.asarray(predictions[0]).ndim == 1
        if self.per_output:
            y2 = y[:, None] if y.ndim == 1 else y
            if y2.shape[1] != k:
                raise ValueError(f"per_output needs one y column per prediction column ({k}). Got y of shape {y.shape}.")
            self.grid_scores_ = np.empty((k, len(self.grid_)))
            for j in range(k):
                cols = P[:, :, j]  # (M, N)
                for g, w in enumerate(self.grid_):
                    self.grid_scores_[j, g] = metric(y2[:, j], apply_decision(w @ cols, self.decision))
            best = self.grid_scores_.argmax(axis=1)
            self.weights_ = self.grid_[best]  # (K, M)
            self.scores_ = self.grid_scores_[np.arange(k), best]
            self.score_ = float(self.scores_.mean())
        else:
            self.grid_scores_ = np.empty(len(self.grid_))
            for g, w in enumerate(self.grid_):
                self.grid_scores_[g] = metric(y, apply_decision(apply_blend(w, predictions), self.decision))
            best = int(self.grid_scores_.argmax())
            self.weights_ = self.grid_[best]  # (M,)
            self.score_ = float(self.grid_scores_[best])
        logger.debug("Blend weights %s (validation score %.4f).", np.round(self.weights_, 4).tolist(), self.score_)
        return self

    def transform(self, predictions: Sequence[np.ndarray]) -> np.ndarray:
        """Blended scores (shape of one modality's predictions)."""
        check_is_fitted(self, "weights_")
        if len(predictions) != self.n_modalities_:
            raise ValueError(f"Got predictions of {len(predictions)} modalities; the blend was fitted on {self.n_modalities_}.")
        return apply_blend(self.weights_, predictions)

    def predict(self, predictions: Sequence[np.ndarray]) -> np.ndarray:
        """Blended scores with ``decision`` applied (labels for "argmax" / a threshold)."""
        return apply_decision(self.transform(predictions), self.decision)


DEFAULT_THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)


class ThresholdSearch(BaseEstimator):
    """Decision threshold for a binary task, chosen on validation scores.

    ``fit(scores, y)`` evaluates ``metric(y, scores >= t)`` for every t in
    ``thresholds`` (default 0.01 .. 0.99) and keeps the best; ``predict`` applies it.
    """

    def __init__(self, metric="weighted_f1", thresholds=None):
        self.metric = metric
        self.thresholds = thresholds

    def fit(self, scores, y):
        """Search the threshold on validation scores and 0/1 labels."""
        metric = get_metric(self.metric)
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if s.ndim != 1:
            raise ValueError(f"scores must be 1-D (one score per sample). Got shape {np.shape(scores)} instead.")
        y = np.asarray(y)
        if y.shape != s.shape:
            raise ValueError(f"y must have shape {s.shape} like scores. Got {y.shape} instead.")
        grid = DEFAULT_THRESHOLDS if self.thresholds is None else np.asarray(self.thresholds, dtype=np.float64)
        if grid.ndim != 1 or grid.size == 0:
            raise ValueError(f"thresholds must be a non-empty 1-D sequence. Got {self.thresholds!r} instead.")
        self.thresholds_ = grid
        self.scores_ = np.array([metric(y, (s >= t).astype(np.int64)) for t in grid])
        best = int(self.scores_.argmax())
        self.threshold_ = float(grid[best])
        self.score_ = float(self.scores_[best])
        logger.debug("Decision threshold %.3f (validation score %.4f).", self.threshold_, self.score_)
        return self

    def predict(self, scores) -> np.ndarray:
        """0/1 labels: 1 where the score reaches the chosen threshold."""
        check_is_fitted(self, "threshold_")
        return apply_decision(np.asarray(scores, dtype=np.float64), self.threshold_)
