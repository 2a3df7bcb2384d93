"""A small torch MLP behind the scikit-learn estimator interface.

Heads: ``sigmoid`` (intensities in [0, 1]), ``softmax`` (classes), ``tanh``
(valence/arousal in [-1, 1]), ``plain`` (no activation).
Losses: ``mse``, ``bce`` (sigmoid head), ``cross_entropy`` (softmax head, optional
class weights), ``pearson`` (1 - sum_i w_i r_i over outputs) and ``ccc``
(1 - sum_i w_i CCC_i). The output weights w come either from ``output_weights``
(used as given, normalised to sum 1) or from ``class_counts``, inverted as in
Savchenko 2025 (sec. 3.2): ``w_i = (1 / c_i) / sum_j (1 / c_j)``, so the rarest
emotion weighs most (counts [1, 8, 4, 2, 8, 8] -> [0.471, 0.059, 0.118, 0.235, 0.059, 0.059]).

Training is full-batch or large mini-batches on torch tensors (no per-sample
Python loop), so an EMI-scale problem fits in seconds on a CPU. Early stopping
watches a validation set (``fit(..., eval_set=(X_val, y_val))`` or a random
``validation_fraction`` of the training data) and restores the best epoch.

``save(folder)`` writes ``model.safetensors`` (weights and input scaling) and
``config.json`` (hyper-parameters and learned non-tensor state); ``load(folder)``
reads them back. Neither file can run code when loaded (no pickle).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from affectstore.train.losses import ccc_loss as _ccc_loss, output_weights, pearson_loss as _pearson_loss  # noqa: F401
from affectstore.train.metrics import METRICS, get_metric

logger = logging.getLogger(__name__)

HEADS = ("plain", "sigmoid", "softmax", "tanh")
LOSSES = ("mse", "bce", "cross_entropy", "pearson", "ccc")
ACTIVATIONS = ("relu", "gelu", "tanh")
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@contextlib.contextmanager
def reproducible(random_state: int, n_threads: int | None):
    """Seed torch for one training run and cap its threads, restoring both afterwards.

    ``fork_rng`` keeps the caller's global torch RNG untouched while making the run reproducible."""
    threads = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            yield
    finally:
        torch.set_num_threads(threads)


