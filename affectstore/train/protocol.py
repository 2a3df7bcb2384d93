"""Which items fit, tune and report a run, and the loop that fits and scores them.

Three protocols (``[protocol]`` in a recipe; ``protocol = "paper"`` is shorthand for
``[protocol] mode = "paper"``):

- ``mode = "honest"`` (default), no ``cv``: models train on the train split. The
  validation split (or, when the dataset has none, a grouped ``val_fraction`` of train)
  is cut by group (subject, actor; the video where no group is known) into a *tuning*
  part, on which epochs, blend weights, smoothing kernel, thresholds and filters are
  chosen, and a *report* part that none of those saw. ``metrics["report"]`` is the
  honest figure; ``["tune"]`` is optimistic by construction. When nothing is chosen on
  the tuning items (one linear model at video level) they join the fitting items and
  their row is labelled "fit data".
- ``cv = K``: all labelled items are cut into K grouped folds; in each fold the other
  folds are cut again by group into fit and tuning parts; ``["out_of_fold"]`` scores all
  held-out predictions together.
- ``mode = "paper"``: what the papers' tables report: fit on train, choose everything
  on the *whole* validation split and report on that same split. The figure is
  optimistic (its choices saw the items it is scored on) and is marked so in
  metrics.json (``optimistic: true``), report.md and the log line. Use it only to
  compare with a published table.

``refit = true`` (any mode): after choosing, the estimators are fitted again on train +
validation (all labelled items with ``cv``) with the chosen epochs and settings; that
model is the one saved and used for the test submission (the papers' dagger rows). The
reported figures stay those of the model before refitting, which never saw its report
items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from affectstore.train.errors import TrainError
from affectstore.train.pipeline import Batch, TaskModel
from affectstore.train.recipe import protocol_settings
from affectstore.train.fusion import apply_decision
from affectstore.train.tasks import BINARY, MULTICLASS, MULTILABEL, REGRESSION, TaskSpec

logger = logging.getLogger(__name__)

VAL_SPLITS = ("valid", "val", "validation", "dev")
TEST_SPLIT = "test"
PAPER_NOTE = "OPTIMISTIC: paper protocol, everything was chosen on the same validation items it is scored on"
FIT_DATA = "fit data"


@dataclass
class Plan:
    """The items of each role, and the sentences that describe them to the reader."""

    mode: str
    cv: int
    seed: int
    refit: bool
    labelled_ids: list[str]
    train_ids: list[str] = field(default_factory=list)
    val_ids: list[str] = field(default_factory=list)
    tune_ids: list[str] = field(default_factory=list)
    report_ids: list[str] = field(default_factory=list)
    description: str = ""
    by_video: bool = False  # no subject ids: parts are cut by video

    @property
    def optimistic(self) -> bool:
        return self.mode == "paper"


def group_of(adapter) -> dict[str, str]:
    """Each item's group: its subject/actor, or itself where the dataset has none."""
    return {e.id: (e.group if e.group is not None else e.id) for e in adapter.manifest()}


