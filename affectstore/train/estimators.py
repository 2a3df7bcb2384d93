"""Estimators by the short names recipes use, and one way to get scores from any of them.

``make_estimator("mlp" | "logreg" | "svc" | "ridge", **params)`` builds an
unfitted estimator: our torch ``MLPEstimator`` or scikit-learn's
``LogisticRegression``, ``SVC`` and ``Ridge`` (which already follow the estimator
contract). ``predict_scores`` gives the continuous output that blending,
thresholds and smoothing work on, whatever the estimator.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.svm import SVC

from affectstore.train.mlp import MLPEstimator

logger = logging.getLogger(__name__)

ESTIMATORS = {
    "mlp": MLPEstimator,
    "logreg": LogisticRegression,
    "svc": SVC,
    "ridge": Ridge,
}


def make_estimator(name: str, **params):
    """An unfitted estimator from its short name and hyper-parameters."""
    if name not in ESTIMATORS:
        raise ValueError(f"Unknown estimator {name!r}. Use one of {sorted(ESTIMATORS)}.")
    cls = ESTIMATORS[name]
    try:
        return cls(**params)
    except TypeError as err:
        valid = sorted(cls().get_params())
        raise ValueError(f"Bad parameters for estimator {name!r}: {err}. Valid parameters: {valid}.") from None


def predict_scores(estimator, X) -> np.ndarray:
    """Continuous scores of a fitted estimator.

    - ``predict_proba`` where available (binary classifiers: the probability of the
      positive class as a 1-D array; multi-class: (n, n_classes)),
    - else ``decision_function`` (e.g. ``SVC(probability=False)``; not a
      probability, so blend it only with other decision values or rescale first),
    - else ``predict`` (regressors, MLP regression heads).
    """
    if hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(X))
        return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba
    if hasattr(estimator, "decision_function"):
        return np.asarray(estimator.decision_function(X))
    return np.asarray(estimator.predict(X))
