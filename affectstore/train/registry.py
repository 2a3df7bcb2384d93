"""One registry of the estimators a recipe can name, and the protocol they all follow.

Every estimator, row or sequence, is a scikit-learn style class with

- ``fit(X, y, eval_set=None)`` returning self (``eval_set=(X_val, y_val)`` for those that
  early-stop on validation data; the others accept and ignore it),
- ``predict_scores(X)``: what blending, thresholds and smoothing work on: (N,) positive
  class probability for binary, (N, C) probabilities in ``classes_`` order for
  multi-class, (N, K) values for regression and multi-label,
- ``save(folder)`` / ``load(folder)`` (class method): safetensors + JSON, never pickle.

An `EstimatorEntry` says, per problem type (regression, binary, multiclass, multilabel),
which class to build and with which default parameters, whether the estimator takes a
validation set (``takes_eval_set``) and whether it consumes pooled/aligned ``rows`` or
``sequences`` (`affectstore.train.sequence.SequenceView`). Classes are named by import path
so that listing the registry loads no torch.

Adding an estimator is one module with its class plus one `register` line below.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

ROWS = "rows"
SEQUENCES = "sequences"
REGRESSION = "regression"
BINARY = "binary"
MULTICLASS = "multiclass"
MULTILABEL = "multilabel"
PROBLEMS = (REGRESSION, BINARY, MULTICLASS, MULTILABEL)


@dataclass(frozen=True)
class EstimatorEntry:
    """How to build one named estimator for each problem type it supports.

    ``problems`` maps a problem type to ``("module:Class", default parameters)``;
    ``task_params`` names the `TaskSpec` attribute holding task-specific defaults for this
    estimator (the MLP's per-task head and loss), applied over the problem defaults.
    """

    name: str
    problems: Mapping[str, tuple[str, Mapping[str, Any]]]
    consumes: str = ROWS
    takes_eval_set: bool = False
    task_params: str | None = None
    description: str = ""
    _classes: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        bad = [p for p in self.problems if p not in PROBLEMS]
        if bad or not self.problems:
            raise ValueError(f"Estimator {self.name!r}: problem types must be some of {PROBLEMS}. Got {list(self.problems)}.")
        if self.consumes not in (ROWS, SEQUENCES):
            raise ValueError(f"Estimator {self.name!r}: consumes must be {ROWS!r} or {SEQUENCES!r}. Got {self.consumes!r}.")

    def _check_problem(self, problem: str) -> None:
        if problem not in self.problems:
            raise ValueError(
                f"Estimator {self.name!r} does not handle {problem} problems; it handles {', '.join(self.problems)}. "
                f"Estimators for {problem}: {', '.join(names_for(problem)) or 'none'}."
            )

    def estimator_class(self, problem: str) -> type:
        """The class built for ``problem`` (imported on first use)."""
        self._check_problem(problem)
        target = self.problems[problem][0]
        if target not in self._classes:
            module, _, attr = target.partition(":")
            self._classes[target] = getattr(importlib.import_module(module), attr)
        return self._classes[target]

    def defaults(self, problem: str) -> dict[str, Any]:
        """Default parameters for ``problem``."""
        self._check_problem(problem)
        return dict(self.problems[problem][1])

    def build(self, problem: str, params: Mapping[str, Any] | None = None, task_defaults: Mapping[str, Any] | None = None):
        """An unfitted estimator: problem defaults, then ``task_defaults``, then ``params``.

        A name the class has no parameter for is dropped when the class fixes that
        attribute to the same value (an MLP classifier's ``head="softmax"``); any other
        unknown name is an error listing the valid parameters.
        """
        cls = self.estimator_class(problem)
        valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
        merged = self.defaults(problem)
        for source in (task_defaults or {}, params or {}):
            for key, value in source.items():
                if key in valid or getattr(cls, key, object()) != value:
                    merged[key] = value  # unknown names stay, to be reported below
        unknown = sorted(set(merged) - valid)
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} for estimator {self.name!r} ({cls.__name__}). "
                f"Valid parameters: {sorted(valid)}."
            )
        for key in ("hidden_sizes",):
            if isinstance(merged.get(key), list):
                merged[key] = tuple(merged[key])  # TOML and JSON give lists
        est = cls(**merged)
        if hasattr(est, "_parameter_constraints"):  # scikit-learn style validation where the class declares it
            est._validate_params()
        return est


REGISTRY: dict[str, EstimatorEntry] = {}


def register(entry: EstimatorEntry) -> EstimatorEntry:
    """Add ``entry``; a name registered twice is an error."""
    if entry.name in REGISTRY:
        raise ValueError(f"Estimator {entry.name!r} is already registered; pick another name.")
    REGISTRY[entry.name] = entry
    return entry


def get_entry(name: str) -> EstimatorEntry:
    """The entry of ``name``; unknown names list the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown estimator {name!r}. Use one of {sorted(REGISTRY)}.") from None


def names_for(problem: str) -> list[str]:
    """Registered estimators that handle ``problem``."""
    return sorted(n for n, e in REGISTRY.items() if problem in e.problems)


def load_estimator(folder, name: str, problem: str):
    """A fitted estimator saved by ``save`` in ``folder``, rebuilt by its entry's class."""
    return get_entry(name).estimator_class(problem).load(folder)


_MLP_REG = "affectstore.train.row_estimators:MLPRegressor"
_MLP_CLF = "affectstore.train.row_estimators:MLPClassifier"
_LIN_CLF = "affectstore.train.row_estimators:LinearClassifier"
_LIN_REG = "affectstore.train.row_estimators:LinearRegressor"
_SIGMOID_BCE = {"head": "sigmoid", "loss": "bce"}

register(EstimatorEntry("mlp", {REGRESSION: (_MLP_REG, {}), BINARY: (_MLP_REG, _SIGMOID_BCE),
                                MULTICLASS: (_MLP_CLF, {"class_weight": "balanced"}), MULTILABEL: (_MLP_REG, _SIGMOID_BCE)},
                        takes_eval_set=True, task_params="mlp", description="torch MLP on pooled or aligned rows"))
register(EstimatorEntry("logreg", {BINARY: (_LIN_CLF, {"kind": "logreg"}), MULTICLASS: (_LIN_CLF, {"kind": "logreg"})},
                        description="standardised logistic regression"))
register(EstimatorEntry("svc", {BINARY: (_LIN_CLF, {"kind": "svc"})}, description="standardised linear SVC (decision values)"))
register(EstimatorEntry("ridge", {REGRESSION: (_LIN_REG, {})}, description="standardised ridge regression"))

# Sequence models (affectstore.train.models): they read `Batch.sequences` and early-stop on the tuning items.
_SEQ = "affectstore.train.models."
_PAPER_EMI = {"learning_rate": 1e-4, "max_epochs": 30, "batch_size": 32, "dropout": 0.1, "warmup_epochs": 1.0}
_CLS = {BINARY: {"loss": "bce", "scoring": "weighted_f1"}, MULTICLASS: {"loss": "cross_entropy", "scoring": "macro_f1"}}
register(EstimatorEntry("lstm-fusion", {
    REGRESSION: (_SEQ + "lstm_fusion:LSTMFusion", {**_PAPER_EMI, "loss": "mse", "scoring": "mean_pearson_r", "patience": 5}),
    BINARY: (_SEQ + "lstm_fusion:LSTMFusion", {**_PAPER_EMI, **_CLS[BINARY], "patience": 5}),
    MULTICLASS: (_SEQ + "lstm_fusion:LSTMFusion", {**_PAPER_EMI, **_CLS[MULTICLASS], "patience": 5}),
}, consumes=SEQUENCES, takes_eval_set=True, description="per-modality LSTMs + Tanh fusion (Hallmen 2024/2025 EMI)"))
register(EstimatorEntry("bah-window", {
    BINARY: (_SEQ + "bah_window:BAHWindow", {"learning_rate": 7.5e-6, "max_epochs": 10, "batch_size": 32, "dropout": 0.1,
                                             "warmup_epochs": 0.0, **_CLS[BINARY], "balanced": True, "homogeneous": 2.0}),
    MULTICLASS: (_SEQ + "bah_window:BAHWindow", {"learning_rate": 7.5e-6, "max_epochs": 10, "dropout": 0.1,
                                                 "warmup_epochs": 0.0, **_CLS[MULTICLASS]}),
    REGRESSION: (_SEQ + "bah_window:BAHWindow", {"learning_rate": 7.5e-6, "max_epochs": 10, "dropout": 0.1,
                                                 "warmup_epochs": 0.0, "loss": "ccc", "scoring": "mean_ccc"}),
}, consumes=SEQUENCES, takes_eval_set=True, description="centred windows per target frame, LSTM fusion (Hallmen 2025 BAH)"))
register(EstimatorEntry("tcn-qam", {
    REGRESSION: (_SEQ + "tcn_qam:TCNQAM", {**_PAPER_EMI, "loss": "mse", "scoring": "mean_pearson_r", "ema": 0.999,
                                           "schedule": "cosine_restarts", "restart_epochs": 10}),
}, consumes=SEQUENCES, takes_eval_set=True, description="TCN + gated BiLSTM + quality-aware Transformer fusion (Yu 2025 EMI)"))
register(EstimatorEntry("tcn-xattn", {
    REGRESSION: (_SEQ + "tcn_xattn:TCNXAttn", {**_PAPER_EMI, "loss": "ccc", "scoring": "mean_ccc"}),
}, consumes=SEQUENCES, takes_eval_set=True, description="multi-scale TCN + visual-query cross-attention (Yu 2025 VA)"))
