"""`affect sweep`: every feature alone and every combination, early and late fusion, one table.

``sweep(task, store, features=[a, b, c], recipe=R, out=DIR)`` trains, under the recipe's
protocol and settings, one model per non-empty subset of the features: a single feature
alone (row fusion "single"), and every set of two or more with early fusion (one model on
the concatenation) and with late fusion (one model per feature, blend chosen on the
tuning items). Features are read from the store once for the whole sweep (video-level
features through the pooled-feature cache, `affectstore.train.cache`), and every row uses
the same fit / tuning / report items, so rows differ only in their inputs.

It writes ``DIR/table.csv`` (one row per feature set and fusion: the task metric on the
report items and out of fold where there is cross-validation, then one column per output)
and ``DIR/table.md`` (the same, the best row in bold and marked), like Table 2 of Savchenko
2025. Clips datasets with several targets get one block of rows per target.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from affectstore.train.errors import TrainError
from affectstore.train.protocol import evaluate, group_of, plan_protocol
from affectstore.train.run import _adapter, _key, _specs, build_batch
from affectstore.train.data import feature_infos, open_store
from affectstore.train.recipe import load_recipe, merge_recipe, validate_recipe
from affectstore.train.runinfo import warnings_once_per_call
from affectstore.train.tasks import STORE_DATASETS, check_task

logger = logging.getLogger(__name__)

SINGLE, EARLY, LATE = "single", "early", "late"
MAX_FEATURES = 6  # 63 sets x 2 fusions is already a long afternoon


@dataclass
class SweepResult:
    """The table's rows and the files written."""

    rows: list[dict]
    table_csv: Path
    table_md: Path
    seconds: float


def feature_sets(features: list[str], fusions=(EARLY, LATE)) -> list[tuple[tuple[str, ...], str]]:
    """(feature set, fusion) for every non-empty subset: singles once, larger sets once per fusion."""
    out = []
    for k in range(1, len(features) + 1):
        for combo in itertools.combinations(features, k):
            if k == 1:
                out.append((combo, SINGLE))
            else:
                out += [(combo, f) for f in fusions]
    return out


