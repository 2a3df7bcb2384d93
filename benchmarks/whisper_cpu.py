"""Whisper on CPU: the runner's ``whisper`` against a naive loop calling faster-whisper per clip,
and the transcripts of the real CREMA-D clips (equality with faster-whisper, word error rate).

    .venv/bin/python benchmarks/whisper_cpu.py throughput [--clips 60] [--repeats 2] [--jobs 2]
    .venv/bin/python benchmarks/whisper_cpu.py crema

Model: Whisper base in CTranslate2 form (``affect models fetch whisper-base``), beam 5, word
timestamps, language detected: faster-whisper's defaults.

- throughput: the first ``--clips`` RAVDESS dev clips (sorted ids). Naive: one
  ``WhisperModel`` (CTranslate2's default threads), ``transcribe(path)`` per clip, the
  segments written to a store. Runner: ``run_extraction(..., ["whisper"])`` with ``--jobs``
  worker processes (one CTranslate2 thread each). Alternating repeats, medians, model loading
  included on both sides.
- crema: the twelve CREMA-D clips through the runner, compared with ``transcribe(path)``,
  and the word error rate against "Don't forget a jacket".
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def model_dir() -> str:
    from affectstore.extract.model_files import require_packaged_dir

    return str(require_packaged_dir("whisper-base"))


def naive(root: Path, ids: list[str], store_path: Path) -> float:
    import numpy as np
    from faster_whisper import WhisperModel

    from affectstore.store import FeatureStore

    start = time.perf_counter()
    model = WhisperModel(model_dir(), device="cpu")
    store = FeatureStore.open(store_path, mode="a")
    store.create_feature("clips", "whisper", {"extractor": "naive", "config_hash": "naive", "dim": 0, "dtype": "str", "kind": "text"})
    for vid in ids:
        segments = list(model.transcribe(str(root / vid), beam_size=5, word_timestamps=True)[0])
        store.write_text("clips", "whisper", vid, np.array([s.start for s in segments]), np.array([s.end for s in segments]),
                         [s.text.strip() for s in segments], config_hash="naive")
    return time.perf_counter() - start


def runner(root: Path, ids: list[str], store_path: Path, jobs: int) -> float:
    from affectstore.extract.runner import RunOptions, run_extraction

    start = time.perf_counter()
    settings = {"whisper": {"cpu_threads": 1 if jobs > 1 else 0}}
    summary = run_extraction("clips", root, ["whisper"], store_path, settings=settings, videos=ids,
                             options=RunOptions(progress=False, pack=False, jobs=jobs))
    if summary.failed:
        raise SystemExit(summary.text())
    return time.perf_counter() - start


def throughput(args: argparse.Namespace) -> None:
    from affectstore.datasets import get_adapter

    root = SHARED / "ravdess-dev"
    ids = sorted(e.id for e in get_adapter("clips", root).manifest())[: args.clips]
    work = Path(tempfile.mkdtemp(prefix="whisper-bench-"))
    times: dict[str, list[float]] = {"naive": [], "runner": []}
    for repeat in range(args.repeats):
        for name in ("naive", "runner"):
            store = work / f"{name}.zarr"
            shutil.rmtree(store, ignore_errors=True)
            seconds = naive(root, ids, store) if name == "naive" else runner(root, ids, store, args.jobs)
            times[name].append(seconds)
            print(f"{name} #{repeat + 1}: {seconds:.1f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"clips": len(ids), "jobs": args.jobs, "median_s": {k: round(v, 1) for k, v in med.items()},
                      "clips_per_s": {k: round(len(ids) / v, 2) for k, v in med.items()},
                      "speedup": round(med["naive"] / med["runner"], 2)}, indent=1))


def crema(args: argparse.Namespace) -> None:
    from faster_whisper import WhisperModel

    from affectstore.extract.runner import RunOptions, run_extraction
    from affectstore.store import FeatureStore
    from affectstore.testing.asr import word_error_rate

    root = SHARED / "crema-d"
    work = Path(tempfile.mkdtemp(prefix="whisper-crema-"))
    run_extraction("clips", root, ["whisper"], work / "s.zarr", options=RunOptions(progress=False))
    store = FeatureStore.open(work / "s.zarr")
    reference = WhisperModel(model_dir(), device="cpu")
    rows, equal = [], 0
    for vid in sorted(store.completed("clips", "whisper")):
        got = store.read_video("clips", "whisper", vid)
        direct = [s.text.strip() for s in reference.transcribe(str(root / vid), beam_size=5, word_timestamps=True)[0]]
        text = " ".join(got.text)
        equal += got.text == direct
        rows.append({"clip": vid, "transcript": text, "wer": round(word_error_rate("Don't forget a jacket", text), 3)})
    print(json.dumps({"clips": rows, "equal_to_faster_whisper": f"{equal}/{len(rows)}",
                      "all_begin_dont_forget": all(r["transcript"].startswith("Don't forget") for r in rows),
                      "mean_wer": round(statistics.mean(r["wer"] for r in rows), 3)}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--clips", type=int, default=60)
    t.add_argument("--repeats", type=int, default=2)
    t.add_argument("--jobs", type=int, default=2)
    sub.add_parser("crema")
    args = parser.parse_args()
    throughput(args) if args.what == "throughput" else crema(args)


if __name__ == "__main__":
    main()
