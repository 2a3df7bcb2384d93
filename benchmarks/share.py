"""Sharing and scale-out, each against a baseline measured in the same run (medians over alternating repeats).

    python benchmarks/share.py http [--videos 2000] [--repeats 3]     # bulk read over localhost HTTP vs local disk
    python benchmarks/share.py cluster [--clips 48] [--repeats 3]     # 2-worker LocalCluster vs 1 process (egemaps)
    python benchmarks/share.py size [--store /work/rav.zarr]          # bytes on disk vs raw array bytes + metadata

http: the synthetic HuBERT-shaped feature of store_read.py (2,000 videos x 50-600 frames x
1024 float16, 1.3 GB), packed, served by a real HTTP server on 127.0.0.1 (range requests);
`load_feature` of the whole feature from the folder, over HTTP, and from the .zip over HTTP.
cluster: RAVDESS dev clips (../shared/data/ravdess-dev) through `run_extraction`, model
loading and cluster start included. size: every file's bytes (apparent) and the blocks the
file system allocates (du), against the arrays' raw bytes plus their metadata documents.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PROV = {"extractor": "synthetic", "config_hash": "bench", "dtype": "float16", "kind": "frames", "rate": 50.0}


def bench_http(args: argparse.Namespace) -> dict:
    from affectstore.store import FeatureStore
    from affectstore.store.archive import archive_store
    from affectstore.store.listing import write_listing
    from affectstore.testing.http import serve_folder

    work = Path(tempfile.mkdtemp(prefix="share-http-"))
    try:
        rng = np.random.default_rng(0)
        store = FeatureStore.open(work / "s.zarr", mode="a")
        store.create_feature("emi", "hubert", dict(PROV, dim=args.dim))
        lengths = rng.integers(50, 601, size=args.videos)
        for i, n in enumerate(lengths):
            vid = f"{i % 40:02d}/Visite 1/clip {i:05d}.mp4"  # ids with / and spaces, as BAH's
            store.write_video("emi", "hubert", vid, rng.standard_normal((n, args.dim), dtype=np.float32).astype(np.float16),
                              np.arange(n) / 50, config_hash="bench")
        store.pack("emi", "hubert")
        write_listing(store)
        archive_store(store, work / "s.zip")
        gb = int(lengths.sum()) * args.dim * 2 / 1e9
        print(f"{args.videos} videos, {int(lengths.sum())} frames x {args.dim} float16 = {gb:.2f} GB", flush=True)
        times: dict[str, list[float]] = {"local folder": [], "http folder": [], "http .zip": []}
        with serve_folder(work) as url:
            where = {"local folder": work / "s.zarr", "http folder": f"{url}/s.zarr", "http .zip": f"{url}/s.zip"}
            reference = None
            for repeat in range(args.repeats + 1):
                for name, location in where.items():
                    start = time.perf_counter()
                    table = FeatureStore.open(location).load_feature("emi", "hubert")
                    took = time.perf_counter() - start
                    if reference is None:
                        reference = table.values
                    elif not np.array_equal(table.values, reference):
                        raise SystemExit(f"{name} read other values")
                    del table
                    if repeat:  # the first round warms the page cache and the imports
                        times[name].append(took)
                        print(f"{name} #{repeat}: {took:.2f} s", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        return {"GB": round(gb, 2), "median_s": {k: round(v, 2) for k, v in med.items()},
                "GB_per_s": {k: round(gb / v, 2) for k, v in med.items()},
                "x_local": {k: round(v / med["local folder"], 2) for k, v in med.items()}}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_cluster(args: argparse.Namespace) -> dict:
    from affectstore.datasets import get_adapter
    from affectstore.extract.runner import RunOptions, run_extraction

    root = SHARED / "ravdess-dev"
    if not root.is_dir():
        raise SystemExit(f"needs the RAVDESS dev clips at {root}")
    ids = sorted(e.id for e in get_adapter("clips", root).manifest())[: args.clips]
    work = Path(tempfile.mkdtemp(prefix="share-cluster-"))
    contenders = {"1 process": {}, "LocalCluster, 2 workers": {"workers": 2}}
    times: dict[str, list[float]] = {k: [] for k in contenders}
    audio = 0.0
    try:
        for repeat in range(args.repeats):
            for name, extra in contenders.items():
                store = work / "s.zarr"
                shutil.rmtree(store, ignore_errors=True)
                start = time.perf_counter()
                summary = run_extraction("clips", root, args.features.split(","), store, videos=ids,
                                         options=RunOptions(progress=False, pack=False, **extra))
                times[name].append(time.perf_counter() - start)
                audio = summary.audio_seconds
                assert summary.done == len(ids), summary.text()
                print(f"{name} #{repeat + 1}: {times[name][-1]:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    one = med["1 process"]
    return {"features": args.features, "clips": len(ids), "audio_s": round(audio, 1), "cores": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2), "median_s": {k: round(v, 1) for k, v in med.items()},
            "speedup": {k: round(one / v, 2) for k, v in med.items()}}


def _sizes(path: Path) -> tuple[int, int]:
    apparent = allocated = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def bench_size(args: argparse.Namespace) -> dict:
    from affectstore.store import FeatureStore
    from affectstore.store.archive import archive_store
    from affectstore.store.share import merge_stores

    source = FeatureStore.open(args.store)
    raw = 0
    for info in source.feature_sets():
        table = source.load_feature(info.dataset, info.feature, pack=False)
        raw += table.values.nbytes + table.times.nbytes
    work = Path(tempfile.mkdtemp(prefix="share-size-", dir=args.workdir))
    try:
        copy = work / "copy.zarr"
        merge_stores([args.store], copy)  # today's writer: videos verbatim, packs rebuilt
        archive_store(FeatureStore.open(copy, mode="a"), work / "copy.zip")
        archive_store(FeatureStore.open(copy, mode="a"), work / "lean.zip", packs=False)
        out = {"raw_array_MB": round(raw / 1e6, 1)}
        for name, path in (("original", Path(args.store)), ("merged copy", copy)):
            apparent, allocated = _sizes(path)
            meta = sum(p.stat().st_size for p in path.rglob("zarr.json"))
            packs = sum(p.stat().st_size for p in path.glob("*/*/packed/*/*/c/**/*") if p.is_file())
            out[name] = {"apparent_MB": round(apparent / 1e6, 1), "du_MB": round(allocated / 1e6, 1),
                         "metadata_MB": round(meta / 1e6, 1), "packs_MB": round(packs / 1e6, 1),
                         "apparent_without_packs_x_raw_plus_meta": round((apparent - packs) / (raw + meta), 3),
                         "du_x_raw_plus_meta": round(allocated / (raw + meta), 3)}
        zip_size = (work / "copy.zip").stat().st_size
        meta = sum(p.stat().st_size for p in copy.rglob("zarr.json"))
        out["zip"] = {"MB": round(zip_size / 1e6, 1), "x_raw_plus_meta": round(zip_size / (raw + meta), 3),
                      "packs_MB": out["merged copy"]["packs_MB"]}
        lean = (work / "lean.zip").stat().st_size
        out["zip --without-packs"] = {"MB": round(lean / 1e6, 1), "x_raw_plus_meta": round(lean / (raw + meta), 3)}
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", choices=["http", "cluster", "size"])
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--features", default="egemaps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", default="/work/rav.zarr")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    result = {"http": bench_http, "cluster": bench_cluster, "size": bench_size}[args.bench](args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
