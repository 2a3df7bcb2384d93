"""The plain functions behind `affect train` and `affect predict`.

``train_task(task, store, features=..., recipe=..., out=..., cv=..., data_root=...)``
reads features from the store and labels from the dataset adapter, fits a
`TaskModel` per target with an honest protocol, and writes a run folder:

    run.json           task, dataset root, store dataset, resolved recipe, protocol
    features.json      every feature set used, with config hash, dim, rate, kind
    metrics.json       scores per target (report / tune / out-of-fold), the choices made
    predictions*.csv   one row per item (video, or labelled frame) with truth and prediction
    submission.*       the challenge file for the test split, where the task has one and
                       the store holds test features (else write it with `affect predict`)
    model/<key>/       the fitted model (safetensors + JSON; nothing pickled)
    report.md, *.png   plots: per-output scores, blend weights, smoothing and threshold curves

Honest protocol (what is reported):

- without ``cv``: models train on the train split. The validation split (or, when
  the dataset has none, a grouped ``val_fraction`` of train) is cut by group (subject,
  actor; the video where no group is known) into a *tuning* part, on which epochs
  (early stopping), blend weights, smoothing kernel, thresholds and filters are chosen,
  and a *report* part that none of those saw. ``metrics.json["report"]`` is the
  honest figure; ``["tune"]`` is optimistic by construction and labelled so. When
  nothing is chosen on them (one linear model at video level), the tuning items join
  the fitting items.
- with ``cv=K``: all labelled non-test items are cut into K grouped folds. For each
  fold the other folds are cut again by group into fit and tuning parts (one fold's
  share for tuning); the held-out fold is predicted. ``["out_of_fold"]`` scores all
  held-out predictions together; ``["folds"]`` each fold. The saved model is fitted on
  all labelled items but a grouped 1/K tuning share.

``predict_run(run, store, split)`` refuses features whose config hash differs from
the ones the run was trained on (`LineageError`), then writes predictions and, for
tasks with one, the challenge submission.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstore.datasets import NotProvidedError, get_adapter
from affectstore.train.data import FeatureInfo, feature_infos, load_frame_data, load_video_features, open_store
from affectstore.train.errors import LineageError, RecipeError, TrainError
from affectstore.train.pipeline import Batch, TaskModel
from affectstore.train.recipe import load_recipe, merge_recipe, validate_recipe
from affectstore.train.registry import SEQUENCES, get_entry
from affectstore.train.report import write_report
from affectstore.train.tasks import (
    MULTICLASS,
    REGRESSION,
    STORE_DATASETS,
    SUBMISSION_FILES,
    TaskSpec,
    check_task,
    clips_target_spec,
    get_task,
    write_submission,
)

logger = logging.getLogger(__name__)

VAL_SPLITS = ("valid", "val", "validation", "dev")
TEST_SPLIT = "test"


@dataclass
class RunResult:
    """What a train or predict call produced."""

    run_dir: Path
    metrics: dict
    files: list[Path]


# ----------------------------------------------------------------------------- context


def _specs(task: str, adapter, recipe: dict) -> list[TaskSpec]:
    if task != "clips":
        return [get_task(task)]
    targets = {t.name: t for t in adapter.task.targets}
    wanted = recipe.get("targets") or list(targets)
    if isinstance(wanted, str):
        wanted = [w.strip() for w in wanted.split(",") if w.strip()]
    bad = [w for w in wanted if w not in targets]
    if bad:
        raise RecipeError(f"Unknown target(s) {bad} for this clips dataset. Targets in labels.csv: {', '.join(targets)}.")
    return [clips_target_spec(targets[w]) for w in wanted]


def _key(task: str, spec: TaskSpec) -> str:
    return spec.target if task == "clips" else task


def _adapter(task: str, root, recipe: dict):
    if root is None:
        raise TrainError(
            f"No dataset root for task {task!r}: pass --data-root ROOT (the folder the {STORE_DATASETS[task]} "
            "adapter reads labels from) or set data_root in the recipe."
        )
    options = {}
    if task in ("expr", "va"):
        options["task"] = task
    options.update(recipe.get("adapter") or {})
    return get_adapter(STORE_DATASETS[task], root, **options)


def _group_of(adapter) -> dict[str, str]:
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


# ----------------------------------------------------------------------------- batches


def _encode_labels(spec: TaskSpec, values: np.ndarray, target_names) -> tuple[np.ndarray, np.ndarray]:
    """Labels as the model wants them, and which rows are valid."""
    if spec.target is not None:
        values = values[:, [list(target_names).index(spec.target)]]
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    valid = np.isfinite(values).all(axis=1)
    if spec.problem == REGRESSION:
        return values, valid
    y = np.where(valid, values[:, 0], -1).astype(np.int64)
    return y, valid & (y >= 0)


def build_batch(store, dataset, adapter, spec, recipe, infos, ids, labelled: bool) -> Batch:
    """Features (and labels when ``labelled``) of ``ids`` for one task spec."""
    if get_entry(recipe["estimator"]).consumes == SEQUENCES:
        from affectstore.train.sequence.batch import build_sequence_batch

        return build_sequence_batch(store, dataset, adapter, spec, recipe, infos, ids, labelled, _encode_labels)
    model_feats = recipe["features"]
    pooling = recipe["pooling"]
    ids = list(ids)
    vf = recipe.get("video_filter")
    ov = recipe.get("override")
    if spec.level == "video":
        X, cov = {}, {}
        for f in model_feats:
            X[f], cov[f] = load_video_features(store, dataset, infos[f], ids, pooling.get(f, pooling.get("default", "mean")))
        y = valid = None
        if labelled:
            vl = adapter.video_labels()
            rows = vl.as_dict()
            missing = [i for i in ids if i not in rows]
            if missing:
                raise TrainError(f"{len(missing)} videos have no labels, e.g. {missing[:3]}.")
            y, valid = _encode_labels(spec, np.stack([rows[i] for i in ids]), vl.target_names)
        else:
            valid = np.zeros(len(ids), dtype=bool)
        return Batch("video", ids, np.asarray(ids, dtype=object), X, cov, y, valid)
    frame_infos = {f: infos[f] for f in model_feats}
    if ov is not None:
        frame_infos[ov["feature"]] = infos[ov["feature"]]
    # Aff-Wild2 test videos: predict every frame from 1, those without a face crop included.
    first_frame = 1 if spec.dataset == "affwild2" else None
    fd = load_frame_data(store, dataset, adapter, frame_infos, ids, labelled=labelled, align=recipe["align"]["method"],
                         first_frame=first_frame)
    y = None
    valid = np.zeros(len(fd), dtype=bool)
    if labelled:
        y, ok = _encode_labels(spec, fd.y, adapter.task.target_names)
        valid = ok & fd.valid
    batch = Batch("frame", ids, fd.groups, fd.X, fd.covered, y, valid, frames=fd.frames)
    if vf is not None:
        name = vf["feature"]
        batch.video_X[name], batch.video_present[name] = load_video_features(
            store, dataset, infos[name], ids, vf.get("pooling", "mean"))
        if labelled:
            try:
                rows = adapter.video_labels().as_dict()
                batch.video_y = np.array([rows[i][0] if i in rows else np.nan for i in ids])
            except NotProvidedError:
                batch.video_y = None
    return batch


def needs_tuning(spec: TaskSpec, rec: dict) -> bool:
    """Whether anything is chosen on tuning rows (else they join the fitting rows)."""
    return (get_entry(rec["estimator"]).takes_eval_set or spec.level == "frame"
            or (rec["fusion"] == "late" and len(rec["features"]) > 1 and rec["blend"].get("weights") is None))


def fit_model(spec: TaskSpec, rec: dict, full: Batch, fit_ids: list[str], tune_ids: list[str]) -> TaskModel:
    """A TaskModel fitted on ``fit_ids`` and tuned on ``tune_ids`` (fitted on both when nothing is tuned)."""
    if not needs_tuning(spec, rec):
        fit_ids = fit_ids + tune_ids
    return TaskModel(spec, rec, rec["features"]).fit(full.subset(fit_ids), full.subset(tune_ids))


# ----------------------------------------------------------------------------- outputs


def _rows_of(batch: Batch, scores: np.ndarray, labels: np.ndarray, spec: TaskSpec, set_name: str):
    """CSV rows: ids (and frame), set, truth, prediction (and class scores)."""
    out = []
    for r in range(len(batch)):
        row = {"id": batch.groups[r]}
        if batch.frames is not None:
            row["frame"] = int(batch.frames[r])
        row["set"] = set_name
        if spec.problem == REGRESSION:
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


def _write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return path


def _score_sets(spec: TaskSpec, parts: list[tuple[Batch, np.ndarray]]) -> dict:
    """Task scores over the valid rows of several (batch, predictions) parts."""
    ys = [b.y[b.valid] for b, _ in parts]
    ps = [p[b.valid] for b, p in parts]
    return spec.scores(np.concatenate(ys), np.concatenate(ps))


def _suffix(task: str, key: str) -> str:
    return "" if key == task else f"-{key}"


# ----------------------------------------------------------------------------- train


def train_task(
    task: str | None,
    store,
    features=None,
    recipe=None,
    out=None,
    cv: int | None = None,
    data_root=None,
    store_dataset: str | None = None,
    overrides: dict | None = None,
) -> RunResult:
    """Train a task from a store; see the module docstring for the run folder and protocol."""
    rec = load_recipe(recipe)
    if task is not None:
        check_task(task)
        if rec.get("task") not in (None, task):
            raise RecipeError(f"Recipe {recipe} is for task {rec['task']!r}, not {task!r}. Pick a recipe for {task!r}.")
        rec["task"] = task
    if overrides:
        rec = merge_recipe(rec, overrides, "overrides")
    if features is not None:
        rec["features"] = [f.strip() for f in features.split(",") if f.strip()] if isinstance(features, str) else list(features)
    if cv is not None:
        rec["protocol"]["cv"] = int(cv)
    if data_root is not None:
        rec["data_root"] = str(data_root)
    if store_dataset is not None:
        rec["store_dataset"] = store_dataset
    validate_recipe(rec)
    task = rec["task"]
    dataset = rec["store_dataset"] or STORE_DATASETS[task]
    rec["store_dataset"] = dataset
    started = time.perf_counter()

    st = open_store(store) if not hasattr(store, "load_feature") else store
    extra = [s["feature"] for s in (rec.get("video_filter"), rec.get("override")) if s is not None]
    all_feats = list(dict.fromkeys(rec["features"] + extra))
    infos = feature_infos(st, dataset, all_feats)
    adapter = _adapter(task, rec["data_root"], rec)
    specs = _specs(task, adapter, rec)
    for spec in specs:
        if spec.level == "frame" and any(infos[f].kind == "video" for f in rec["features"]):
            bad = [f for f in rec["features"] if infos[f].kind == "video"]
            raise TrainError(
                f"Feature(s) {bad} hold one vector per video, but task {task!r} is frame level. "
                "Use them as the video_filter feature, or pick frame features."
            )

    run_dir = Path(out) if out is not None else Path("runs") / (rec.get("name") or task)
    run_dir.mkdir(parents=True, exist_ok=True)
    splits = adapter.splits
    group_of = _group_of(adapter)
    seed = int(rec["protocol"]["seed"])
    K = int(rec["protocol"]["cv"])
    labelled_splits = [s for s in splits if s != TEST_SPLIT] or list(splits)
    if K:
        labelled_ids = [e.id for s in labelled_splits for e in adapter.manifest(s)]
        protocol = (
            f"Protocol: {K}-fold cross-validation grouped by subject/actor (VideoEntry.group) over the "
            f"{', '.join(labelled_splits)} split(s). In each fold, the remaining groups are cut again into fit and "
            "tuning parts; epochs, blend weights, smoothing, thresholds and filters are chosen on the tuning part "
            "only. Headline figures are out-of-fold: every item is predicted by a model that neither trained nor "
            "tuned on its group."
        )
    else:
        val_split = next((s for s in VAL_SPLITS if s in splits), None)
        train_split = "train" if "train" in splits else None
        train_ids = [e.id for e in adapter.manifest(train_split)] if train_split else \
            [e.id for s in labelled_splits for e in adapter.manifest(s)]
        if val_split is not None:
            val_ids = [e.id for e in adapter.manifest(val_split)]
            val_source = f"the {val_split!r} split"
        else:
            train_ids, val_ids = grouped_split(train_ids, group_of, float(rec["protocol"]["val_fraction"]), seed)
            val_source = f"a grouped {rec['protocol']['val_fraction']:.0%} of the training items (no validation split)"
        tune_ids, report_ids = grouped_split(val_ids, group_of, 1.0 - float(rec["protocol"]["tune_fraction"]), seed)
        labelled_ids = train_ids + val_ids
        protocol = (
            f"Protocol: fit on {len(train_ids)} training items. Validation is {val_source}, cut by group into "
            f"{len(tune_ids)} tuning items (epochs, blend weights, smoothing, thresholds, filters chosen there) and "
            f"{len(report_ids)} report items that no choice saw. Headline figures are on the report items; "
            "tuning-item figures are optimistic and shown only for comparison (when nothing is tuned, as for one "
            "linear model at video level, the tuning items are also fitted on)."
        )
    logger.info(protocol)

    results, all_metrics, files = {}, {}, []
    timings = {"load_s": 0.0, "fit_evaluate_s": 0.0}
    for spec in specs:
        key = _key(task, spec)
        t0 = time.perf_counter()
        full = build_batch(st, dataset, adapter, spec, rec, infos, labelled_ids, labelled=True)
        t1 = time.perf_counter()
        timings["load_s"] += t1 - t0
        metrics: dict = {"task": task, "target": spec.target, "metric": spec.metric}
        pred_rows = []
        if K:
            n_groups = len({group_of[i] for i in labelled_ids})
            if K > n_groups:
                raise TrainError(f"--cv {K} needs at least {K} groups; the labelled items come from {n_groups}. Use --cv {n_groups} or fewer.")
            from sklearn.model_selection import GroupKFold

            ids_arr = np.asarray(labelled_ids, dtype=object)
            gk = GroupKFold(n_splits=K)
            parts, folds = [], []
            for fold, (rest, held) in enumerate(gk.split(ids_arr, groups=[group_of[i] for i in labelled_ids])):
                fit_ids, tune_ids = grouped_split(list(ids_arr[rest]), group_of, 1.0 / (K - 1), seed + fold)
                model = fit_model(spec, rec, full, fit_ids, tune_ids)
                hb = full.subset(list(ids_arr[held]))
                s, lab = model.predict(hb)
                parts.append((hb, lab))
                sc = spec.scores(hb.y[hb.valid], lab[hb.valid])
                folds.append({"fold": fold, "n_groups": len({group_of[i] for i in ids_arr[held]}), spec.metric: sc[spec.metric],
                              "n": sc["n"], "choices": model.choices_})
                pred_rows += _rows_of(hb, s, lab, spec, f"fold{fold}")
            metrics["out_of_fold"] = _score_sets(spec, parts)
            vals = [f[spec.metric] for f in folds]
            metrics["folds"] = folds
            metrics["fold_mean"], metrics["fold_std"] = float(np.mean(vals)), float(np.std(vals))
            fit_ids, tune_ids = grouped_split(labelled_ids, group_of, 1.0 / K, seed)
            model = fit_model(spec, rec, full, fit_ids, tune_ids)
            tb = full.subset(tune_ids)
            metrics["tune"] = _score_sets(spec, [(tb, model.predict(tb)[1])])
        else:
            model = fit_model(spec, rec, full, train_ids, tune_ids)
            for name, ids in (("report", report_ids), ("tune", tune_ids)):
                b = full.subset(ids)
                s, lab = model.predict(b)
                metrics[name] = _score_sets(spec, [(b, lab)])
                pred_rows += _rows_of(b, s, lab, spec, name)
        metrics["choices"] = model.choices_
        timings["fit_evaluate_s"] += time.perf_counter() - t1
        model.save(run_dir / "model" / key)
        files.append(_write_csv(run_dir / f"predictions{_suffix(task, key)}.csv", pred_rows))
        all_metrics[key] = metrics
        results[key] = {"spec": spec, "metrics": metrics, "choices": model.choices_}
        head = metrics.get("out_of_fold") or metrics["report"]
        logger.info("%s: %s = %.4f (%s)", key, spec.metric, head[spec.metric], "out-of-fold" if K else "report items")

    elapsed = time.perf_counter() - started
    timings["total_s"] = elapsed  # load + fit + tune + evaluate (writing outputs and the report not included)
    run_info = {
        "task": task, "store": str(getattr(st, "location", store)), "store_dataset": dataset,
        "data_root": str(Path(rec["data_root"]).resolve()) if rec["data_root"] else None,
        "targets": [s.target for s in specs] if task == "clips" else None,
        "recipe": rec, "protocol": protocol, "seconds": timings,
    }
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=2, default=str) + "\n", encoding="utf-8")
    (run_dir / "features.json").write_text(json.dumps([infos[f].as_dict() for f in all_feats], indent=2) + "\n", encoding="utf-8")
    doc = {"task": task, "protocol": protocol, "results": all_metrics, "seconds": timings}
    (run_dir / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    files += [run_dir / "run.json", run_dir / "features.json", run_dir / "metrics.json"]
    files.append(write_report(run_dir, results, task, protocol))

    if TEST_SPLIT in splits and any(s.submission for s in specs):
        test_ids = [e.id for e in adapter.manifest(TEST_SPLIT)]
        have = set.intersection(*[set(st.completed(dataset, f)) for f in all_feats])
        if test_ids and all(i in have for i in test_ids):
            files += predict_run(run_dir, st, TEST_SPLIT).files
        else:
            logger.info("No test features in the store for all %d test videos: write the submission later with "
                        "`affect predict %s --store STORE --split test`.", len(test_ids), run_dir)
    return RunResult(run_dir, doc, files)


# ----------------------------------------------------------------------------- predict


def check_lineage(run_dir: Path, st, dataset: str) -> dict[str, FeatureInfo]:
    """The run's features as the store holds them; refuse any whose config hash changed."""
    path = run_dir / "features.json"
    if not path.is_file():
        raise TrainError(f"{path} not found: {run_dir} is not a run folder written by `affect train`.")
    trained = json.loads(path.read_text(encoding="utf-8"))
    names = [f["name"] for f in trained]
    infos = feature_infos(st, dataset, names)
    for f in trained:
        now = infos[f["name"]].config_hash
        if now != f["config_hash"]:
            raise LineageError(
                f"Feature {f['name']!r} in store {st.location} (dataset {dataset!r}) has config hash {now}, but run "
                f"{run_dir} was trained on config hash {f['config_hash']}. Its numbers come from another extractor "
                "configuration, so the model's predictions would be meaningless. Fix: predict with a store whose "
                f"{f['name']!r} was extracted with the run's config (see {path}), or retrain on this store with "
                f"`affect train ... --features {','.join(names)}`."
            )
        if infos[f["name"]].dim != f["dim"]:
            raise LineageError(f"Feature {f['name']!r} has dim {infos[f['name']].dim} in the store but {f['dim']} in {path}.")
    return infos


