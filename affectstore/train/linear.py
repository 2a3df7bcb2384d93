"""scikit-learn linear models that save to safetensors + JSON (no pickle, no joblib).

`ScaledLinear` standardises its input, fits a scikit-learn ``LogisticRegression``,
``Ridge`` or linear-kernel binary ``SVC``, then keeps only what predicting needs:
``mean_``, ``scale_``, ``coef_``, ``intercept_`` (and ``classes_``). Predictions are
computed from those arrays, so a model loaded from disk predicts exactly what the
fitted one did, and loading runs no code from the file.

Scores (``predict_scores`` in `affectstore.train.estimators`):
- logistic: ``predict_proba`` (sigmoid for 2 classes, softmax otherwise, as scikit-learn),
- svc: ``decision_function`` (binary only),
- ridge: ``predict``.
Non-linear kernels are refused: their state (support vectors, libsvm internals) has no
safe, portable format here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.svm import SVC
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

logger = logging.getLogger(__name__)

KINDS = {"logreg": LogisticRegression, "ridge": Ridge, "svc": SVC}
WEIGHTS_FILE = "linear.safetensors"
CONFIG_FILE = "linear.json"
FORMAT = "affectstore.ScaledLinear"


class ScaledLinear(BaseEstimator):
    """Standardise, then a linear scikit-learn model; saves without pickle.

    Parameters
    ----------
    kind : "logreg", "ridge" or "svc" (linear kernel, binary).
    params : keyword arguments for the scikit-learn class (e.g. ``{"C": 0.1}``).
    """

    _parameter_constraints: dict = {"kind": [StrOptions(set(KINDS))], "params": [None, dict]}

    def __init__(self, kind: str = "logreg", params: dict | None = None):
        self.kind = kind
        self.params = params

    def _make(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}. Got {self.kind!r} instead.")
        self._validate_params()
        params = self._model_params()
        if self.kind == "svc":
            kernel = params.setdefault("kernel", "linear")
            if kernel != "linear":
                raise ValueError(
                    f"svc kernel must be 'linear' to be saved without pickle. Got kernel={kernel!r}; "
                    "use kernel='linear', or estimator 'mlp' for a non-linear model."
                )
        try:
            return KINDS[self.kind](**params)
        except TypeError as err:
            valid = sorted(KINDS[self.kind]().get_params())
            raise ValueError(f"Bad parameters for {self.kind!r}: {err}. Valid parameters: {valid}.") from None

    def _model_params(self) -> dict:
        """Keyword arguments for the scikit-learn class."""
        return dict(self.params or {})

    def fit(self, X, y, eval_set=None):
        """Fit on standardised X (``eval_set`` is accepted for the common protocol and unused: nothing early-stops)."""
        model = self._make()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        if self.kind == "ridge":
            X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        else:
            X, y = validate_data(self, X, y, dtype=np.float64)
            check_classification_targets(y)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        model.fit((X - self.mean_) / self.scale_, y)
        if self.kind == "svc" and len(model.classes_) != 2:
            raise ValueError(f"svc is supported for 2 classes only. Got {len(model.classes_)} classes; use 'logreg'.")
        self.coef_ = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
        self.intercept_ = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
        self.y_ndim_ = int(np.ndim(y))
        if getattr(model, "n_iter_", None) is not None:
            self.n_iter_ = np.atleast_1d(np.asarray(model.n_iter_)).astype(np.int64)
        if hasattr(model, "classes_"):
            self.classes_ = np.asarray(model.classes_)
        return self

    def _linear(self, X) -> np.ndarray:
        """Linear scores: (N,) for binary models and single-output ridge, else (N, K)."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        d = ((X - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        return d[:, 0] if d.shape[1] == 1 else d

    def _is_classifier(self) -> bool:
        return self.kind != "ridge"

    @available_if(_is_classifier)
    def decision_function(self, X) -> np.ndarray:
        """Signed distance to the decision boundary: (N,) for 2 classes, else (N, n_classes)."""
        return self._linear(X)

    def _is_logistic(self) -> bool:
        return self.kind == "logreg"

    @available_if(_is_logistic)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (N, n_classes) as scikit-learn's LogisticRegression gives them."""
        d = self.decision_function(X)
        if d.ndim == 1:
            p1 = expit(d)
            return np.stack([1.0 - p1, p1], axis=1)
        return softmax(d, axis=1)

    def predict_scores(self, X) -> np.ndarray:
        """Blendable scores: probabilities (logreg; the positive class's for 2 classes), decision values (svc),
        values (ridge)."""
        if self.kind == "logreg":
            p = self.predict_proba(X)
            return p[:, 1] if p.shape[1] == 2 else p
        return self._linear(X)

    def predict(self, X) -> np.ndarray:
        """Class labels (logreg, svc) or values (ridge)."""
        d = self._linear(X)
        if self.kind == "ridge":
            return d
        if d.ndim == 1:
            return self.classes_[(d > 0).astype(int)]
        return self.classes_[d.argmax(axis=1)]

    def save(self, folder: str | Path) -> Path:
        """Write ``linear.safetensors`` and ``linear.json`` into ``folder``."""
        check_is_fitted(self, "coef_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"mean": self.mean_, "scale": self.scale_, "coef": self.coef_, "intercept": self.intercept_}
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(folder / WEIGHTS_FILE))
        classes = self.classes_.tolist() if hasattr(self, "classes_") else None
        config = {"format": FORMAT, "class": type(self).__name__, "init": self.get_params(deep=False), "classes": classes,
                  "n_features_in": int(self.n_features_in_), "y_ndim": self.y_ndim_}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ScaledLinear:
        """Rebuild a fitted model from a folder written by `save`."""
        folder = Path(folder)
        for p in (folder / CONFIG_FILE, folder / WEIGHTS_FILE):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: {folder} is not a folder written by ScaledLinear.save().")
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        if config.get("format") != FORMAT:
            raise ValueError(f"{folder / CONFIG_FILE} holds format {config.get('format')!r}; expected {FORMAT!r}.")
        if config.get("class", cls.__name__) != cls.__name__:
            raise ValueError(f"{folder / CONFIG_FILE} holds a {config['class']}; load it with that class, not {cls.__name__}.")
        est = cls(**config["init"]) if "init" in config else cls(config["kind"], config["params"])
        t = load_file(str(folder / WEIGHTS_FILE))
        est.mean_, est.scale_, est.coef_, est.intercept_ = t["mean"], t["scale"], t["coef"], t["intercept"]
        est.n_features_in_ = int(config["n_features_in"])
        est.y_ndim_ = int(config["y_ndim"])
        if config["classes"] is not None:
            est.classes_ = np.asarray(config["classes"])
        return est
