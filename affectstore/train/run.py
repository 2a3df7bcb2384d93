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

Protocols (honest by default; ``protocol = "paper"`` and ``refit = true`` reproduce
the papers' tables): see `affectstore.train.protocol`, which cuts the items into fit,
tuning and report parts and runs the fit/score loop.

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
from affectstore.train.cache import cached_video_features
from affectstore.train.data import FeatureInfo, feature_infos, load_frame_data, open_store
from affectstore.train.defaults import recorded_source, resolve_data_root
from affectstore.train.errors import LineageError, RecipeError, TrainError
from affectstore.train.labels import encode_labels, video_level_labels
from affectstore.train.filters import compare_video_labels, video_labels_from_frames
from affectstore.train.pipeline import Batch, TaskModel
from affectstore.train.protocol import (  # noqa: F401  (grouped_split, fit_model, needs_tuning: public here too)
    PAPER_NOTE,
    TEST_SPLIT,
    VAL_SPLITS,
    evaluate,
    fit_model,
    group_of,
    grouped_split,
    needs_tuning,
    plan_protocol,
    rows_of,
    score_sets,
)
from affectstore.train.recipe import load_recipe, merge_recipe, per_target_features, recipe_for_target, validate_recipe
from affectstore.train.registry import SEQUENCES, get_entry
from affectstore.train.report import write_report
from affectstore.train.runinfo import run_environment, store_url, warnings_once_per_call
from affectstore.train.tasks import (
    STORE_DATASETS,
    SUBMISSION_FILES,
    TaskSpec,
    check_task,
    clips_target_spec,
    get_task,
    write_submission,
)

logger = logging.getLogger(__name__)



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
            "adapter reads labels from), set DATA_ROOT, or set data_root in the recipe (the store recorded none: "
            "its features were not extracted by `affect extract`)."
        )
    options = {}
    if task in ("expr", "va", "au"):
        options["task"] = task
    options.update(recipe.get("adapter") or {})
    return get_adapter(STORE_DATASETS[task], root, **options)


# ----------------------------------------------------------------------------- batches


def build_batch(store, dataset, adapter, spec, recipe, infos, ids, labelled: bool) -> Batch:
    """Features (and labels when ``labelled``) of ``ids`` for one task spec."""
    if get_entry(recipe["estimator"]).consumes == SEQUENCES:
        from affectstore.train.sequence.batch import build_sequence_batch

        return build_sequence_batch(store, dataset, adapter, spec, recipe, infos, ids, labelled)
    model_feats = recipe["features"]
    pooling = recipe["pooling"]
    ids = list(ids)
    vf = recipe.get("video_filter")
    ov = recipe.get("override")
    if spec.level == "video":
        X, cov = {}, {}
        for f in model_feats:
            X[f], cov[f] = cached_video_features(store, dataset, infos[f], ids, pooling.get(f, pooling.get("default", "mean")))
        y = valid = None
        if labelled:
            y, valid = video_level_labels(adapter, spec, ids)
        else:
            valid = np.zeros(len(ids), dtype=bool)
        return Batch("video", ids, np.asarray(ids, dtype=object), X, cov, y, valid)
    frame_infos = {f: infos[f] for f in model_feats}
    if ov is not None:
        frame_infos[ov["feature"]] = infos[ov["feature"]]
    # Test videos: predict every frame of the video (Aff-Wild2 from 1, BAH from 0), those without a face crop included.
    first_frame = {"affwild2": 1, "bah": 0}.get(spec.dataset)
    fd = load_frame_data(store, dataset, adapter, frame_infos, ids, labelled=labelled, align=recipe["align"]["method"],
                         first_frame=first_frame)
    y = None
    valid = np.zeros(len(fd), dtype=bool)
    if labelled:
        y, ok = encode_labels(spec, fd.y, adapter.task.target_names)
        valid = ok & fd.valid
    batch = Batch("frame", ids, fd.groups, fd.X, fd.covered, y, valid, frames=fd.frames)
    if vf is not None:
        name = vf["feature"]
        batch.video_X[name], batch.video_present[name] = cached_video_features(
            store, dataset, infos[name], ids, vf.get("pooling", "mean"))
        if labelled:
            # The filter learns "at least one positive frame" from the frame annotations (as the
            # paper); train_task compares that label with the split file's (`video_label_check`).
            batch.video_y = video_labels_from_frames(y, valid, batch.groups, ids)
    return batch