def predict_run(run, store, split: str = TEST_SPLIT, data_root=None, out=None) -> RunResult:
    """Predict ``split`` with a trained run; writes predictions, the submission and (if labelled) metrics."""
    run_dir = Path(run)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise TrainError(f"{info_path} not found: {run_dir} is not a run folder written by `affect train`.")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    rec = info["recipe"]
    task = info["task"]
    dataset = info["store_dataset"]
    st = open_store(store) if not hasattr(store, "load_feature") else store
    infos = check_lineage(run_dir, st, dataset)
    adapter = _adapter(task, data_root or info["data_root"], rec)
    if split not in adapter.splits:
        raise TrainError(f"Unknown split {split!r}. Splits of this dataset: {', '.join(adapter.splits)}.")
    ids = [e.id for e in adapter.manifest(split)]
    specs = _specs(task, adapter, rec)
    out_dir = Path(out) if out is not None else run_dir
    files: list[Path] = []
    metrics = {}
    for spec in specs:
        key = _key(task, spec)
        labelled = _has_labels(adapter, spec, ids)
        batch = build_batch(st, dataset, adapter, spec, rec, infos, ids, labelled=labelled)
        model = TaskModel.load(run_dir / "model" / key, spec)
        scores, labels = model.predict(batch)
        files.append(_write_csv(out_dir / f"predictions-{split}{_suffix(task, key)}.csv", _rows_of(batch, scores, labels, spec, split)))
        if labelled and batch.valid.any():
            metrics[key] = _score_sets(spec, [(batch, labels)])
        if spec.submission:
            name = SUBMISSION_FILES[spec.submission]
            if split != TEST_SPLIT:
                stem, ext = name.rsplit(".", 1)
                name = f"{stem}-{split}.{ext}"
            if spec.level == "video":
                path = write_submission(spec, out_dir / name, ids=batch.video_ids, values=labels)
            else:
                path = write_submission(spec, out_dir / name, videos=list(batch.groups), frames=batch.frames, values=labels)
            files.append(path)
            logger.info("Wrote %s", path)
    if metrics:
        mpath = out_dir / f"metrics-{split}.json"
        mpath.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        files.append(mpath)
    return RunResult(out_dir, metrics, files)


def _has_labels(adapter, spec: TaskSpec, ids: list[str]) -> bool:
    if not ids:
        return False
    if spec.level == "video":
        try:
            have = set(adapter.video_labels().ids)
        except NotProvidedError:
            return False
        return all(i in have for i in ids)
    try:
        adapter.frame_labels(ids[0])
        return True
    except NotProvidedError:
        return False
