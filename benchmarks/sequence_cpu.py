"""Sequence models at EMI scale on CPU: seconds per training epoch and peak memory while streaming.

The store (built once under --work, not timed) is shaped like the Hallmen EMI recipe's inputs
for the 8,072 EMI training videos: ``wav2vec2`` 1024-d float16 at 50 Hz and ``vad`` 3-d at
50 Hz (clip lengths lognormal around 6.5 s, 2-12 s, as in train_emi.py), ``vit-huge`` 1280-d
float16 face embeddings at 6 fps, ``gte`` one 768-d vector per video. That is about 6 GB of
sequences, four times the default 1.5 GB cache of `VideoSource`, so batches are streamed
from the store chunk by chunk.

Timed, in alternating rounds (median over rounds):

- baseline: streaming + padding ``--batches`` mini-batches of 32 videos (`collate`) with no model;
- each model (paper widths: LSTM 256, fusion 256; TCN/Transformer d=128) doing a full
  training step (forward, backward, AdamW) on those mini-batches. ``bah-window`` and
  ``tcn-xattn`` are frame-level models: their items are target frames (one random frame per
  video), each cut into the paper's windows (vision 20 s at 400 samples, audio 12 s; tcn-xattn
  4 s windows, visual query over the two audio streams).

Seconds per epoch = median seconds per batch x 253 batches (8,072 items of batch 32; the
frame-level models drawing 8,072 frames per epoch as bah-window's balanced sampler does).
Then one full streamed pass over all 8,072 videos measures the loader's real epoch time and
peak RSS (the process's ru_maxrss, which also covers every timed step above).

    .venv/bin/python benchmarks/sequence_cpu.py [--work /tmp/affectstore-bench-seq] [--batches 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from affectstore.store import FeatureStore

N_VIDEOS = 8072
FEATURES = {"wav2vec2": (1024, 50.0, "audio"), "vad": (3, 50.0, "audio"), "vit-huge": (1280, 6.0, "faces")}


def build(work: Path, n_videos: int) -> None:
    """The synthetic store (skipped when already built with as many videos)."""
    if (work / "built.json").is_file() and json.loads((work / "built.json").read_text())["videos"] == n_videos:
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"{k:05d}" for k in range(n_videos)]
    durations = np.clip(rng.lognormal(np.log(6.5), 0.35, size=len(ids)), 2.0, 12.0)
    st = FeatureStore.open(work / "emi.zarr", mode="a")
    started = time.perf_counter()
    for name, (dim, rate, inp) in FEATURES.items():
        prov = {"extractor": "synthetic", "config_hash": f"bench-{name}", "dim": dim, "dtype": "float16",
                "kind": "frames", "rate": rate, "input": inp}
        st.create_feature("emi", name, prov)
        pool = rng.standard_normal((int(12.0 * rate) + 64, dim)).astype(np.float16)
        for k, vid in enumerate(ids):
            n = max(1, int(durations[k] * rate))
            a = int(rng.integers(0, 64))
            st.write_video("emi", name, vid, pool[a:a + n], np.arange(n) / rate, config_hash=prov["config_hash"])
        print(f"built {name}: {time.perf_counter() - started:.0f} s so far", flush=True)
    prov = {"extractor": "synthetic", "config_hash": "bench-gte", "dim": 768, "dtype": "float16", "kind": "video",
            "rate": None, "input": "transcript"}
    st.create_feature("emi", "gte", prov)
    for vid in ids:
        st.write_video("emi", "gte", vid, rng.standard_normal((1, 768)).astype(np.float16), np.zeros(1),
                       config_hash="bench-gte")
    (work / "built.json").write_text(json.dumps({"videos": len(ids), "durations_mean_s": float(durations.mean())}))


def models(view_infos):
    """(name, estimator, stream specs, frame-level?) of the four models at the papers' widths."""
    from affectstore.train.registry import BINARY, REGRESSION, get_entry

    common = {"progress": False, "n_threads": None, "device": "cpu"}
    emi_streams = {"audio": {"features": ["wav2vec2", "vad"]}, "vision": {"features": ["vit-huge"], "max_frames": 400},
                   "text": {"features": ["gte"], "pooled": True}}
    out = [
        ("lstm-fusion", get_entry("lstm-fusion").build(REGRESSION, {**common, "streams": emi_streams}), False),
        ("tcn-qam", get_entry("tcn-qam").build(REGRESSION, {**common, "streams": emi_streams,
                                                            "arch": {"tcn_streams": ["vision"]}}), False),
        ("bah-window", get_entry("bah-window").build(BINARY, {**common, "streams": {
            "audio": {"features": ["wav2vec2"], "window": 12.0},
            "vision": {"features": ["vit-huge"], "window": 20.0, "samples": 400},
            "text": {"features": ["gte"], "pooled": True}}}), True),
        ("tcn-xattn", get_entry("tcn-xattn").build(REGRESSION, {**common, "arch": {"query": "visual"}, "streams": {
            "visual": {"features": ["vit-huge"], "window": 4.0, "samples": 101},
            "wav2vec2": {"features": ["wav2vec2"], "window": 4.0},
            "vad": {"features": ["vad"], "window": 4.0}}}), True),
    ]
    return out


