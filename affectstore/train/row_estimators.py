"""The row estimators the registry hands out, each a scikit-learn classifier or regressor.

- `MLPRegressor`: the torch MLP with a regression head (``plain``, ``sigmoid``, ``tanh``)
  and loss (``mse``, ``bce``, ``pearson``, ``ccc``); multi-output.
- `MLPClassifier`: the torch MLP with a softmax head and cross-entropy loss.
- `LinearClassifier`: standardise + logistic regression or linear SVC (binary).
- `LinearRegressor`: standardise + ridge; multi-output.

They share their implementation with `MLPEstimator` / `ScaledLinear`, add the
classifier/regressor mixins and narrow ``_parameter_constraints`` to what makes sense
for their kind. All of them have ``fit(X, y, eval_set=None)``, ``predict_scores`` and a
pickle-free ``save`` / ``load``.
"""

from __future__ import annotations


import numbers

from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions

from affectstore.train.linear import ScaledLinear
from affectstore.train.mlp import MLPEstimator

REGRESSION_HEADS = ("plain", "sigmoid", "tanh")
REGRESSION_LOSSES = ("mse", "bce", "pearson", "ccc")


class MLPRegressor(RegressorMixin, MLPEstimator):
    """`MLPEstimator` with a regression head; see its docstring for the parameters."""

    # Parameters that only classifiers have: fixed here so the shared code reads them.
    class_weight = None
    classes = None

    _parameter_constraints = {
        **{k: v for k, v in MLPEstimator._parameter_constraints.items() if k not in ("class_weight", "classes")},
        "head": [StrOptions(set(REGRESSION_HEADS))],
        "loss": [StrOptions(set(REGRESSION_LOSSES))],
    }

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64,),
        dropout: float = 0.0,
        activation: str = "relu",
        head: str = "plain",
        loss: str = "mse",
        output_weights=None,
        class_counts=None,
        standardize: bool = True,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int | None = 512,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float | None = 0.1,
        scoring: str | None = None,
        random_state: int = 0,
        n_threads: int | None = 1,
    ):
        self.hidden_sizes = hidden_sizes
        self.dropout = dropout
        self.activation = activation
        self.head = head
        self.loss = loss
        self.output_weights = output_weights
        self.class_counts = class_counts
        self.standardize = standardize
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.random_state = random_state
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class MLPClassifier(ClassifierMixin, MLPEstimator):
    """`MLPEstimator` with a softmax head and cross-entropy loss (``class_weight``, ``classes`` as there)."""

    head = "softmax"
    loss = "cross_entropy"
    output_weights = None

    _parameter_constraints = {
        k: v for k, v in MLPEstimator._parameter_constraints.items() if k not in ("head", "loss", "output_weights", "class_counts")
    }

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64,),
        dropout: float = 0.0,
        activation: str = "relu",
        class_weight=None,
        classes=None,
        standardize: bool = True,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int | None = 512,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float | None = 0.1,
        scoring: str | None = None,
        random_state: int = 0,
        n_threads: int | None = 1,
    ):
        self.hidden_sizes = hidden_sizes
        self.dropout = dropout
        self.activation = activation
        self.class_weight = class_weight
        self.classes = classes
        self.standardize = standardize
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.random_state = random_state
        self.n_threads = n_threads


class LinearClassifier(ClassifierMixin, ScaledLinear):
    """Standardise, then logistic regression (``kind="logreg"``) or a binary linear SVC (``"svc"``).

    ``C``, ``class_weight`` and ``max_iter`` are scikit-learn's parameters of those classes
    (``max_iter=None`` keeps the class's own default).
    """

    _parameter_constraints = {
        "kind": [StrOptions({"logreg", "svc"})],
        "C": [Interval(numbers.Real, 0.0, None, closed="neither")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "max_iter": [None, Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, kind: str = "logreg", C: float = 1.0, class_weight=None, max_iter: int | None = None):
        self.kind = kind
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter

    def _model_params(self) -> dict:
        p = {"C": self.C, "class_weight": self.class_weight}
        if self.max_iter is not None:  # None: the scikit-learn class's own default (SVC: no limit)
            p["max_iter"] = self.max_iter
        if self.kind == "svc":
            p["kernel"] = "linear"
        return p


class LinearRegressor(RegressorMixin, ScaledLinear):
    """Standardise, then ridge regression with penalty ``alpha``; multi-output."""

    kind = "ridge"
    _parameter_constraints = {"alpha": [Interval(numbers.Real, 0.0, None, closed="left")]}

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _model_params(self) -> dict:
        return {"alpha": self.alpha}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


__all__ = ["LinearClassifier", "LinearRegressor", "MLPClassifier", "MLPRegressor"]
