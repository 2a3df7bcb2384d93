"""Challenge metrics on in-memory arrays.

All metrics take ``(y_true, y_pred)`` and return a float where higher is better, so
that blending, threshold and smoothing searches can maximise any of them.

- ``pearson_r`` / ``mean_pearson_r``: EMI (mean over the six emotions).
- ``weighted_f1``: BAH (frame-level F1 weighted by class support).
- ``expr_macro_f1``: EXPR (macro F1 over the 8 classes, ``labels=range(8)`` so a
  class missing from both truth and prediction still counts, with F1 0).
- ``ccc`` / ``mean_ccc``: VA (mean of CCC(valence), CCC(arousal)).
- ``au_mean_f1``: Aff-Wild2 AU (mean over the 12 action units of binary F1).
- ``clips_classification_scores`` / ``clips_regression_scores``: generic clips.

Degenerate inputs: Pearson's r is undefined when either side is constant, and CCC
when both sides are the same constant (0/0). Both are reported as 0.0 with a
logged warning rather than NaN, because a NaN would silently win or lose every
``max`` in the searches that call these functions, and 0.0 is what a constant
(uninformative) prediction deserves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

logger = logging.getLogger(__name__)

EXPR_CLASSES = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
EMI_EMOTIONS = ("Admiration", "Amusement", "Determination", "Empathic Pain", "Excitement", "Joy")
AU_NAMES = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26")

Metric = Callable[[np.ndarray, np.ndarray], float]


def _paired(y_true, y_pred, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float64 2-D (n_samples, n_outputs) arrays of equal shape."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim == 1:
        t = t[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(
            f"{name}: y_true and y_pred must have the same shape (n_samples,) or (n_samples, n_outputs). "
            f"Got {np.shape(y_true)} and {np.shape(y_pred)} instead."
        )
    if t.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples. Got {t.shape[0]} instead.")
    return t, p


def pearson_r_per_output(y_true, y_pred) -> np.ndarray:
    """Pearson's r of each output column; 0.0 (with a warning) where a column is constant."""
    t, p = _paired(y_true, y_pred, "pearson_r")
    tc = t - t.mean(axis=0)
    pc = p - p.mean(axis=0)
    num = (tc * pc).sum(axis=0)
    den = np.sqrt((tc * tc).sum(axis=0) * (pc * pc).sum(axis=0))
    # A relative tolerance: centred sums of a constant column are rounding noise, not signal.
    scale_t = np.abs(t).max(axis=0) + 1e-300
    scale_p = np.abs(p).max(axis=0) + 1e-300
    constant = (np.sqrt((tc * tc).mean(axis=0)) <= 1e-12 * scale_t) | (
        np.sqrt((pc * pc).mean(axis=0)) <= 1e-12 * scale_p
    )
    r = np.zeros(t.shape[1])
    ok = ~constant
    r[ok] = np.clip(num[ok] / den[ok], -1.0, 1.0)
    if constant.any():
        logger.warning(
            "Pearson's r is undefined for constant inputs (output columns %s); reporting 0.0 for them.",
            np.flatnonzero(constant).tolist(),
        )
    return r


def pearson_r(y_true, y_pred) -> float:
    """Pearson's r of two 1-D arrays (mean over columns if 2-D)."""
    return float(pearson_r_per_output(y_true, y_pred).mean())


def mean_pearson_r(y_true, y_pred) -> float:
    """EMI metric: mean over output columns of Pearson's r."""
    return float(pearson_r_per_output(y_true, y_pred).mean())


def ccc_per_output(y_true, y_pred) -> np.ndarray:
    """Lin's concordance correlation coefficient of each output column.

    ``2 cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p))**2)`` with population
    (ddof=0) moments, as in the Aff-Wild2 evaluation.
    """
    t, p = _paired(y_true, y_pred, "ccc")
    mt, mp = t.mean(axis=0), p.mean(axis=0)
    vt, vp = t.var(axis=0), p.var(axis=0)
    cov = ((t - mt) * (p - mp)).mean(axis=0)
    den = vt + vp + (mt - mp) ** 2
    degenerate = den <= 1e-24 * (1.0 + np.abs(mt) + np.abs(mp)) ** 2
    out = np.zeros(t.shape[1])
    ok = ~degenerate
    out[ok] = 2.0 * cov[ok] / den[ok]
    if degenerate.any():
        logger.warning(
            "CCC is undefined when truth and prediction are the same constant (output columns %s); reporting 0.0.",
            np.flatnonzero(degenerate).tolist(),
        )
    return out