def prepare(est, view, frame: bool, rng):
    """Set up ``est`` as its ``fit`` would (streams, input scaling, network, optimiser) without training."""
    from affectstore.train.sequence.streams import parse_streams

    est._validate_params()
    est.level_ = "frame" if frame else "video"
    est.n_outputs_ = 1 if est.loss == "bce" else (2 if est.loss == "ccc" else 6)
    est.streams_ = parse_streams(est.streams, view.features)
    est.stream_dims_ = {k: s.dim(view.source.dims) for k, s in est.streams_.items()}
    est.resolved_arch_ = est.resolve_arch(view, est.streams_)
    est._norm_stats(view, np.arange(64), rng)
    net = est._build(torch.device("cpu"))
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=est.learning_rate)
    return net, opt


def step(est, net, opt, view, idx) -> None:
    batch = est._normalise(net, est._tensors(view, idx, torch.device("cpu")))
    out = net(batch)
    target = torch.zeros_like(out) + 0.5
    loss = est._loss_fn()(out.float(), target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/affectstore-bench-seq")
    ap.add_argument("--batches", type=int, default=3, help="Timed mini-batches per model per round.")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--videos", type=int, default=N_VIDEOS, help="Store size (8,072 = EMI train; less for a smoke run).")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    t0 = time.perf_counter()
    build(work, args.videos)
    print(f"store ready ({time.perf_counter() - t0:.0f} s)", flush=True)

    from affectstore.train.data import feature_infos, open_store
    from affectstore.train.sequence import SequenceView, VideoSource, collate
    from affectstore.train.sequence.streams import parse_streams

    st = open_store(work / "emi.zarr")
    ids = st.completed("emi", "wav2vec2")
    infos = feature_infos(st, "emi", ["wav2vec2", "vad", "vit-huge", "gte"])
    rng = np.random.default_rng(0)
    source = VideoSource(st, "emi", infos, ids)
    video_view = SequenceView(source, ids)
    source.get(ids[0])  # the first chunk read decides whether the store is held or streamed
    frame_times = rng.uniform(0, 2.0, len(ids))  # one target per video, inside every clip (>= 2 s)
    frame_view = SequenceView(source, ids, frame_times)
    plan = models(infos)
    prepared = {name: prepare(est, frame_view if frame else video_view, frame, rng) for name, est, frame in plan}
    baseline_specs = parse_streams({"audio": {"features": ["wav2vec2", "vad"]}, "vision": {"features": ["vit-huge"]},
                                    "text": {"features": ["gte"], "pooled": True}}, video_view.features)
    times: dict[str, list[float]] = {"loader": []} | {name: [] for name, _, _ in plan}
    n_epoch_batches = int(np.ceil(args.videos / 32))
    for r in range(args.rounds):
        # Mini-batches in the order training draws them (chunk by chunk while streaming), not 32
        # random videos from 32 different chunks, which no epoch ever asks for.
        order = video_view.batches(np.arange(len(ids)), 32, rng)
        picks = [next(order) for _ in range(args.batches + 1)]
        t = time.perf_counter()
        for idx in picks[1:]:
            collate(video_view, idx, baseline_specs)
        times["loader"].append((time.perf_counter() - t) / args.batches)
        for name, est, frame in plan:
            net, opt = prepared[name]
            view = frame_view if frame else video_view
            step(est, net, opt, view, picks[0])  # warm-up
            t = time.perf_counter()
            for idx in picks[1:]:
                step(est, net, opt, view, idx)
            times[name].append((time.perf_counter() - t) / args.batches)
            print(f"round {r}: {name} {times[name][-1]:.2f} s/batch", flush=True)
    t = time.perf_counter()
    for idx in video_view.batches(np.arange(len(ids)), 32, rng):
        collate(video_view, idx, baseline_specs)
    full_pass = time.perf_counter() - t
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    base = statistics.median(times["loader"])
    print(f"\nstreamed={source.fits is False}, store reads {source.reads}, full loader pass {full_pass:.0f} s, "
          f"peak RSS {peak_gb:.2f} GB, torch threads {args.threads}")
    print(f"| model | s / batch of 32 (median) | ratio vs loader only | s / epoch ({n_epoch_batches} batches) |")
    print("|---|---|---|---|")
    print(f"| loader only (stream + pad) | {base:.3f} | 1.0 | {base * n_epoch_batches:.0f} |")
    for name, _, _ in plan:
        m = statistics.median(times[name])
        print(f"| {name} | {m:.2f} | {m / base:.1f} | {m * n_epoch_batches:.0f} |")


if __name__ == "__main__":
    main()
