"""Worker processes for CPU-bound extractors: ``--jobs 2`` against ``--jobs 1`` on the 2-core machine.

    .venv/bin/python benchmarks/jobs_cpu.py [--features egemaps,compare] [--clips 120] [--repeats 3]

The first ``--clips`` RAVDESS dev clips (sorted ids) through ``run_extraction`` into a fresh
store each time, alternating 1 and 2 jobs; medians of wall-clock seconds, model loading and
worker start included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", default="egemaps,compare")
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from affectstore.datasets import get_adapter
    from affectstore.extract.runner import RunOptions, run_extraction

    root = SHARED / "ravdess-dev"
    ids = sorted(e.id for e in get_adapter("clips", root).manifest())[: args.clips]
    work = Path(tempfile.mkdtemp(prefix="jobs-bench-"))
    times: dict[int, list[float]] = {1: [], 2: []}
    audio = 0.0
    for repeat in range(args.repeats):
        for jobs in (1, 2):
            store = work / f"jobs{jobs}.zarr"
            shutil.rmtree(store, ignore_errors=True)
            start = time.perf_counter()
            summary = run_extraction("clips", root, args.features.split(","), store, videos=ids,
                                     options=RunOptions(progress=False, pack=False, jobs=jobs))
            times[jobs].append(time.perf_counter() - start)
            audio = summary.audio_seconds
            print(f"jobs {jobs} #{repeat + 1}: {times[jobs][-1]:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"features": args.features, "clips": len(ids), "audio_s": round(audio, 1),
                      "median_s": {str(k): round(v, 1) for k, v in med.items()},
                      "x_real_time": {str(k): round(audio / v, 1) for k, v in med.items()},
                      "speedup_2_jobs": round(med[1] / med[2], 2)}, indent=1))


if __name__ == "__main__":
    main()