def ccc(y_true, y_pred) -> float:
    """CCC of two 1-D arrays (mean over columns if 2-D)."""
    return float(ccc_per_output(y_true, y_pred).mean())


def mean_ccc(y_true, y_pred) -> float:
    """VA metric: mean over output columns (valence, arousal) of CCC."""
    return float(ccc_per_output(y_true, y_pred).mean())


def _labels_1d(y_true, y_pred, name: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or t.shape != p.shape:
        raise ValueError(
            f"{name}: y_true and y_pred must be 1-D label arrays of equal length. "
            f"Got shapes {t.shape} and {p.shape} instead (pass class labels, not probabilities; "
            "apply argmax or a threshold first)."
        )
    return t, p


def weighted_f1(y_true, y_pred) -> float:
    """BAH metric: F1 averaged over classes weighted by their support."""
    t, p = _labels_1d(y_true, y_pred, "weighted_f1")
    return float(f1_score(t, p, average="weighted", zero_division=0))


def macro_f1(y_true, y_pred, labels=None) -> float:
    """Unweighted mean of per-class F1 (over ``labels`` if given, else classes present)."""
    t, p = _labels_1d(y_true, y_pred, "macro_f1")
    return float(f1_score(t, p, labels=labels, average="macro", zero_division=0))


def expr_macro_f1(y_true, y_pred) -> float:
    """EXPR metric: macro F1 over the 8 classes 0..7, absent classes included."""
    return macro_f1(y_true, y_pred, labels=list(range(len(EXPR_CLASSES))))


def au_mean_f1(y_true, y_pred) -> float:
    """AU metric: mean over label columns of binary F1 (sklearn ``average='macro'`` on 0/1 indicator arrays)."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(
            f"au_mean_f1: y_true and y_pred must be (n_samples, n_labels) 0/1 arrays of equal shape. "
            f"Got {t.shape} and {p.shape} instead (threshold the scores first)."
        )
    return float(f1_score(t.astype(np.int64), p.astype(np.int64), average="macro", zero_division=0))


def per_label_f1(y_true, y_pred) -> np.ndarray:
    """Binary F1 of each label column of (n_samples, n_labels) 0/1 arrays."""
    t = np.asarray(y_true).astype(np.int64)
    p = np.asarray(y_pred).astype(np.int64)
    return np.asarray(f1_score(t, p, average=None, zero_division=0), dtype=np.float64)


def accuracy(y_true, y_pred) -> float:
    """Fraction of labels predicted exactly."""
    t, p = _labels_1d(y_true, y_pred, "accuracy")
    return float(accuracy_score(t, p))


def per_class_f1(y_true, y_pred, labels) -> np.ndarray:
    """F1 of each class in ``labels`` (for per-class report plots)."""
    t, p = _labels_1d(y_true, y_pred, "per_class_f1")
    return np.asarray(f1_score(t, p, labels=list(labels), average=None, zero_division=0), dtype=np.float64)


def clips_classification_scores(y_true, y_pred) -> dict[str, float]:
    """Clip-level classification: macro F1 and accuracy."""
    return {"macro_f1": macro_f1(y_true, y_pred), "accuracy": accuracy(y_true, y_pred)}


def clips_regression_scores(y_true, y_pred) -> dict[str, float]:
    """Clip-level regression: Pearson's r and CCC (means over columns if several)."""
    return {"pearson_r": pearson_r(y_true, y_pred), "ccc": ccc(y_true, y_pred)}


METRICS: dict[str, Metric] = {
    "pearson_r": pearson_r,
    "mean_pearson_r": mean_pearson_r,
    "ccc": ccc,
    "mean_ccc": mean_ccc,
    "weighted_f1": weighted_f1,
    "macro_f1": macro_f1,
    "expr_macro_f1": expr_macro_f1,
    "accuracy": accuracy,
    "au_mean_f1": au_mean_f1,
}

# The challenge metric of each task.
TASK_METRICS: dict[str, str] = {
    "emi": "mean_pearson_r",
    "bah": "weighted_f1",
    "expr": "expr_macro_f1",
    "va": "mean_ccc",
    "au": "au_mean_f1",
    "bah-video": "macro_f1",
}


def get_metric(metric: str | Metric) -> Metric:
    """A metric callable from its name in ``METRICS`` (or the callable itself)."""
    if callable(metric):
        return metric
    if isinstance(metric, str) and metric in METRICS:
        return METRICS[metric]
    raise ValueError(f"Unknown metric {metric!r}. Use one of {sorted(METRICS)} or pass a callable(y_true, y_pred).")