# ----------------------------------------------------------------------------- outputs


def _write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return path


def _suffix(task: str, key: str) -> str:
    return "" if key == task else f"-{key}"


# ----------------------------------------------------------------------------- train


@warnings_once_per_call
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
    environ=None,
) -> RunResult:
    """Train a task from a store; see the module docstring for the run folder and protocol.

    The data root: ``data_root``, else ``DATA_ROOT`` in ``environ``, else the recipe's, else the
    one the store recorded at extraction (see :mod:`affectstore.train.defaults`)."""
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
    if store_dataset is not None:
        rec["store_dataset"] = store_dataset
    validate_recipe(rec)
    task = rec["task"]
    dataset = rec["store_dataset"] or STORE_DATASETS[task]
    rec["store_dataset"] = dataset
    started = time.perf_counter()

    st = open_store(store) if not hasattr(store, "load_feature") else store
    extra = [s["feature"] for s in (rec.get("video_filter"), rec.get("override")) if s is not None]
    all_feats = list(dict.fromkeys(rec["features"] + per_target_features(rec) + extra))
    infos = feature_infos(st, dataset, all_feats)
    root, root_from, recorded = resolve_data_root(data_root, rec["data_root"], recorded_source(st, dataset, all_feats), environ)
    if root is not None:
        logger.info("Data root: %s (%s)", root, root_from)
        rec["data_root"] = str(root)
        if recorded:
            rec["adapter"] = {**recorded, **(rec.get("adapter") or {})}
    adapter = _adapter(task, rec["data_root"], rec)
    specs = _specs(task, adapter, rec)
    unknown = sorted(set(rec["per_target"]) - {s.target for s in specs})
    if unknown:
        raise RecipeError(f"[per_target] names target(s) {unknown} that this run does not train. "
                          f"Targets: {', '.join(str(s.target) for s in specs)}.")
    for spec in specs:
        spec_features = recipe_for_target(rec, spec.target)["features"]
        if spec.level == "frame" and any(infos[f].kind == "video" for f in spec_features):
            bad = [f for f in spec_features if infos[f].kind == "video"]
            raise TrainError(
                f"Feature(s) {bad} hold one vector per video, but task {task!r} is frame level. "
                "Use them as the video_filter feature, or pick frame features."
            )

    run_dir = Path(out) if out is not None else Path("runs") / (rec.get("name") or task)
    run_dir.mkdir(parents=True, exist_ok=True)
    splits = adapter.splits
    groups = group_of(adapter)
    plan = plan_protocol(rec, adapter, groups)
    protocol = plan.description
    logger.info(protocol)

    results, all_metrics, files = {}, {}, []
    timings = {"load_s": 0.0, "fit_evaluate_s": 0.0}
    for spec in specs:
        key = _key(task, spec)
        t0 = time.perf_counter()
        spec_rec = recipe_for_target(rec, spec.target)
        full = build_batch(st, dataset, adapter, spec, spec_rec, infos, plan.labelled_ids, labelled=True)
        t1 = time.perf_counter()
        timings["load_s"] += t1 - t0
        ev = evaluate(spec, spec_rec, full, plan, groups)
        metrics = {"task": task, "target": spec.target, "metric": spec.metric, **ev.metrics}
        if full.video_y is not None:
            metrics["video_filter_labels"] = video_label_check(adapter, full)
        model = ev.model
        timings["fit_evaluate_s"] += time.perf_counter() - t1
        model.save(run_dir / "model" / key)
        files.append(_write_csv(run_dir / f"predictions{_suffix(task, key)}.csv", ev.rows))
        all_metrics[key] = metrics
        results[key] = {"spec": spec, "metrics": metrics, "choices": metrics["choices"], "evaluation": ev}
        head = metrics.get("out_of_fold") or metrics["report"]
        where = "out-of-fold" if plan.cv else ("validation, " + PAPER_NOTE) if plan.optimistic else "report items"
        logger.info("%s: %s = %.4f (%s)", key, spec.metric, head[spec.metric], where)

    elapsed = time.perf_counter() - started
    timings["total_s"] = elapsed  # load + fit + tune + evaluate (writing outputs and the report not included)
    run_info = {
        "task": task, "store": store_url(st), **run_environment(st), "store_dataset": dataset,
        "data_root": str(Path(rec["data_root"]).resolve()) if rec["data_root"] else None,
        "targets": [s.target for s in specs] if task == "clips" else None,
        "recipe": rec, "protocol": protocol, "seconds": timings,
    }
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=2, default=str) + "\n", encoding="utf-8")
    (run_dir / "features.json").write_text(json.dumps([infos[f].as_dict() for f in all_feats], indent=2) + "\n", encoding="utf-8")
    doc = {"task": task, "protocol": protocol, "protocol_mode": plan.mode, "optimistic": plan.optimistic,
           "refit": plan.refit, "results": all_metrics, "seconds": timings}
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


