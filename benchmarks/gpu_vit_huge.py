"""ViT-Huge face embeddings through the ``hf-image`` extractor on CUDA: faces per second and GPU utilisation.

    .venv/bin/python benchmarks/gpu_vit_huge.py [--batch-size 128] [--faces 4096] [--dtype float16]
    .venv/bin/python benchmarks/gpu_vit_huge.py --device cpu --tiny      # smoke test, no GPU needed

Builds ``google/vit-huge-patch14-224-in21k``'s architecture from a config with random
weights (hidden 1280, 32 layers, 16 heads, patch 14, 224 px), saves it with its image
processor and loads it through the extractor (fp16 compute on CUDA), so the figure includes
Pillow preprocessing, the host-to-device copy and mean pooling. Faces are random 112-160 px
crops. GPU utilisation is sampled with ``nvidia-smi`` every 0.2 s during the timed run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(folder: Path, tiny: bool) -> Path:
    import torch
    import transformers

    torch.manual_seed(0)
    hidden, layers, heads, size, patch = (32, 2, 2, 32, 8) if tiny else (1280, 32, 16, 224, 14)
    config = transformers.ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                    intermediate_size=4 * hidden, image_size=size, patch_size=patch)
    transformers.ViTModel(config).eval().to(torch.float16).save_pretrained(folder)
    processor = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor
    processor(size={"height": size, "width": size}).save_pretrained(folder)
    return folder


def sample_utilisation(stop: threading.Event, samples: list[float], device: int) -> None:
    while not stop.is_set():
        try:
            out = subprocess.run(["nvidia-smi", f"--id={device}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5, check=False)
            samples.append(float(out.stdout.strip().splitlines()[0]))
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return
        stop.wait(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--faces", type=int, default=4096)
    parser.add_argument("--tiny", action="store_true", help="toy-size model: a smoke test that runs anywhere")
    args = parser.parse_args()

    import torch

    from affectstore.extract import create_extractor
    from affectstore.extract.images import ImageBatch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device. Use --device cpu --tiny for a smoke test.")
    if args.tiny:
        args.faces = min(args.faces, 64)
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in rng.integers(112, 161, args.faces)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "vit", args.tiny)
        extractor = create_extractor("vit-huge", model=str(folder), device=args.device, dtype=args.dtype,
                                     batch_size=args.batch_size).load()
        warm = faces[: args.batch_size]
        extractor.extract(ImageBatch(np.zeros(len(warm)), warm))  # warm-up: kernels, allocator
        samples: list[float] = []
        stop = threading.Event()
        sampler = None
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
            index = torch.device(args.device).index or 0
            sampler = threading.Thread(target=sample_utilisation, args=(stop, samples, index), daemon=True)
            sampler.start()
        start = time.perf_counter()
        out = extractor.extract(ImageBatch(np.arange(args.faces, dtype=np.float64), faces))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        stop.set()
        if sampler is not None:
            sampler.join()
        print(json.dumps({
            "device": torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "cpu",
            "model": "tiny" if args.tiny else "ViT-Huge/14 (random weights, 632M parameters)",
            "dtype": args.dtype, "batch_size": args.batch_size, "faces": args.faces, "dim": int(out["vit-huge"].values.shape[1]),
            "seconds": round(seconds, 3), "faces_per_s": round(args.faces / seconds, 1),
            "gpu_util_median_pct": statistics.median(samples) if samples else None,
            "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if args.device.startswith("cuda") else None,
        }, indent=2))


if __name__ == "__main__":
    main()