@warnings_once_per_call
def sweep(task: str, store, features, recipe=None, out=None, data_root=None, cv: int | None = None,
          store_dataset: str | None = None, overrides: dict | None = None, fusions=(EARLY, LATE)) -> SweepResult:
    """Train every feature set of ``features`` (see the module docstring); returns the rows and files."""
    started = time.perf_counter()
    check_task(task)
    rec = load_recipe(recipe)
    if rec.get("task") not in (None, task):
        raise TrainError(f"Recipe {recipe} is for task {rec['task']!r}, not {task!r}. Pick a recipe for {task!r}.")
    rec["task"] = task
    if overrides:
        rec = merge_recipe(rec, overrides, "overrides")
    feats = [f.strip() for f in features.split(",") if f.strip()] if isinstance(features, str) else list(features)
    if not feats:
        raise TrainError("A sweep needs at least one feature: pass --features a,b,c.")
    if len(feats) > MAX_FEATURES:
        raise TrainError(f"A sweep of {len(feats)} features trains {2 ** len(feats) - 1} sets; at most {MAX_FEATURES} "
                         f"features are allowed. Got {feats}.")
    bad = [f for f in fusions if f not in (EARLY, LATE)]
    if bad:
        raise TrainError(f"fusions must be 'early' and/or 'late'. Got {bad}.")
    rec["features"] = feats
    if cv is not None:
        rec["protocol"]["cv"] = int(cv)
    if data_root is not None:
        rec["data_root"] = str(data_root)
    if store_dataset is not None:
        rec["store_dataset"] = store_dataset
    # Fixed blend weights name one weight per recipe feature: they cannot apply to every subset.
    rec["blend"]["weights"] = None
    validate_recipe(rec)
    dataset = rec["store_dataset"] or STORE_DATASETS[task]
    st = open_store(store) if not hasattr(store, "load_feature") else store
    extra = [s["feature"] for s in (rec.get("video_filter"), rec.get("override")) if s is not None]
    infos = feature_infos(st, dataset, list(dict.fromkeys(feats + extra)))
    adapter = _adapter(task, rec["data_root"], rec)
    specs = _specs(task, adapter, rec)
    groups = group_of(adapter)
    plan = plan_protocol(rec, adapter, groups)
    logger.info(plan.description)
    out_dir = Path(out) if out is not None else Path("runs") / f"sweep-{task}"
    out_dir.mkdir(parents=True, exist_ok=True)

    rows: list[dict] = []
    sets = feature_sets(feats, fusions)
    for spec in specs:
        key = _key(task, spec)
        full = build_batch(st, dataset, adapter, spec, rec, infos, plan.labelled_ids, labelled=True)  # read once
        for combo, fusion in sets:
            r = dict(rec, features=list(combo), fusion=LATE if fusion == SINGLE else fusion)
            t0 = time.perf_counter()
            ev = evaluate(spec, r, full, plan, groups)
            m = ev.metrics
            head = m.get("out_of_fold") or m["report"]
            row = {
                "target": key, "features": "+".join(combo), "fusion": fusion, "metric": spec.metric,
                "report": m["report"][spec.metric] if "report" in m else None,
                "out_of_fold": m["out_of_fold"][spec.metric] if "out_of_fold" in m else None,
                "n": head["n"], "optimistic": bool(m.get("optimistic")),
                "outputs": {o: v[spec.per_output_key()] for o, v in head["per_output"].items()},
                "seconds": round(time.perf_counter() - t0, 2),
            }
            rows.append(row)
            logger.info("sweep %s [%s, %s]: %s = %.4f", key, row["features"], fusion, spec.metric,
                        row["out_of_fold"] if row["out_of_fold"] is not None else row["report"])
    elapsed = time.perf_counter() - started
    csv_path, md_path = write_tables(out_dir, rows, plan)
    (out_dir / "sweep.json").write_text(json.dumps({"task": task, "store": str(getattr(st, "location", store)),
                                                    "features": feats, "protocol": plan.description, "rows": rows,
                                                    "seconds": round(elapsed, 1)}, indent=1) + "\n", encoding="utf-8")
    return SweepResult(rows, csv_path, md_path, elapsed)


def _headline(row: dict) -> float:
    return row["out_of_fold"] if row["out_of_fold"] is not None else row["report"]


def write_tables(out_dir: Path, rows: list[dict], plan) -> tuple[Path, Path]:
    """``table.csv`` and ``table.md`` from the sweep rows (best row per target marked)."""
    best = {}
    for r in rows:
        if r["target"] not in best or _headline(r) > _headline(best[r["target"]]):
            best[r["target"]] = r
    outputs = list(dict.fromkeys(o for r in rows for o in r["outputs"]))
    has_oof = any(r["out_of_fold"] is not None for r in rows)
    report_name = "report (optimistic)" if plan.optimistic else "report"
    cols = ["target", "features", "fusion", "metric", "report", "out_of_fold", "n", *outputs, "best"]
    csv_path = out_dir / "table.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([r["target"], r["features"], r["fusion"], r["metric"],
                        "" if r["report"] is None else f"{r['report']:.4f}",
                        "" if r["out_of_fold"] is None else f"{r['out_of_fold']:.4f}", r["n"],
                        *(f"{r['outputs'][o]:.4f}" if o in r["outputs"] else "" for o in outputs),
                        "yes" if best[r["target"]] is r else ""])
    lines = ["# Feature sweep", "", plan.description, ""]
    for target in best:
        sub = [r for r in rows if r["target"] == target]
        out_cols = [o for o in outputs if o in sub[0]["outputs"]]
        metric = sub[0]["metric"]
        head = ["features", "fusion"] + ([f"{metric} out of fold"] if has_oof else [f"{metric} {report_name}"]) + out_cols
        lines += [f"## {target}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in sub:
            cells = [r["features"], r["fusion"], f"{_headline(r):.4f}"] + [f"{r['outputs'][o]:.4f}" for o in out_cols]
            if best[target] is r:
                cells = [f"**{c}**" for c in cells]
                cells[0] += " (best)"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    md_path = out_dir / "table.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, md_path
