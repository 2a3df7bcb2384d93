"""Post-hoc filters on frame-level predictions.

- Confidence override: where a pretrained head (e.g. FER or EmotiEffNet logits,
  turned into probabilities and reordered to the task's classes) is very sure of a
  class, that class replaces the model's prediction. The threshold is tuned on
  validation data; a threshold of 1.0 never fires, so including it in the grid
  lets the search decline the override.
- Video-level filter: a classifier on one vector per video (e.g. the mean
  transcript embedding) predicts whether a video holds any positive frame; the
  frames of videos it predicts negative are set to 0.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from affectstore.train.metrics import get_metric

logger = logging.getLogger(__name__)

DEFAULT_OVERRIDE_THRESHOLDS = np.round(np.arange(0.5, 1.0001, 0.05), 2)


def confidence_override(pred, head_proba, threshold: float, head_classes=None) -> np.ndarray:
    """Labels where ``head_proba``'s top class exceeds ``threshold`` replaced by that class.

    ``pred``: (N,) labels; ``head_proba``: (N, C) probabilities; ``head_classes``:
    the task label of each head column (default 0..C-1; e.g. a 7-class FER head
    mapped onto the 8 EXPR classes).
    """
    p = np.asarray(pred)
    h = np.asarray(head_proba, dtype=np.float64)
    if p.ndim != 1 or h.ndim != 2 or h.shape[0] != p.shape[0]:
        raise ValueError(
            f"pred must be (N,) labels and head_proba (N, C) probabilities. Got {p.shape} and {h.shape} instead."
        )
    classes = np.arange(h.shape[1]) if head_classes is None else np.asarray(head_classes)
    if classes.shape != (h.shape[1],):
        raise ValueError(f"head_classes must name {h.shape[1]} classes, one per head column. Got {classes.shape[0]}.")
    if ((h < -1e-9) | (h > 1 + 1e-9)).any():
        raise ValueError("head_proba must hold probabilities in [0, 1]; apply a softmax to logits first.")
    top = h.argmax(axis=1)
    fire = h[np.arange(len(h)), top] > threshold
    out = p.copy()
    out[fire] = classes[top[fire]].astype(out.dtype)
    return out


class ConfidenceOverride(BaseEstimator):
    """Confidence override with its threshold chosen on validation data.

    ``fit(pred, head_proba, y)`` tries every threshold and keeps the best
    (``threshold_``, curve in ``thresholds_`` / ``scores_``); ``predict(pred, head_proba)``
    applies it.
    """

    def __init__(self, metric="expr_macro_f1", thresholds=None, head_classes=None):
        self.metric = metric
        self.thresholds = thresholds
        self.head_classes = head_classes

    def fit(self, pred, head_proba, y):
        """Choose the override threshold on validation predictions."""
        metric = get_metric(self.metric)
        grid = DEFAULT_OVERRIDE_THRESHOLDS if self.thresholds is None else np.asarray(self.thresholds, float)
        if grid.ndim != 1 or grid.size == 0:
            raise ValueError(f"thresholds must be a non-empty 1-D sequence. Got {self.thresholds!r} instead.")
        self.thresholds_ = grid
        self.scores_ = np.array(
            [metric(y, confidence_override(pred, head_proba, t, self.head_classes)) for t in grid]
        )
        # Ties go to the highest threshold: override as rarely as the score allows.
        best = len(grid) - 1 - int(self.scores_[::-1].argmax())
        self.threshold_ = float(grid[best])
        self.score_ = float(self.scores_[best])
        logger.debug("Confidence override threshold %.3f (validation score %.4f).", self.threshold_, self.score_)
        return self

    def predict(self, pred, head_proba) -> np.ndarray:
        """Predictions with the override applied at the chosen threshold."""
        check_is_fitted(self, "threshold_")
        return confidence_override(pred, head_proba, self.threshold_, self.head_classes)


def zero_negative_videos(frame_pred, frame_videos, negative_videos) -> np.ndarray:
    """Copy of ``frame_pred`` with every frame of the listed videos set to 0."""
    out = np.array(frame_pred, copy=True)
    fv = np.asarray(frame_videos)
    if fv.shape[0] != out.shape[0]:
        raise ValueError(f"frame_videos needs one video id per frame ({out.shape[0]}). Got {fv.shape[0]}.")
    out[np.isin(fv, np.asarray(list(negative_videos)))] = 0
    return out


class VideoFilter(BaseEstimator):
    """Video-level filter: zero the frames of videos a classifier predicts negative.

    Parameters
    ----------
    estimator : an unfitted scikit-learn classifier on one vector per video; it is
        cloned in ``fit``. None: ``SVC(kernel="linear", class_weight="balanced")``, as in
        the BAH seed (text SVC on transcript embeddings).
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X_video, y_video):
        """Train the classifier on video vectors and video-level 0/1 labels."""
        y = np.asarray(y_video)
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"y_video must hold 0/1 video labels. Got values {np.unique(y)[:10].tolist()} instead.")
        base = SVC(kernel="linear", class_weight="balanced") if self.estimator is None else self.estimator
        self.estimator_ = clone(base).fit(X_video, y)
        return self

    def predict(self, X_video) -> np.ndarray:
        """0/1 per video."""
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict(X_video)).astype(np.int64)

    def apply(self, frame_pred, frame_videos, video_ids, X_video) -> np.ndarray:
        """Frame predictions with the frames of predicted-negative videos set to 0.

        ``video_ids[i]`` names the video whose vector is ``X_video[i]``;
        ``frame_videos`` names the video of each frame.
        """
        video_ids = np.asarray(video_ids)
        if video_ids.shape[0] != np.shape(X_video)[0]:
            raise ValueError(f"video_ids needs one id per row of X_video ({np.shape(X_video)[0]}). Got {video_ids.shape[0]}.")
        negative = video_ids[self.predict(X_video) == 0]
        logger.debug("Video filter zeroes %d of %d videos.", len(negative), len(video_ids))
        return zero_negative_videos(frame_pred, frame_videos, negative)


def video_labels_from_frames(frame_y, frame_valid, frame_videos, video_ids) -> np.ndarray:
    """Per video: 1 if at least one valid frame is positive, 0 if none is, NaN without valid frames.

    This is the video filter's target in Savchenko 2025 (BAH): "at least one ambivalent
    frame", taken from the frame annotations rather than the split file's label.
    """
    y = np.asarray(frame_y).reshape(len(frame_videos), -1)[:, 0]
    valid = np.asarray(frame_valid, dtype=bool)
    fv = np.asarray(frame_videos, dtype=object)
    out = np.full(len(video_ids), np.nan)
    for i, vid in enumerate(video_ids):
        rows = (fv == vid) & valid
        if rows.any():
            out[i] = float((y[rows] == 1).any())
    return out


def compare_video_labels(video_ids, from_frames, split_labels: dict) -> dict:
    """How the frame-derived video labels agree with the split file's (``split_labels``: id -> 0/1)."""
    both = [(v, int(f), int(split_labels[v])) for v, f in zip(video_ids, from_frames)
            if np.isfinite(f) and v in split_labels]
    disagree = [{"video": v, "from_frames": f, "split_file": s} for v, f, s in both if f != s]
    return {"source": "frame annotations (at least one positive frame)", "n_compared": len(both),
            "n_disagree": len(disagree), "disagreements": disagree}
