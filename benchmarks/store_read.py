"""Bulk-read speed of the feature store against the papers' formats, measured in one run.

A synthetic feature shaped like HuBERT on EMI (default 2,000 videos x 50-600 frames x
1024 float16, about 1.3 GB) is written three ways: one pickled dict {id: array}, one
`.npy` per video, and an affectstore store. Each is loaded fully into memory several
times on a warm page cache; the medians are compared. Then a store of 15,000 small
videos is opened and its complete videos listed.

    python benchmarks/store_read.py            # full size (needs ~6 GB of disk, ~4 GB of RAM)
    python benchmarks/store_read.py --videos 200 --list-videos 2000   # quick
"""

from __future__ import annotations

import argparse
import pickle  # the baseline format the papers use; never used by affectstore itself
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from affectstore.store import FeatureStore

PROV = {"extractor": "synthetic", "config_hash": "bench", "dtype": "float16", "kind": "frames", "rate": 50.0}


def _load(method: str, work: Path):
    if method == "pickle dict":
        with open(work / "features.pkl", "rb") as f:
            return pickle.load(f)
    if method == "npy per video":
        return {p.stem: np.load(p) for p in sorted((work / "npy").iterdir())}
    reader = FeatureStore.open(work / "store.zarr", mode="r")
    return reader.load_feature("emi", "hubert", pack=method == "store, packed")


def _fresh_process_time(method: str, work: Path, repeats: int) -> float:
    """Median load time, each load in a new interpreter (as a training script does), timing the load alone."""
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", method, "--workdir", str(work)],
            check=True, capture_output=True, text=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def _median_time(fn, repeats: int) -> float:
    fn()  # warm the page cache and any lazy imports
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        del out
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--min-frames", type=int, default=50)
    parser.add_argument("--max-frames", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--list-videos", type=int, default=15000)
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the files (default: a temp folder)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        t0 = time.perf_counter()
        _load(args.worker, args.workdir)
        print(time.perf_counter() - t0)
        return

    work = Path(tempfile.mkdtemp(prefix="affect-bench-", dir=args.workdir))
    try:
        rng = np.random.default_rng(0)
        lengths = rng.integers(args.min_frames, args.max_frames + 1, size=args.videos)
        data = {
            f"{i:05d}": (rng.standard_normal((n, args.dim), dtype=np.float32).astype(np.float16), np.arange(n) / 50.0)
            for i, n in enumerate(lengths)
        }
        gb = sum(v.nbytes for v, _ in data.values()) / 1e9
        print(f"{args.videos} videos, {int(lengths.sum())} frames x {args.dim} float16 = {gb:.2f} GB")

        pkl = work / "features.pkl"
        with open(pkl, "wb") as f:
            pickle.dump({k: v for k, (v, _) in data.items()}, f, protocol=pickle.HIGHEST_PROTOCOL)
        npy_dir = work / "npy"
        npy_dir.mkdir()
        for k, (v, _) in data.items():
            np.save(npy_dir / f"{k}.npy", v)
        store_path = work / "store.zarr"
        store = FeatureStore.open(store_path, mode="a")
        store.create_feature("emi", "hubert", dict(PROV, dim=args.dim))
        t0 = time.perf_counter()
        for k, (v, t) in data.items():
            store.write_video("emi", "hubert", k, v, t, config_hash="bench")
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.pack("emi", "hubert")
        pack_s = time.perf_counter() - t0
        del data

        methods = ["pickle dict", "npy per video", "store, packed", "store, per video (raw chunks)"]
        for label, timer in (
            ("each load in a fresh process", lambda m: _fresh_process_time(m, work, args.repeats)),
            ("repeated loads in one process", lambda m: _median_time(lambda: _load(m, work), args.repeats)),
        ):
            results = {m: timer(m) for m in methods}
            base = results["pickle dict"]
            print(f"\n{label}:")
            print("| load all into memory | median s | x pickle | x npy |")
            print("|---|---|---|---|")
            for name, sec in results.items():
                print(f"| {name} | {sec:.3f} | {sec / base:.2f} | {sec / results['npy per video']:.2f} |")
        print(f"\nwrite {args.videos} videos: {write_s:.1f} s; pack: {pack_s:.1f} s")

        list_path = work / "many.zarr"
        many = FeatureStore.open(list_path, mode="a")
        many.create_feature("emi", "vad", dict(PROV, dim=3, kind="video", rate=None))
        t0 = time.perf_counter()
        for i in range(args.list_videos):
            many.write_video("emi", "vad", f"{i:05d}", np.zeros((1, 3), np.float16), [0.0], config_hash="bench")
        print(f"wrote {args.list_videos} marks in {time.perf_counter() - t0:.1f} s")

        def open_and_list():
            return FeatureStore.open(list_path, mode="r").completed("emi", "vad")

        listed = _median_time(open_and_list, args.repeats)
        print(f"open a store of {args.list_videos} videos and list the complete ones: {listed:.3f} s (median)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
