"""The tasks `affect train` knows: dataset adapter, level, problem, defaults, metric, submission.

========  ==========  =====  =================  ==========================================
task      adapter     level  problem            metric (challenge)
========  ==========  =====  =================  ==========================================
emi       emi         video  regression (6)     mean Pearson r over the six emotions
bah       bah         frame  binary             F1 weighted by class support
expr      affwild2    frame  multiclass (8)     macro F1 over the 8 classes
va        affwild2    frame  regression (2)     mean CCC of valence and arousal
au        affwild2    frame  multilabel (12)    mean binary F1 over the 12 action units,
                                                one threshold per AU chosen on tuning data
bah-video bah         video  binary             macro F1 of the split files' video label
clips     clips       video  one per target     classification: macro F1 (+ accuracy);
                                                regression: Pearson r (+ CCC)
========  ==========  =====  =================  ==========================================

`TaskSpec` is the fixed description; clips builds one spec per labels.csv target
(`clips_target_spec`), since the CSV decides whether a target is a class or a number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

from affectstore.train import submission
from affectstore.train.errors import TrainError
from affectstore.train.metrics import (
    AU_NAMES,
    EMI_EMOTIONS,
    au_mean_f1,
    EXPR_CLASSES,
    accuracy,
    ccc_per_output,
    expr_macro_f1,
    macro_f1,
    mean_ccc,
    mean_pearson_r,
    pearson_r_per_output,
    per_label_f1,
    weighted_f1,
)

REGRESSION = "regression"
BINARY = "binary"
MULTICLASS = "multiclass"
MULTILABEL = "multilabel"  # several 0/1 labels per row (action units)


@dataclass(frozen=True)
class TaskSpec:
    """Everything a run needs to know about a task (one target set).

    ``outputs``: names of the output columns (regression) or of the classes.
    ``metric``: the challenge metric name (also what searches maximise);
    ``blend_metric``: the metric a per-output blend maximises column by column.
    ``mlp``: default MLPEstimator parameters (a recipe's ``[estimator]`` overrides them).
    ``submission``: writer name (emi, bah, expr, va) or None.
    """

    name: str
    dataset: str
    level: str
    problem: str
    outputs: tuple[str, ...]
    metric: str
    blend_metric: str
    mlp: dict = field(default_factory=dict)
    adapter_options: dict = field(default_factory=dict)
    submission: str | None = None
    target: str | None = None  # clips: the labels.csv column

    @property
    def decision(self):
        """How scores become labels for the metric: None, 0.5 threshold or argmax."""
        return {REGRESSION: None, BINARY: 0.5, MULTICLASS: "argmax", MULTILABEL: 0.5}[self.problem]

    def metric_fn(self) -> Callable[[np.ndarray, np.ndarray], float]:
        return TASK_METRIC_FUNCTIONS[self.metric]

    def scores(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict:
        """The challenge metric, the task's secondary metrics and per-output scores."""
        out: dict = {"n": int(len(y_true))}
        if self.problem == REGRESSION:
            t = np.asarray(y_true, np.float64).reshape(len(y_true), -1)
            p = np.asarray(y_pred, np.float64).reshape(len(y_pred), -1)
            r = pearson_r_per_output(t, p)
            c = ccc_per_output(t, p)
            out[self.metric] = float(self.metric_fn()(t, p))
            out["pearson_r"] = float(r.mean())
            out["ccc"] = float(c.mean())
            out["per_output"] = {
                name: {"pearson_r": float(r[k]), "ccc": float(c[k])} for k, name in enumerate(self.outputs)
            }
        elif self.problem == MULTILABEL:
            t = np.asarray(y_true).astype(np.int64)
            p = np.asarray(y_pred).astype(np.int64)
            f1 = per_label_f1(t, p)
            out[self.metric] = float(self.metric_fn()(t, p))
            out["per_output"] = {name: {"f1": float(f1[k]), "support": int(t[:, k].sum())}
                                 for k, name in enumerate(self.outputs)}
        else:
            t = np.asarray(y_true).astype(np.int64).reshape(-1)
            p = np.asarray(y_pred).astype(np.int64).reshape(-1)
            out[self.metric] = float(self.metric_fn()(t, p))
            out["macro_f1"] = float(macro_f1(t, p, labels=list(range(len(self.outputs)))))
            out["weighted_f1"] = float(weighted_f1(t, p))
            out["accuracy"] = float(accuracy(t, p))
            labels = list(range(len(self.outputs)))
            # Unweighted average recall (UAR) over the classes present in the truth, as sklearn.
            out["balanced_accuracy"] = float(balanced_accuracy_score(t, p))
            prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
            out["per_output"] = {name: {"f1": float(f1[k]), "precision": float(prec[k]), "recall": float(rec[k]),
                                        "support": int(sup[k])} for k, name in enumerate(self.outputs)}
            out["confusion_matrix"] = {"labels": list(self.outputs),
                                       "rows_true_cols_pred": confusion_matrix(t, p, labels=labels).tolist()}
        return out

    def per_output_key(self) -> str:
        """The per-output score plotted in reports."""
        if self.problem != REGRESSION:
            return "f1"
        return "ccc" if self.metric in ("mean_ccc", "ccc") else "pearson_r"


def _clips_macro_f1(y_true, y_pred) -> float:
    return macro_f1(y_true, y_pred)


def _binary_macro_f1(y_true, y_pred) -> float:
    return macro_f1(y_true, y_pred, labels=[0, 1])


TASK_METRIC_FUNCTIONS: dict[str, Callable] = {
    "mean_pearson_r": mean_pearson_r,
    "weighted_f1": weighted_f1,
    "expr_macro_f1": expr_macro_f1,
    "mean_ccc": mean_ccc,
    "macro_f1": _clips_macro_f1,
    "binary_macro_f1": _binary_macro_f1,
    "au_mean_f1": au_mean_f1,
}

TASKS: dict[str, TaskSpec] = {
    "emi": TaskSpec(
        "emi", "emi", "video", REGRESSION, EMI_EMOTIONS, "mean_pearson_r", "pearson_r",
        # Epochs are chosen on the task metric (mean Pearson), not on the weighted loss.
        mlp={"hidden_sizes": (64,), "head": "sigmoid", "loss": "pearson", "scoring": "mean_pearson_r"}, submission="emi",
    ),
    "bah": TaskSpec(
        "bah", "bah", "frame", BINARY, ("0", "1"), "weighted_f1", "weighted_f1",
        mlp={"hidden_sizes": (64,), "head": "sigmoid", "loss": "bce"}, submission="bah",
    ),
    "expr": TaskSpec(
        "expr", "affwild2", "frame", MULTICLASS, EXPR_CLASSES, "expr_macro_f1", "expr_macro_f1",
        mlp={"hidden_sizes": (128,), "head": "softmax", "loss": "cross_entropy", "class_weight": "balanced"},
        adapter_options={"task": "expr"}, submission="expr",
    ),
    "va": TaskSpec(
        "va", "affwild2", "frame", REGRESSION, ("valence", "arousal"), "mean_ccc", "ccc",
        mlp={"hidden_sizes": (64,), "head": "tanh", "loss": "ccc"}, adapter_options={"task": "va"}, submission="va",
    ),
    "au": TaskSpec(
        "au", "affwild2", "frame", MULTILABEL, AU_NAMES, "au_mean_f1", "au_mean_f1",
        mlp={"hidden_sizes": (64,), "head": "sigmoid", "loss": "bce"}, adapter_options={"task": "au"}, submission="au",
    ),
    # The 10th ABAW's video-level ambivalence task: the split files' 0/1 label, scored by macro F1.
    "bah-video": TaskSpec(
        "bah-video", "bah", "video", BINARY, ("0", "1"), "binary_macro_f1", "binary_macro_f1",
        mlp={"hidden_sizes": (64,), "head": "sigmoid", "loss": "bce"},
    ),
}
TASK_NAMES = ("emi", "bah", "expr", "va", "au", "bah-video", "clips")

# Default store dataset name of each task (the adapter's name).
STORE_DATASETS = {"emi": "emi", "bah": "bah", "expr": "affwild2", "va": "affwild2", "au": "affwild2",
                  "bah-video": "bah", "clips": "clips"}


def check_task(name: str) -> str:
    """The task name, or an error listing the valid ones."""
    if name not in TASK_NAMES:
        raise TrainError(f"Unknown task {name!r}. Valid tasks: {', '.join(TASK_NAMES)}.")
    return name


def get_task(name: str) -> TaskSpec:
    """The spec of a fixed task (emi, bah, expr, va); clips specs come from `clips_target_spec`."""
    check_task(name)
    if name == "clips":
        raise TrainError("Task 'clips' has one spec per labels.csv target; use clips_target_spec(target).")
    return TASKS[name]


def clips_target_spec(target) -> TaskSpec:
    """Spec for one clips target (`affectstore.datasets.Target`)."""
    if target.kind == "classification":
        classes = tuple(target.classes)
        if len(classes) < 2:
            raise TrainError(f"Target {target.name!r} has {len(classes)} class(es) {classes}; a classifier needs 2 or more.")
        # Two-class targets too: softmax + argmax, scored by macro F1 and accuracy.
        return TaskSpec(
            "clips", "clips", "video", MULTICLASS, classes, "macro_f1", "macro_f1",
            mlp={"hidden_sizes": (64,), "head": "softmax", "loss": "cross_entropy", "class_weight": "balanced"},
            target=target.name,
        )
    return TaskSpec(
        "clips", "clips", "video", REGRESSION, (target.name,), "mean_pearson_r", "pearson_r",
        mlp={"hidden_sizes": (64,), "head": "plain", "loss": "mse"}, target=target.name,
    )


SUBMISSION_FILES = {"emi": "submission.csv", "bah": "submission.txt", "expr": "submission.csv", "va": "submission.csv",
                    "au": "submission.csv"}


def write_submission(spec: TaskSpec, path, ids=None, videos=None, frames=None, values=None):
    """Write the task's challenge submission file; returns its path (None for tasks without one)."""
    if spec.submission == "emi":
        return submission.write_emi_submission(path, ids, values)
    if spec.submission == "bah":
        return submission.write_bah_submission(path, videos, frames, values)
    if spec.submission == "expr":
        return submission.write_expr_submission(path, videos, frames, values)
    if spec.submission == "va":
        return submission.write_va_submission(path, videos, frames, values)
    if spec.submission == "au":
        return submission.write_au_submission(path, videos, frames, values)
    return None
