"""Peak memory of face extraction: a 30-minute video against a 1-minute one.

    .venv/bin/python benchmarks/face_memory.py [--minutes 1 30] [--repeats 2] [--workdir DIR]

Generates one H.264 video per length (a drawn face moving over a grey background, 160x120 at
5 fps, so the detector samples every frame), then extracts it in a fresh subprocess each time,
alternating the lengths: ``affect extract clips`` with the defaults (Haar detection at 5 fps,
largest face, square crops) feeding ``fer`` (when its model file is fetched) and a tiny ViT
(``hf-image``). Each worker reports its peak RSS from VmHWM (/proc/self/status): the whole
process, interpreter, libraries and decoder buffers included. The target is
median peak RSS(30 min) <= 1.3 x median peak RSS(1 min).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, sys, time
from affectstore.extract.runner import RunOptions, run_extraction
root, store, features, vit = sys.argv[1:5]
start = time.perf_counter()
s = run_extraction("clips", root, features.split(","), store, settings={"hf-image": {"model": vit}}, options=RunOptions(progress=False))
seconds = time.perf_counter() - start
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024
print(json.dumps({"peak_rss": peak, "seconds": seconds, "faces": s.amounts.get("faces", 0), "failed": s.failed}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs=2, default=(1.0, 30.0))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from affectstore.extract.model_files import packaged_path
    from affectstore.testing.faces import make_face_video
    from affectstore.testing.models import build_vit

    work = args.workdir or Path(tempfile.mkdtemp(prefix="face-memory-"))
    vit = build_vit(work / "vit")
    features = ("fer," if packaged_path("fer").is_file() else "") + "hf-image"
    roots = {}
    for minutes in args.minutes:
        root = work / f"{minutes:g}min"
        if not (root / "labels.csv").is_file():
            started = time.perf_counter()
            make_face_video(root / "talk.mp4", minutes * 60, fps=5.0, size=(160, 120))
            (root / "labels.csv").write_text("clip,emotion\ntalk.mp4,a\n")
            print(f"generated {minutes:g} min in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        roots[minutes] = root
    results: dict[float, list[dict]] = {m: [] for m in args.minutes}
    for repeat in range(args.repeats):
        for minutes, root in roots.items():
            store = work / f"store-{minutes:g}.zarr"
            shutil.rmtree(store, ignore_errors=True)
            out = subprocess.run([sys.executable, "-c", WORKER, str(root), str(store), features, str(vit)],
                                 capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            results[minutes].append(row)
            print(f"{minutes:g} min: peak RSS {row['peak_rss'] / 2**20:.0f} MiB, {row['faces']:.0f} faces in {row['seconds']:.1f} s",
                  file=sys.stderr)
    short, long = args.minutes
    peak = {m: statistics.median(r["peak_rss"] for r in rows) for m, rows in results.items()}
    print(json.dumps({
        "features": features,
        "peak_rss_mib": {f"{m:g}": round(p / 2**20, 1) for m, p in peak.items()},
        "faces": {f"{m:g}": results[m][0]["faces"] for m in results},
        "seconds": {f"{m:g}": round(statistics.median(r["seconds"] for r in rows), 1) for m, rows in results.items()},
        "ratio": round(peak[long] / peak[short], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