def missing_features(st, dataset: str, features, ids: list[str]) -> dict[str, list[str]]:
    """Video id -> the feature sets it lacks (not complete in the store), for videos lacking any."""
    have = {f: set(st.completed(dataset, f)) for f in features}
    out = {}
    for vid in ids:
        lacking = [f for f in features if vid not in have[f]]
        if lacking:
            out[vid] = lacking
    return out


def predict_run(run, store=None, split: str = TEST_SPLIT, data_root=None, out=None, allow_missing: bool = False) -> RunResult:
    """Predict ``split`` with a trained run (``store`` None: the store it was trained on); writes
    predictions, the submission and (if labelled) metrics.

    Videos of the split that lack a feature in the store are refused (the model would score its
    prior for them) unless ``allow_missing``: then they are predicted from what is there and
    marked in the predictions' ``missing_features`` column."""
    run_dir = Path(run)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise TrainError(f"{info_path} not found: {run_dir} is not a run folder written by `affect train`.")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    rec = info["recipe"]
    task = info["task"]
    dataset = info["store_dataset"]
    if store is None:
        store = info["store"]
        logger.info("Store: %s (the one the run was trained on; --store picks another)", store)
    st = open_store(store) if not hasattr(store, "load_feature") else store
    infos = check_lineage(run_dir, st, dataset)
    adapter = _adapter(task, data_root or info["data_root"], rec)
    if split not in adapter.splits:
        raise TrainError(f"Unknown split {split!r}. Splits of this dataset: {', '.join(adapter.splits)}.")
    ids = [e.id for e in adapter.manifest(split)]
    lacking = missing_features(st, dataset, list(infos), ids)
    if lacking:
        first = ", ".join(f"{v!r} ({', '.join(fs)})" for v, fs in list(lacking.items())[:3])
        message = (f"{len(lacking)} of {len(ids)} {split!r} videos lack features in store {st.location} "
                   f"(dataset {dataset!r}), e.g. {first}.")
        if not allow_missing:
            raise TrainError(f"{message} Extract them first (`affect extract ... --split {split}`), or pass "
                             "--allow-missing to predict them from what is there, marked in the predictions.")
        logger.warning("%s Predicting them anyway (--allow-missing); their rows carry missing_features.", message)
    specs = _specs(task, adapter, rec)
    out_dir = Path(out) if out is not None else run_dir
    files: list[Path] = []
    metrics = {}
    for spec in specs:
        key = _key(task, spec)
        labelled = _has_labels(adapter, spec, ids)
        batch = build_batch(st, dataset, adapter, spec, recipe_for_target(rec, spec.target), infos, ids, labelled=labelled)
        model = TaskModel.load(run_dir / "model" / key, spec)
        scores, labels = model.predict(batch)
        rows = rows_of(batch, scores, labels, spec, split)
        if lacking:
            for row in rows:
                row["missing_features"] = ";".join(lacking.get(row["id"], []))
        files.append(_write_csv(out_dir / f"predictions-{split}{_suffix(task, key)}.csv", rows))
        if labelled and batch.valid.any():
            metrics[key] = score_sets(spec, [(batch, labels)])
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


def video_label_check(adapter, batch: Batch) -> dict:
    """The video filter's frame-derived labels against the split file's labels; disagreements are logged."""
    try:
        split = {k: int(v[0]) for k, v in adapter.video_labels().as_dict().items()}
    except NotProvidedError:
        split = {}
    check = compare_video_labels(batch.video_ids, batch.video_y, split)
    if check["n_disagree"]:
        logger.warning("Video filter labels: %d of %d videos have a frame-derived label that differs from the split "
                       "file's, e.g. %s (all listed in metrics.json).", check["n_disagree"], check["n_compared"],
                       check["disagreements"][:3])
    return check


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
