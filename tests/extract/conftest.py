"""Fixtures of the runner tests: tiny random speech models and small generated clip datasets."""

import csv
from pathlib import Path

import numpy as np
import pytest

SR = 16_000


def speechlike(n_samples: int, seed: int) -> np.ndarray:
    """Noise with a slow loudness contour, so frames differ from their neighbours."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SR
    return (rng.standard_normal(n_samples) * 0.1 * (1.2 + np.sin(2 * np.pi * 0.7 * t + seed))).astype(np.float32)


def write_clips(root: Path, durations, exts=(".wav",), seed: int = 0) -> list[str]:
    """A clips dataset (labels.csv + media) of speech-like clips with the given durations; returns the ids."""
    from affectstore.testing.datasets import make_media

    root.mkdir(parents=True, exist_ok=True)
    ids = []
    for k, duration in enumerate(durations):
        clip = f"spk{k % 2 + 1}/clip_{k:02d}{exts[k % len(exts)]}"
        make_media(root / clip, signal=speechlike(int(duration * SR), seed + k), sample_rate=SR, size=(32, 32), fps=5.0)
        ids.append(clip)
    with (root / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip", "emotion"])
        for k, clip in enumerate(ids):
            writer.writerow([clip, "happy" if k % 2 else "sad"])
    return ids


def add_rows(root: Path, clips) -> None:
    """Append rows for extra (e.g. broken) clips to labels.csv."""
    with (root / "labels.csv").open("a", newline="") as f:
        writer = csv.writer(f)
        for clip in clips:
            writer.writerow([clip, "sad"])


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Folders of tiny random wav2vec2, VAD and HuBERT checkpoints (real layouts, loaded offline)."""
    pytest.importorskip("transformers")
    from affectstore.testing import models

    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "wav2vec2": str(models.build_wav2vec2(root / "wav2vec2")),
        "vad": str(models.build_vad(root / "vad")),
        "hubert": str(models.build_hubert(root / "hubert")),
    }


@pytest.fixture(scope="session")
def speech_settings(tiny_models):
    """Runner settings pointing the three speech extractors at the tiny models."""
    return {name: {"model": folder} for name, folder in tiny_models.items()}


@pytest.fixture(scope="session")
def clip_tools():
    """The helpers above, for test modules (importlib mode does not import conftest by name)."""
    return write_clips, add_rows, speechlike