class _Net(torch.nn.Module):
    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int, dropout: float, activation: str):
        super().__init__()
        act = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "tanh": torch.nn.Tanh}[activation]
        layers: list[torch.nn.Module] = []
        prev = n_in
        for h in hidden:
            layers += [torch.nn.Linear(prev, h), act()]
            if dropout > 0:
                layers.append(torch.nn.Dropout(dropout))
            prev = h
        layers.append(torch.nn.Linear(prev, n_out))
        self.body = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MLPEstimator(BaseEstimator):
    """Multi-layer perceptron on pooled or frame-level features.

    Parameters
    ----------
    hidden_sizes : tuple of positive ints, e.g. (64,); () gives a linear model.
    dropout : float in [0, 1), after each hidden activation.
    activation : "relu", "gelu" or "tanh" for hidden layers.
    head : "plain", "sigmoid", "softmax" or "tanh" (output activation).
    loss : "mse", "bce", "cross_entropy", "pearson" or "ccc".
    class_weight : cross_entropy only: None, "balanced", or one positive weight per class.
    output_weights : pearson / ccc only: one positive weight per output, used as given
        (normalised to sum to 1). None (and no ``class_counts``) weighs outputs equally.
    class_counts : pearson / ccc only: one positive count per output; the weights are
        their normalised inverses (rare outputs weigh more). Exclusive with ``output_weights``.
    classes : softmax only: the full list of class labels (so classes absent from
        the training data still get an output). None: the labels seen in ``fit``.
    standardize : scale inputs to zero mean / unit variance (statistics from the training data).
    learning_rate, weight_decay : Adam settings.
    batch_size : rows per step; None for full batch.
    max_epochs : upper bound on passes over the training data.
    patience : epochs without validation improvement before stopping.
    validation_fraction : used when ``fit`` gets no ``eval_set``: the fraction of the
        training rows held out for early stopping; None trains all ``max_epochs`` epochs.
    scoring : None (validation loss, lower is better) or a metric name from
        ``affectstore.train.metrics.METRICS`` (higher is better) for early stopping.
    random_state : seed for initialisation, shuffling, dropout and the validation split.
    n_threads : torch intra-op threads while fitting / predicting (restored afterwards);
        None leaves torch's setting. Default 1: these matmuls are small, so extra
        threads gain little, and on a busy machine OpenMP oversubscription made a
        2-thread EMI-scale fit 5x slower than 1 thread (1.9 s vs 9 s).
    """

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64,),
        dropout: float = 0.0,
        activation: str = "relu",
        head: str = "plain",
        loss: str = "mse",
        class_weight=None,
        output_weights=None,
        class_counts=None,
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
        self.head = head
        self.loss = loss
        self.class_weight = class_weight
        self.output_weights = output_weights
        self.class_counts = class_counts
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

    _parameter_constraints: dict = {
        "hidden_sizes": [tuple, list],
        "dropout": [Interval(numbers.Real, 0.0, 1.0, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "head": [StrOptions(set(HEADS))],
        "loss": [StrOptions(set(LOSSES))],
        "class_weight": [None, StrOptions({"balanced"}), dict, "array-like"],
        "output_weights": [None, "array-like"],
        "class_counts": [None, "array-like"],
        "classes": [None, "array-like"],
        "standardize": ["boolean"],
        "learning_rate": [Interval(numbers.Real, 0.0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0.0, None, closed="left")],
        "batch_size": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "validation_fraction": [None, Interval(numbers.Real, 0.0, 1.0, closed="neither")],
        "scoring": [None, StrOptions(set(METRICS))],
        "random_state": [Interval(numbers.Integral, None, None, closed="neither")],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
    }

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        """scikit-learn's check of each parameter against ``_parameter_constraints``, then the pairs that go together."""
        super()._validate_params()
        hs = self.hidden_sizes
        if not all(isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in hs):
            raise ValueError(f"hidden_sizes must be a tuple of positive ints. Got {hs!r} instead.")
        if (self.head == "softmax") != (self.loss == "cross_entropy"):
            raise ValueError(
                f"head='softmax' and loss='cross_entropy' go together. Got head={self.head!r} with "
                f"loss={self.loss!r}; use both for classes, or another head/loss pair for regression."
            )
        if self.loss == "bce" and self.head != "sigmoid":
            raise ValueError(f"loss='bce' needs head='sigmoid'. Got head={self.head!r} instead.")
        if self.class_weight is not None and self.loss != "cross_entropy":
            raise ValueError(f"class_weight only applies to loss='cross_entropy'. Got loss={self.loss!r}.")
        if self.output_weights is not None and self.loss not in ("pearson", "ccc"):
            raise ValueError(f"output_weights only applies to loss='pearson' or 'ccc'. Got loss={self.loss!r}.")
        class_counts = getattr(self, "class_counts", None)  # regressors only: the classifier has no such loss
        if class_counts is not None and self.loss not in ("pearson", "ccc"):
            raise ValueError(f"class_counts only applies to loss='pearson' or 'ccc'. Got loss={self.loss!r}.")
        if class_counts is not None and self.output_weights is not None:
            raise ValueError(
                "Give either output_weights (used as given) or class_counts (inverted into weights), not both. "
                f"Got output_weights={self.output_weights!r} and class_counts={class_counts!r}."
            )
        if self.classes is not None and self.head != "softmax":
            raise ValueError(f"classes only applies to head='softmax'. Got head={self.head!r}.")

    def _check_X(self, X, fitted: bool) -> np.ndarray:
        """float32 (n_samples, n_features) via scikit-learn's ``validate_data`` (sets ``n_features_in_`` when fitting)."""
        return validate_data(self, X, reset=not fitted, dtype=np.float32, ensure_min_samples=1)

    def _encode_y(self, y) -> np.ndarray:
        """Targets as float32 (n, n_outputs) for regression, int64 class indices for softmax."""
        y = np.asarray(y)
        if self.head == "softmax":
            if y.ndim != 1:
                raise ValueError(f"head='softmax' needs 1-D class labels. Got y of shape {y.shape} instead.")
            idx = np.searchsorted(self.classes_, y)
            idx = np.clip(idx, 0, len(self.classes_) - 1)
            unknown = self.classes_[idx] != y
            if unknown.any():
                raise ValueError(
                    f"y holds labels {np.unique(y[unknown])[:10].tolist()} that are not in classes "
                    f"{self.classes_.tolist()}; pass classes= with every label."
                )
            return idx.astype(np.int64)
        y = y.astype(np.float32)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != self.n_outputs_:
            raise ValueError(f"y must have {self.n_outputs_} output column(s). Got shape {np.shape(y)} instead.")
        if not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinite values; drop unlabelled rows (e.g. EXPR -1, VA -5) first.")
        if self.loss == "bce" and ((y < 0) | (y > 1)).any():
            raise ValueError("loss='bce' needs targets in [0, 1]. Got values outside that range.")
        return y

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, eval_set: tuple | None = None):
        """Train on (X, y); early stopping on ``eval_set=(X_val, y_val)`` or a held-out fraction."""
        self._validate_params()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        if self.head == "softmax":
            X, y_arr = validate_data(self, X, y, dtype=np.float32)
            check_classification_targets(y_arr)
        else:
            X, y_arr = validate_data(self, X, y, dtype=np.float32, multi_output=True, y_numeric=True)
        if self.head == "softmax":
            classes = np.unique(y_arr) if self.classes is None else np.asarray(self.classes)
            if len(np.unique(classes)) != len(classes) or len(classes) < 2:
                one = " (one class cannot be learned)" if len(np.unique(classes)) == 1 else ""
                raise ValueError(f"classes must hold at least 2 distinct labels. Got {classes.tolist()} instead{one}.")
            self.classes_ = np.sort(classes)
            self.n_outputs_ = len(self.classes_)
            self.y_ndim_ = 1
        else:
            self.y_ndim_ = y_arr.ndim
            self.n_outputs_ = 1 if y_arr.ndim == 1 else y_arr.shape[1]
        Y = self._encode_y(y_arr)

        if eval_set is not None:
            if len(eval_set) != 2:
                raise ValueError("eval_set must be a pair (X_val, y_val).")
            Xv, Yv = self._check_X(eval_set[0], fitted=True), self._encode_y(eval_set[1])
            if Xv.shape[0] != Yv.shape[0]:
                raise ValueError(f"eval_set X and y differ in length: {Xv.shape[0]} and {Yv.shape[0]}.")
        elif self.validation_fraction is not None:
            rng = np.random.default_rng(self.random_state)
            perm = rng.permutation(X.shape[0])
            n_val = max(1, int(round(self.validation_fraction * X.shape[0])))
            if X.shape[0] - n_val < 1:
                raise ValueError(
                    f"Got n_samples = {X.shape[0]}: validation_fraction={self.validation_fraction} leaves no training "
                    "rows. Pass 2 or more samples, an eval_set, or validation_fraction=None."
                )
            Xv, Yv = X[perm[:n_val]], Y[perm[:n_val]]
            X, Y = X[perm[n_val:]], Y[perm[n_val:]]
        else:
            Xv = Yv = None

        if self.standardize:
            self.mean_ = X.mean(axis=0).astype(np.float32)
            std = X.std(axis=0)
            # Constant features would divide by 0; leave them centred, unscaled.
            self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        else:
            self.mean_ = np.zeros(X.shape[1], np.float32)
            self.scale_ = np.ones(X.shape[1], np.float32)

        started = time.perf_counter()
        with reproducible(self.random_state, self.n_threads):
            self._train(X, Y, Xv, Yv)
        self.fit_seconds_ = time.perf_counter() - started
        logger.debug(
            "MLP fitted: %d epochs (best %d), %.2f s, best validation %s.",
            self.n_epochs_, self.best_epoch_, self.fit_seconds_, self.best_score_,
        )
        return self

    def _loss_fn(self, Y_train: np.ndarray):
        if self.loss == "cross_entropy":
            k = self.n_outputs_
            if self.class_weight is None:
                w = None
            elif isinstance(self.class_weight, str):
                if self.class_weight != "balanced":
                    raise ValueError(f"class_weight must be None, 'balanced' or a list of weights. Got {self.class_weight!r}.")
                counts = np.bincount(Y_train, minlength=k).astype(np.float64)
                # Classes absent from training get weight 0 rather than an infinite one.
                w = np.where(counts > 0, len(Y_train) / (k * np.maximum(counts, 1)), 0.0)
            elif isinstance(self.class_weight, dict):  # {label: weight}; unnamed classes weigh 1
                w = np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_.tolist()])
                if (w < 0).any():
                    raise ValueError(f"class_weight must hold non-negative weights. Got {self.class_weight!r}.")
            else:
                w = np.asarray(self.class_weight, dtype=np.float64)
                if w.shape != (k,) or (w < 0).any():
                    raise ValueError(f"class_weight must hold {k} non-negative weights. Got {self.class_weight!r}.")
            wt = None if w is None else torch.as_tensor(w, dtype=torch.float32)
            self.class_weight_ = None if w is None else w.tolist()
            return lambda z, t: torch.nn.functional.cross_entropy(z, t, weight=wt)
        if self.loss == "bce":
            return lambda z, t: torch.nn.functional.binary_cross_entropy_with_logits(z, t)
        if self.loss in ("pearson", "ccc"):
            w = output_weights(self.n_outputs_, self.output_weights, getattr(self, "class_counts", None))
            self.output_weights_ = w.tolist()
            wt = torch.as_tensor(w, dtype=torch.float32)
            fn = _pearson_loss if self.loss == "pearson" else _ccc_loss
            return lambda z, t: fn(self._activate(z), t, wt)
        return lambda z, t: torch.nn.functional.mse_loss(self._activate(z), t)

    def _activate(self, z: torch.Tensor) -> torch.Tensor:
        if self.head == "sigmoid":
            return torch.sigmoid(z)
        if self.head == "tanh":
            return torch.tanh(z)
        if self.head == "softmax":
            return torch.softmax(z, dim=1)
        return z

    def _train(self, X, Y, Xv, Yv) -> None:
        self.net_ = _Net(self.n_features_in_, tuple(int(h) for h in self.hidden_sizes), self.n_outputs_,
                         float(self.dropout), self.activation)
        loss_fn = self._loss_fn(Y)
        xt = torch.from_numpy((X - self.mean_) / self.scale_)
        yt = torch.from_numpy(Y)
        xv = yv = None
        if Xv is not None:
            xv = torch.from_numpy((Xv - self.mean_) / self.scale_)
            yv = torch.from_numpy(Yv)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.random_state)
        n = xt.shape[0]
        bs = n if self.batch_size is None else min(int(self.batch_size), n)
        metric = get_metric(self.scoring) if self.scoring is not None else None
        best = -math.inf
        best_state = None
        self.history_ = []
        self.best_epoch_ = 0
        since_best = 0
        epoch = 0
        for epoch in range(1, self.max_epochs + 1):
            self.net_.train()
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, bs):
                idx = perm[start:start + bs]
                if idx.numel() < 2 and self.loss in ("pearson", "ccc"):
                    continue  # a correlation over one row is undefined
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(self.net_(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            if xv is None:
                continue
            self.net_.eval()
            with torch.no_grad():
                zv = self.net_(xv)
                if metric is None:
                    score = -float(loss_fn(zv, yv))
                else:
                    score = float(metric(self._to_targets(Yv), self._decode(self._activate(zv).numpy())))
            self.history_.append(score if metric is not None else -score)
            if score > best + 1e-12:
                best, since_best, self.best_epoch_ = score, 0, epoch
                best_state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
            else:
                since_best += 1
                if since_best >= self.patience:
                    break
        self.n_epochs_ = epoch
        if best_state is not None:
            self.net_.load_state_dict(best_state)
            self.best_score_ = best if metric is not None else -best
        else:
            self.best_epoch_ = epoch
            self.best_score_ = None
        self.net_.eval()

    def _to_targets(self, Y: np.ndarray) -> np.ndarray:
        """Encoded targets back to the shape ``predict`` returns (for scoring)."""
        if self.head == "softmax":
            return self.classes_[Y]
        return Y[:, 0] if self.y_ndim_ == 1 else Y

    def _decode(self, out: np.ndarray) -> np.ndarray:
        if self.head == "softmax":
            return self.classes_[out.argmax(axis=1)]
        return out[:, 0] if self.y_ndim_ == 1 else out

    # ------------------------------------------------------------------ predicting
    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "net_")
        X = self._check_X(X, fitted=True)
        threads = torch.get_num_threads()
        if self.n_threads is not None:
            torch.set_num_threads(self.n_threads)
        try:
            self.net_.eval()
            outs = []
            with torch.no_grad():
                # Chunks bound the memory of the hidden activations on very long frame-level inputs.
                for start in range(0, X.shape[0], 65536):
                    xb = torch.from_numpy((X[start:start + 65536] - self.mean_) / self.scale_)
                    outs.append(self._activate(self.net_(xb)).numpy())
        finally:
            torch.set_num_threads(threads)
        return np.concatenate(outs, axis=0) if outs else np.zeros((0, self.n_outputs_), np.float32)

    def predict(self, X) -> np.ndarray:
        """Head outputs (shape of the training y) for regression heads; class labels for softmax."""
        out = self._decode(self._forward(X))
        return out if self.head == "softmax" else out.astype(np.float64)

    def _has_proba(self) -> bool:
        return self.head == "softmax"

    @available_if(_has_proba)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order (softmax head only)."""
        return self._forward(X).astype(np.float64)

    # ------------------------------------------------------------------ persistence
    @classmethod
    def _format(cls) -> str:
        return f"affectstore.{cls.__name__}"

    def predict_scores(self, X) -> np.ndarray:
        """What blending works on: class probabilities (softmax head), else the head's outputs."""
        return self.predict_proba(X) if self.head == "softmax" else self.predict(X)

    def save(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``folder``; returns the folder."""
        check_is_fitted(self, "net_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().contiguous() for k, v in self.net_.state_dict().items()}
        tensors["input.mean"] = torch.from_numpy(self.mean_)
        tensors["input.scale"] = torch.from_numpy(self.scale_)
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": self._format()})
        params = self.get_params(deep=False)
        for k in ("hidden_sizes", "class_weight", "output_weights", "class_counts", "classes"):
            if params.get(k) is not None and not isinstance(params[k], (str, dict)):
                params[k] = np.asarray(params[k]).tolist()
        state = {
            "n_features_in_": int(self.n_features_in_),
            "n_outputs_": int(self.n_outputs_),
            "y_ndim_": int(self.y_ndim_),
            "n_epochs_": int(self.n_epochs_),
            "best_epoch_": int(self.best_epoch_),
            "best_score_": self.best_score_,
            "history_": [float(h) for h in self.history_],
        }
        if self.head == "softmax":
            state["classes_"] = self.classes_.tolist()
        for k in ("class_weight_", "output_weights_"):
            if hasattr(self, k):
                state[k] = getattr(self, k)
        config = {"format": self._format(), "format_version": FORMAT_VERSION,
                  "params": params, "state": state}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> MLPEstimator:
        """Rebuild a fitted estimator from a folder written by ``save``."""
        folder = Path(folder)
        cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: {folder} is not a folder written by {cls.__name__}.save().")
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
        if config.get("format") != cls._format() or config.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{cfg_path} holds format {config.get('format')!r} version {config.get('format_version')!r}; "
                f"expected {cls._format()!r} version {FORMAT_VERSION}."
            )
        params = dict(config["params"])
        params["hidden_sizes"] = tuple(params["hidden_sizes"])
        est = cls(**params)
        est._validate_params()
        state = config["state"]
        for k, v in state.items():
            setattr(est, k, v)
        if "classes_" in state:
            est.classes_ = np.asarray(state["classes_"])
        tensors = load_file(str(w_path))
        est.mean_ = tensors.pop("input.mean").numpy()
        est.scale_ = tensors.pop("input.scale").numpy()
        est.net_ = _Net(est.n_features_in_, params["hidden_sizes"], est.n_outputs_, float(est.dropout), est.activation)
        est.net_.load_state_dict({k.removeprefix("net."): v for k, v in tensors.items()}, strict=True)
        est.net_.eval()
        return est
