"""wav2vec2-large throughput through the extractor, fp16 on CUDA: audio seconds per wall second.

    .venv/bin/python benchmarks/gpu_wav2vec2.py [--layers 12|24] [--batch-size 32] [--clips 256] [--seconds 8]
    .venv/bin/python benchmarks/gpu_wav2vec2.py --device cpu --tiny      # smoke test, no GPU needed

Builds the real architecture from a config with random weights (hidden 1024, 16 heads,
4096 FFN, layer-norm conv front end with bias, stable layer norm: the layout of
``audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim`` with ``--layers 12`` or of
wav2vec2-large-robust with ``--layers 24``), saves it to a temporary folder and loads it
through the ``wav2vec2`` extractor (``from_pretrained``, fp16 compute on CUDA), so the
figure includes normalisation, padding, masks and the copy back to the host. Clips are
``--seconds`` long with +-25 % jitter (so batches pad, as real ones do). Target on an H100:
>= 2,000 x real time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SR = 16_000


def build(folder: Path, layers: int, tiny: bool) -> Path:
    import torch
    import transformers

    from affectstore.testing.models import CONV_KERNEL, CONV_STRIDE

    torch.manual_seed(0)
    hidden, heads, ffn, conv = (32, 2, 64, 16) if tiny else (1024, 16, 4096, 512)
    config = transformers.Wav2Vec2Config(
        hidden_size=hidden, num_hidden_layers=2 if tiny else layers, num_attention_heads=heads, intermediate_size=ffn,
        conv_dim=(conv,) * len(CONV_KERNEL), conv_kernel=CONV_KERNEL, conv_stride=CONV_STRIDE, conv_bias=True,
        feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=16 if tiny else 128,
        num_conv_pos_embedding_groups=2 if tiny else 16,
    )
    transformers.Wav2Vec2Model(config).eval().to(torch.float16).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True,
                                          return_attention_mask=True).save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--layers", type=int, default=24, help="24 (wav2vec2-large) or 12 (the audEERING model)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=8.0, help="mean clip length")
    parser.add_argument("--tiny", action="store_true", help="toy-size model: a smoke test that runs anywhere")
    args = parser.parse_args()

    import torch

    from affectstore.extract import create_extractor

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device. Use --device cpu --tiny for a smoke test.")
    if args.tiny:
        args.clips, args.seconds = min(args.clips, 16), min(args.seconds, 3.0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "w2v", args.layers, args.tiny)
        extractor = create_extractor("wav2vec2", model=str(folder), device=args.device, dtype=args.dtype,
                                     batch_size=args.batch_size).load()
        rng = np.random.default_rng(0)
        lengths = (args.seconds * SR * rng.uniform(0.75, 1.25, args.clips)).astype(int)
        clips = [(rng.standard_normal(n) * 0.1).astype(np.float32) for n in lengths]
        extractor.extract_batch(clips[: args.batch_size])  # warm-up: kernels, allocator
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        results = extractor.extract_batch(clips)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        audio = float(lengths.sum()) / SR
        frames = sum(r["wav2vec2"].values.shape[0] for r in results)
        report = {
            "device": torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "cpu",
            "model": "tiny" if args.tiny else f"wav2vec2-large, {args.layers} layers, hidden 1024 (random weights)",
            "dtype": args.dtype, "batch_size": args.batch_size, "clips": args.clips, "audio_s": round(audio, 1),
            "frames": frames, "seconds": round(seconds, 3), "x_real_time": round(audio / seconds, 1),
            "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if args.device.startswith("cuda") else None,
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
