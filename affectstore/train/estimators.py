"""Estimators by the short names recipes use, and one way to get scores from any of them.

``make_estimator(name, problem, **params)`` builds an unfitted estimator from the
registry (`affectstore.train.registry`): the problem type picks the class and its default
parameters, ``params`` override them. ``predict_scores`` gives the continuous output that
blending, thresholds and smoothing work on, whatever the estimator.
"""

from __future__ import annotations

import logging

import numpy as np

from affectstore.train.registry import BINARY, MULTICLASS, REGISTRY, REGRESSION, get_entry

logger = logging.getLogger(__name__)

ESTIMATORS = REGISTRY


def make_estimator(name: str, problem: str | None = None, **params):
    """An unfitted estimator from its registry name, problem type and hyper-parameters.

    ``problem`` None takes the entry's first problem type (e.g. regression for ``mlp``).
    """
    entry = get_entry(name)
    problem = problem or next(iter(entry.problems))
    return entry.build(problem, params)


def predict_scores(estimator, X) -> np.ndarray:
    """Continuous scores of a fitted estimator.

    The estimator's own ``predict_scores`` when it has one (every registered estimator
    does); otherwise, for plain scikit-learn models:

    - ``predict_proba`` where available (binary classifiers: the probability of the
      positive class as a 1-D array; multi-class: (n, n_classes)),
    - else ``decision_function`` (e.g. ``SVC(probability=False)``; not a
      probability, so blend it only with other decision values or rescale first),
    - else ``predict`` (regressors).
    """
    if hasattr(estimator, "predict_scores"):
        return np.asarray(estimator.predict_scores(X))
    if hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(X))
        return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba
    if hasattr(estimator, "decision_function"):
        return np.asarray(estimator.decision_function(X))
    return np.asarray(estimator.predict(X))


__all__ = ["BINARY", "ESTIMATORS", "MULTICLASS", "REGRESSION", "make_estimator", "predict_scores"]
