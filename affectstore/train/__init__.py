"""Trainers: pooling, alignment, estimators, fusion, smoothing, filters, metrics, submissions.

Every block works on in-memory numpy arrays and follows the scikit-learn
estimator contract. Loading a task's features from a store is in ``data``, the tasks
in ``tasks``, recipes in ``recipe``, the fitted blend + post-processing in ``pipeline``
and the functions behind ``affect train`` / ``affect predict`` in ``run``
(``train_task``, ``predict_run``).
The torch-backed names (``MLPEstimator``, ``make_estimator``, ...) are imported on
first use, so importing metrics or submission writers does not load torch.
"""

import importlib

from affectstore.train.align import FrameAligner, align_to_frames, fill_missing
from affectstore.train.filters import ConfidenceOverride, VideoFilter, confidence_override, zero_negative_videos
from affectstore.train.fusion import BlendSearch, ConcatFeatures, ThresholdSearch, apply_decision, simplex_grid
from affectstore.train.metrics import METRICS, TASK_METRICS, get_metric
from affectstore.train.pooling import SequencePooler, pool_sequences
from affectstore.train.smoothing import TemporalSmoother, smooth_by_group, smoothing_curve

_LAZY = {
    "MLPEstimator": "affectstore.train.mlp",
    "ESTIMATORS": "affectstore.train.estimators",
    "make_estimator": "affectstore.train.estimators",
    "predict_scores": "affectstore.train.estimators",
    "TaskModel": "affectstore.train.pipeline",
    "train_task": "affectstore.train.run",
    "predict_run": "affectstore.train.run",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BlendSearch",
    "ConcatFeatures",
    "ConfidenceOverride",
    "ESTIMATORS",
    "FrameAligner",
    "METRICS",
    "MLPEstimator",
    "SequencePooler",
    "TASK_METRICS",
    "TaskModel",
    "TemporalSmoother",
    "ThresholdSearch",
    "VideoFilter",
    "align_to_frames",
    "apply_decision",
    "confidence_override",
    "fill_missing",
    "get_metric",
    "make_estimator",
    "pool_sequences",
    "predict_run",
    "predict_scores",
    "simplex_grid",
    "smooth_by_group",
    "smoothing_curve",
    "train_task",
    "zero_negative_videos",
]
