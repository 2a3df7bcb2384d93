"""Extraction throughput and memory on CPU: the runner against a naive per-extractor loop.

    .venv/bin/python benchmarks/extract_cpu.py [--clips 200] [--workdir DIR] [--skip-memory]

Throughput: 200 generated mp3 clips (16 kHz mono speech-like noise, lengths drawn from a
log-normal with median 4 s, clipped to [1, 20] s, like EMI's audio copies) and three audio
extractors on tiny random models (wav2vec2, vad, hubert; 32-d, 2 layers, the real conv
front end). Both contenders use the same loaded extractors and write the same feature sets
to their own store; model loading is left out of both timings:

- naive: for each video, for each extractor: decode the file (``load_audio``), run
  ``extract`` on that one clip, write its outputs;
- runner: ``run_extraction`` with its CPU defaults (decode once, videos ordered by file
  size, pools of 32 clips into ``extract_batch``, decode and writes inline), packing off so
  both do the same work; plus ``runner_threads``: the same with the decode-prefetch and
  writer threads that are the default on CUDA.

Each contender runs in a fresh process (cold caches, as on new data: on CPU, PyTorch's
oneDNN convolutions pay a setup cost for every new input shape), ``--repeats`` times,
interleaved; medians are reported, since the machine may be shared.

Memory: the runner (same three extractors) on one 1-minute and one 20-minute clip, each in
a fresh subprocess; peak RSS is VmHWM from /proc/self/status. The 20-minute clip goes
through the streaming path (longer than ``stream_above_s``=60 s), the 1-minute one through
the in-memory path. Target: peak(20 min) <= 1.3 x peak(1 min).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SR = 16_000
FEATURES = ["wav2vec2", "vad", "hubert"]


def speechlike(n_samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SR
    return (rng.standard_normal(n_samples) * 0.1 * (1.2 + np.sin(2 * np.pi * 0.7 * t + seed))).astype(np.float32)


def make_dataset(root: Path, durations: list[float]) -> None:
    from affectstore.testing.datasets import make_media

    root.mkdir(parents=True, exist_ok=True)
    rows = ["clip,emotion"]
    for k, duration in enumerate(durations):
        clip = f"clips/{k:04d}.mp3"
        if not (root / clip).exists():
            make_media(root / clip, signal=speechlike(int(duration * SR), k), sample_rate=SR)
        rows.append(f"{clip},neutral")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def build_models(folder: Path) -> dict[str, dict[str, str]]:
    from affectstore.testing import models

    out = {}
    for name, build in (("wav2vec2", models.build_wav2vec2), ("vad", models.build_vad), ("hubert", models.build_hubert)):
        path = folder / name
        if not (path / "model.safetensors").exists():
            build(path)
        out[name] = {"model": str(path)}
    return out


def naive(root: Path, extractors, store_path: Path) -> tuple[float, float]:
    """Decode per video per extractor, one clip at a time; returns (seconds, audio seconds)."""
    from affectstore.datasets import get_adapter
    from affectstore.media import load_audio
    from affectstore.store import FeatureStore

    store = FeatureStore.open(store_path, mode="a")
    for extractor in extractors:
        for name, prov in extractor.provenance().items():
            store.create_feature("clips", name, prov)
    entries = get_adapter("clips", root).manifest()
    audio = 0.0
    start = time.perf_counter()
    for entry in entries:
        for extractor in extractors:
            waveform = load_audio(entry.audio)
            if extractor is extractors[0]:
                audio += len(waveform) / SR
            for name, features in extractor.extract(waveform).items():
                store.write_video("clips", name, entry.id, features.values, features.times, config_hash=extractor.config_hash)
    return time.perf_counter() - start, audio


CONTENDERS = ("naive", "runner", "runner_threads")


def throughput_worker(contender: str, root: str, models: str, store: str) -> None:
    """Run in a fresh process (cold caches, as on new data): one contender; print its timing as JSON."""
    from affectstore.extract import create_extractor
    from affectstore.extract.runner import RunOptions, run_extraction

    settings = json.loads(models)
    extractors = [create_extractor(n, settings[n]).load() for n in FEATURES]
    if contender == "naive":
        seconds, audio = naive(Path(root), extractors, Path(store))
    else:
        threads = contender == "runner_threads"
        options = RunOptions(progress=False, pack=False, prefetch=8 if threads else 0, writer_thread=threads)
        summary = run_extraction("clips", root, extractors, store, options=options)
        if summary.failed or summary.done == 0:
            raise SystemExit(summary.text())
        seconds, audio = summary.work_seconds, summary.audio_seconds
    print(json.dumps({"seconds": round(seconds, 2), "audio_per_s": round(audio / seconds, 1)}))


def throughput(workdir: Path, n_clips: int, repeats: int) -> dict:
    """Each contender ``repeats`` times, interleaved, each run in a fresh process; medians reported."""
    import shutil

    import torch

    rng = np.random.default_rng(0)
    durations = np.clip(rng.lognormal(np.log(4.0), 0.6, n_clips), 1.0, 20.0).round(2).tolist()
    root = workdir / "data"
    make_dataset(root, durations)
    settings = build_models(workdir / "models")
    runs: dict[str, list[dict]] = {c: [] for c in CONTENDERS}
    for rep in range(repeats):
        for contender in CONTENDERS:
            store = workdir / f"{contender}.zarr"
            shutil.rmtree(store, ignore_errors=True)
            command = [sys.executable, __file__, "--throughput-worker", contender, str(root), json.dumps(settings), str(store)]
            result = subprocess.run(command, check=True, capture_output=True, text=True)
            runs[contender].append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"rep {rep} {contender}: {runs[contender][-1]}", flush=True)
    results = {"clips": n_clips, "audio_s": round(sum(durations), 1), "torch_threads": torch.get_num_threads(), "repeats": repeats}
    for contender, timings in runs.items():
        results[contender] = {
            "median_audio_per_s": float(np.median([t["audio_per_s"] for t in timings])),
            "median_seconds": float(np.median([t["seconds"] for t in timings])),
            "all_audio_per_s": [t["audio_per_s"] for t in timings],
        }
    results["speedup"] = round(results["runner"]["median_audio_per_s"] / results["naive"]["median_audio_per_s"], 2)
    results["speedup_threads"] = round(results["runner_threads"]["median_audio_per_s"] / results["naive"]["median_audio_per_s"], 2)

    # same numbers from both (batched vs one clip at a time)
    from affectstore.store import FeatureStore

    a, b = FeatureStore.open(workdir / "naive.zarr"), FeatureStore.open(workdir / "runner.zarr")
    worst = 0.0
    for name in ("wav2vec2", "vad", "vad-frames", "hubert"):
        for vid in a.completed("clips", name)[:50]:
            worst = max(worst, float(np.abs(a.read_video("clips", name, vid).values - b.read_video("clips", name, vid).values).max()))
    results["max_abs_difference"] = worst
    return results


# --------------------------------------------------------------------------- memory


def vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_worker(root: str, models: str, store: str) -> None:
    """Run in a fresh process: the runner over one clip; print peak RSS as JSON."""
    from affectstore.extract.runner import RunOptions, run_extraction

    settings = json.loads(models)
    from affectstore.extract import create_extractor

    extractors = [create_extractor(n, settings[n]).load() for n in FEATURES]
    after_load = vm_hwm_mib()
    summary = run_extraction("clips", root, extractors, store, options=RunOptions(progress=False, pack=False))
    print(json.dumps({
        "peak_mib": round(vm_hwm_mib(), 1), "after_load_mib": round(after_load, 1), "seconds": round(summary.work_seconds, 1),
        "audio_s": round(summary.audio_seconds, 1), "done": summary.done,
    }))


def memory(workdir: Path, minutes: list[float]) -> dict:
    settings = build_models(workdir / "models")
    out = {}
    for m in minutes:
        root = workdir / f"long-{m:g}min"
        clip = root / "clips" / "long.mp3"
        if not clip.exists():
            from affectstore.testing.datasets import make_media

            make_media(clip, signal=speechlike(int(m * 60 * SR), 7), sample_rate=SR)
        (root / "labels.csv").write_text("clip,emotion\nclips/long.mp3,neutral\n")
        store = workdir / f"long-{m:g}min.zarr"
        command = [sys.executable, __file__, "--memory-worker", str(root), json.dumps(settings), str(store)]
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        out[f"{m:g}min"] = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{m:g} min: {out[f'{m:g}min']}", flush=True)
    first, last = out[f"{minutes[0]:g}min"], out[f"{minutes[-1]:g}min"]
    out["ratio"] = round(last["peak_mib"] / first["peak_mib"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 20])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-worker", nargs=3, metavar=("ROOT", "MODELS", "STORE"))
    parser.add_argument("--throughput-worker", nargs=4, metavar=("CONTENDER", "ROOT", "MODELS", "STORE"))
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(*args.memory_worker)
        return
    if args.throughput_worker:
        throughput_worker(*args.throughput_worker)
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="extract-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("*.zarr"):
        import shutil

        shutil.rmtree(old)
    results = {}
    if not args.skip_throughput:
        results["throughput"] = throughput(workdir, args.clips, args.repeats)
    if not args.skip_memory:
        results["memory"] = memory(workdir, args.minutes)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