def grouped_split(ids: list[str], group_of: dict[str, str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split ``ids`` by group: about ``fraction`` of the items go to the second part."""
    groups = sorted({group_of[i] for i in ids})
    if len(groups) < 2:
        raise TrainError(
            f"Cannot split {len(ids)} items into two parts by group: they come from {len(groups)} group(s) "
            f"{groups[:3]}. Add a validation split or more subjects, or use --cv with more groups."
        )
    rng = np.random.default_rng(seed)
    perm = [groups[i] for i in rng.permutation(len(groups))]
    counts = {g: 0 for g in groups}
    for i in ids:
        counts[group_of[i]] += 1
    second: set[str] = set()
    n = 0
    for g in perm[:-1]:  # the first part keeps at least one group
        if n >= fraction * len(ids):
            break
        second.add(g)
        n += counts[g]
    return [i for i in ids if group_of[i] not in second], [i for i in ids if group_of[i] in second]


def plan_protocol(rec: dict, adapter, groups: dict[str, str]) -> Plan:
    """Decide which items fit, tune and report, and describe it."""
    mode, refit = protocol_settings(rec)
    seed = int(rec["protocol"]["seed"])
    K = int(rec["protocol"]["cv"])
    splits = adapter.splits
    labelled_splits = [s for s in splits if s != TEST_SPLIT] or list(splits)
    by_video = all(e.group is None for e in adapter.manifest())
    video_note = (
        " This dataset has no subject ids, so the parts are cut by video: one person may appear in more than one part."
        if by_video else ""
    )
    refit_note = (
        " After choosing, the estimators are refitted on all fitting and validation items with the chosen epochs and "
        "settings (refit = true); that model is saved and predicts the test split, and the figures above are those of "
        "the model before refitting." if refit else ""
    )
    if K:
        ids = [e.id for s in labelled_splits for e in adapter.manifest(s)]
        text = (
            f"Protocol: {K}-fold cross-validation grouped by subject/actor (VideoEntry.group) over the "
            f"{', '.join(labelled_splits)} split(s). In each fold, the remaining groups are cut again into fit and "
            "tuning parts; epochs, blend weights, smoothing, thresholds and filters are chosen on the tuning part "
            "only. Headline figures are out-of-fold: every item is predicted by a model that neither trained nor "
            "tuned on its group."
        )
        return Plan("honest", K, seed, refit, ids, description=text + video_note + refit_note, by_video=by_video)
    val_split = next((s for s in VAL_SPLITS if s in splits), None)
    train_split = "train" if "train" in splits else None
    train_ids = [e.id for e in adapter.manifest(train_split)] if train_split else \
        [e.id for s in labelled_splits for e in adapter.manifest(s)]
    if val_split is not None:
        val_ids = [e.id for e in adapter.manifest(val_split)]
        val_source = f"the {val_split!r} split"
    else:
        train_ids, val_ids = grouped_split(train_ids, groups, float(rec["protocol"]["val_fraction"]), seed)
        val_source = f"a grouped {rec['protocol']['val_fraction']:.0%} of the training items (no validation split)"
    if mode == "paper":
        text = (
            f"Protocol: paper (as the published tables). Fit on {len(train_ids)} training items; epochs, blend weights, "
            f"smoothing, thresholds and filters are chosen on all {len(val_ids)} validation items ({val_source}) and the "
            f"figures are reported on those same items. {PAPER_NOTE}; compare with a paper's table, not with honest runs."
        )
        return Plan(mode, 0, seed, refit, train_ids + val_ids, train_ids, val_ids, list(val_ids), list(val_ids),
                    text + refit_note, by_video)
    tune_ids, report_ids = grouped_split(val_ids, groups, 1.0 - float(rec["protocol"]["tune_fraction"]), seed)
    text = (
        f"Protocol: fit on {len(train_ids)} training items. Validation is {val_source}, cut by group into "
        f"{len(tune_ids)} tuning items (epochs, blend weights, smoothing, thresholds, filters chosen there) and "
        f"{len(report_ids)} report items that no choice saw. Headline figures are on the report items; "
        "tuning-item figures are optimistic and shown only for comparison (when nothing is tuned, as for one "
        "linear model at video level, the tuning items are also fitted on and their row is labelled 'fit data')."
    )
    return Plan(mode, 0, seed, refit, train_ids + val_ids, train_ids, val_ids, tune_ids, report_ids,
                text + video_note + refit_note, by_video)


# ----------------------------------------------------------------------------- fitting


def needs_tuning(spec: TaskSpec, rec: dict) -> bool:
    """Whether anything is chosen on tuning rows (else they join the fitting rows)."""
    from affectstore.train.registry import get_entry

    return (get_entry(rec["estimator"]).takes_eval_set or spec.level == "frame"
            or (rec["fusion"] == "late" and len(rec["features"]) > 1 and rec["blend"].get("weights") is None))


def fit_tune_split(spec: TaskSpec, rec: dict, ids: list[str], groups: dict[str, str], fraction: float,
                   seed: int) -> tuple[list[str], list[str]]:
    """Fit and tuning items of a training part; all fit when nothing is tuned (so one group is enough)."""
    if not needs_tuning(spec, rec):
        return list(ids), []
    return grouped_split(ids, groups, fraction, seed)


def fit_model(spec: TaskSpec, rec: dict, full: Batch, fit_ids: list[str], tune_ids: list[str],
              join_untuned: bool = True) -> TaskModel:
    """A TaskModel fitted on ``fit_ids`` and tuned on ``tune_ids``.

    When nothing is tuned and ``join_untuned``, the tuning items are fitted on as well
    (the paper protocol keeps them apart: it reports on them).
    """
    if join_untuned and not needs_tuning(spec, rec):
        fit_ids = fit_ids + tune_ids
    return TaskModel(spec, rec, rec["features"]).fit(full.subset(fit_ids), full.subset(tune_ids))


def rows_of(batch: Batch, scores: np.ndarray, labels: np.ndarray, spec: TaskSpec, set_name: str) -> list[dict]:
    """CSV rows: ids (and frame), set, truth, prediction (and class scores)."""
    out = []
    for r in range(len(batch)):
        row = {"id": batch.groups[r]}
        if batch.frames is not None:
            row["frame"] = int(batch.frames[r])
        row["set"] = set_name
        if spec.problem == MULTILABEL:
            for k, o in enumerate(spec.outputs):
                row[f"true_{o}"] = "" if batch.y is None or not batch.valid[r] else str(int(batch.y[r, k]))
            for k, o in enumerate(spec.outputs):
                row[f"pred_{o}"] = str(int(labels[r, k]))
            for k, o in enumerate(spec.outputs):
                row[f"score_{o}"] = f"{scores[r, k]:.6f}"
        elif spec.problem == REGRESSION:
            for k, o in enumerate(spec.outputs):
                row[f"true_{o}"] = "" if batch.y is None or not batch.valid[r] else f"{batch.y[r, k]:.6f}"
            for k, o in enumerate(spec.outputs):
                row[f"pred_{o}"] = f"{labels[r, k]:.6f}"
        else:
            row["true"] = "" if batch.y is None or not batch.valid[r] else spec.outputs[int(batch.y[r])]
            row["pred"] = spec.outputs[int(labels[r])]
            if spec.problem == MULTICLASS:
                for k, o in enumerate(spec.outputs):
                    row[f"score_{o}"] = f"{scores[r, k]:.6f}"
            else:
                row["score"] = f"{scores[r]:.6f}"
        out.append(row)
    return out


def score_sets(spec: TaskSpec, parts: list[tuple[Batch, np.ndarray]]) -> dict:
    """Task scores over the valid rows of several (batch, predictions) parts."""
    ys = [b.y[b.valid] for b, _ in parts]
    ps = [p[b.valid] for b, p in parts]
    return spec.scores(np.concatenate(ys), np.concatenate(ps))


def _decision(model: TaskModel, spec: TaskSpec):
    if spec.problem == MULTILABEL:
        return np.asarray(model.choices_.get("thresholds", 0.5))
    return model.choices_.get("threshold", spec.decision) if spec.decision not in (None, "argmax") else spec.decision


def single_feature_labels(model: TaskModel, batch: Batch) -> dict[str, np.ndarray]:
    """Each late-fusion member's own predictions (its scores with the run's decision; no blend, smoothing or filter)."""
    if len(model.estimators_) < 2:
        return {}
    return {name: apply_decision(s, _decision(model, model.spec)) for name, s in model.modality_scores(batch).items()}


def chance_score(spec: TaskSpec, model: TaskModel, y_true: np.ndarray) -> dict:
    """The task metric of a constant prediction from the training prior (regression: 0, Pearson/CCC of a constant)."""
    if spec.problem == REGRESSION:
        return {"value": 0.0, "how": "a constant prediction (Pearson r and CCC of a constant are 0)"}
    prior = np.asarray(model.prior_, dtype=np.float64)
    if spec.problem == MULTICLASS:
        const = np.full(len(y_true), int(prior.argmax()))
        how = f"always the most frequent training class ({spec.outputs[int(prior.argmax())]})"
    elif spec.problem == BINARY:
        const = np.full(len(y_true), int(prior[0] >= 0.5))
        how = f"always the most frequent training label ({int(prior[0] >= 0.5)})"
    else:
        const = np.tile((prior >= 0.5).astype(np.int64), (len(y_true), 1))
        how = "each label always its most frequent training value"
    return {"value": float(spec.metric_fn()(y_true, const)), "how": how}


def _watched(entry) -> float:
    """The value early stopping watched in one epoch: a row MLP keeps the number, a sequence
    model a dict (validation score, else minus the validation or training loss)."""
    if not isinstance(entry, dict):
        return float(entry)
    if entry.get("val_score") is not None:
        return float(entry["val_score"])
    return -float(entry["val_loss"] if entry.get("val_loss") is not None else entry["train_loss"])


def _curves(model: TaskModel) -> dict:
    """Per estimator: the validation curve early stopping watched, and the epoch it chose."""
    out = {}
    for name, est in model.estimators_.items():
        if getattr(est, "history_", None):
            out[name] = {"history": [_watched(h) for h in est.history_], "best_epoch": int(est.best_epoch_),
                         "watched": est.scoring or "validation loss"}
    return out


@dataclass
class Evaluation:
    """A fitted model, its metrics and prediction rows, and the raw (truth, prediction) of the headline rows."""

    model: TaskModel
    metrics: dict
    rows: list[dict]
    headline: tuple[np.ndarray, np.ndarray] | None = None


def evaluate(spec: TaskSpec, rec: dict, full: Batch, plan: Plan, groups: dict[str, str]) -> Evaluation:
    """Fit, tune and score one task spec on ``full`` under ``plan``; refit at the end when asked."""
    metrics: dict = {"protocol": plan.mode if not plan.cv else "cv"}
    rows: list[dict] = []
    tuned = needs_tuning(spec, rec)
    if plan.cv:
        K = plan.cv
        n_groups = len({groups[i] for i in plan.labelled_ids})
        if K > n_groups:
            raise TrainError(f"--cv {K} needs at least {K} groups; the labelled items come from {n_groups}. "
                             f"Use --cv {n_groups} or fewer.")
        from sklearn.model_selection import GroupKFold

        ids_arr = np.asarray(plan.labelled_ids, dtype=object)
        parts, folds, singles, curves = [], [], {}, {}
        for fold, (rest, held) in enumerate(GroupKFold(n_splits=K).split(ids_arr, groups=[groups[i] for i in plan.labelled_ids])):
            fit_ids, tune_ids = fit_tune_split(spec, rec, list(ids_arr[rest]), groups, 1.0 / (K - 1), plan.seed + fold)
            model = fit_model(spec, rec, full, fit_ids, tune_ids)
            hb = full.subset(list(ids_arr[held]))
            s, lab = model.predict(hb)
            parts.append((hb, lab))
            for name, sl in single_feature_labels(model, hb).items():
                singles.setdefault(name, []).append((hb, sl))
            curves[f"fold{fold}"] = _curves(model)
            model.choices_["epochs"] = {k: c["best_epoch"] for k, c in curves[f"fold{fold}"].items()}
            sc = spec.scores(hb.y[hb.valid], lab[hb.valid])
            folds.append({"fold": fold, "n_groups": len({groups[i] for i in ids_arr[held]}), spec.metric: sc[spec.metric],
                          "n": sc["n"], "choices": model.choices_,
                          "epochs": {k: c["best_epoch"] for k, c in curves[f"fold{fold}"].items()}})
            rows += rows_of(hb, s, lab, spec, f"fold{fold}")
        metrics["out_of_fold"] = score_sets(spec, parts)
        vals = [f[spec.metric] for f in folds]
        metrics["folds"] = folds
        metrics["fold_mean"], metrics["fold_std"] = float(np.mean(vals)), float(np.std(vals))
        headline = (np.concatenate([b.y[b.valid] for b, _ in parts]), np.concatenate([p[b.valid] for b, p in parts]))
        single_scores = {name: score_sets(spec, p)[spec.metric] for name, p in singles.items()}
        fit_ids, tune_ids = fit_tune_split(spec, rec, plan.labelled_ids, groups, 1.0 / K, plan.seed)
        model = fit_model(spec, rec, full, fit_ids, tune_ids)
        if tune_ids:
            tb = full.subset(tune_ids)
            metrics["tune"] = score_sets(spec, [(tb, model.predict(tb)[1])])
    elif plan.mode == "paper":
        model = fit_model(spec, rec, full, plan.train_ids, plan.tune_ids, join_untuned=False)
        b = full.subset(plan.report_ids)
        s, lab = model.predict(b)
        metrics["report"] = score_sets(spec, [(b, lab)])
        headline = (b.y[b.valid], lab[b.valid])
        rows += rows_of(b, s, lab, spec, "validation")
        single_scores = {n: score_sets(spec, [(b, sl)])[spec.metric] for n, sl in single_feature_labels(model, b).items()}
        curves = {}
    else:
        model = fit_model(spec, rec, full, plan.train_ids, plan.tune_ids)
        headline = None
        for name, ids in (("report", plan.report_ids), ("tune", plan.tune_ids)):
            b = full.subset(ids)
            s, lab = model.predict(b)
            metrics[name] = score_sets(spec, [(b, lab)])
            rows += rows_of(b, s, lab, spec, name)
            if name == "report":
                headline = (b.y[b.valid], lab[b.valid])
                single_scores = {n: score_sets(spec, [(b, sl)])[spec.metric]
                                 for n, sl in single_feature_labels(model, b).items()}
        curves = {}
    metrics["tune_label"] = "tune" if tuned else FIT_DATA
    curves["final"] = _curves(model)
    model.choices_["epochs"] = {k: c["best_epoch"] for k, c in curves["final"].items()}
    if curves["final"]:
        metrics["learning_curves"] = curves
    if single_scores:
        metrics["single_features"] = single_scores  # each late-fusion member alone, on the headline rows
    metrics["chance"] = chance_score(spec, model, headline[0])
    if plan.optimistic:
        metrics["optimistic"] = True
        metrics["note"] = PAPER_NOTE
    metrics["choices"] = model.choices_
    if plan.refit:
        refit_ids = plan.labelled_ids if plan.cv else plan.train_ids + plan.val_ids
        model.refit(full.subset(refit_ids))
        metrics["refit"] = model.choices_.get("refit")
    return Evaluation(model, metrics, rows, headline)
