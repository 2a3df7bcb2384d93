"""Sweep and pooled-feature cache at EMI scale (the synthetic store of benchmarks/train_emi.py).

Timed, on the 12,660-video synthetic EMI store (built once by train_emi.build, untimed):

- ``first``: `train_task("emi", ...)` with train/emi.toml's choices and a fresh, empty
  pooled-feature cache (reads and pools every frame, then writes the cache);
- ``second``: the same call again (same features, same pooling): pooled rows come from the cache;
- ``sweep``: `sweep("emi", ...)` over the 3 features: 7 feature sets, singles once, the 4
  larger sets with early and late fusion (11 rows), the cache warm.

first/second alternate over ``--repeats`` rounds (a fresh cache folder per round); medians
are reported with the ratio second / first measured in the same run.

    .venv/bin/python benchmarks/sweep_emi.py [--work /tmp/affectstore-bench-emi] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_emi import build  # noqa: E402

FEATURES = "mobilevit,hubert,lld40"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/affectstore-bench-emi")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.work)
    build(work)
    from affectstore.train.run import train_task
    from affectstore.train.sweep import sweep

    recipe = Path(__file__).resolve().parents[1] / "train" / "emi.toml"
    kw = dict(recipe=recipe, features=FEATURES, data_root=work / "emi-root", overrides={"pooling": {"mobilevit": "stat"}})
    first, second = [], []
    for k in range(args.repeats):
        cache = work / f"cache-{k}"
        shutil.rmtree(cache, ignore_errors=True)
        os.environ["AFFECTSTORE_CACHE"] = str(cache)
        t = time.perf_counter()
        train_task("emi", work / "emi.zarr", out=work / "run-first", **kw)
        first.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = train_task("emi", work / "emi.zarr", out=work / "run-second", **kw)
        second.append(time.perf_counter() - t)
        print(f"round {k}: first {first[-1]:.1f} s, second {second[-1]:.1f} s", flush=True)
    t = time.perf_counter()
    sw = sweep("emi", work / "emi.zarr", FEATURES, recipe=recipe, out=work / "sweep", data_root=work / "emi-root",
               overrides={"pooling": {"mobilevit": "stat"}})
    sweep_s = time.perf_counter() - t
    f, s = statistics.median(first), statistics.median(second)
    print(json.dumps({
        "first_train_s": round(f, 1), "second_train_s": round(s, 1), "second_over_first": round(s / f, 3),
        "first_runs": [round(x, 1) for x in first], "second_runs": [round(x, 1) for x in second],
        "sweep_s": round(sweep_s, 1), "sweep_rows": len(sw.rows), "sweep_over_first_train": round(sweep_s / f, 2),
        "second_report_mean_pearson_r": round(res.metrics["results"]["emi"]["report"]["mean_pearson_r"], 4),
    }, indent=1))
    print(sw.table_md.read_text())


if __name__ == "__main__":
    main()
