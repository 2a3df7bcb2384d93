"""Fixtures of the runner tests: tiny random speech models and small generated clip datasets."""

import csv
import os
import signal
import subprocess
import sys
import time
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


def affect_command(*args: str) -> list[str]:
    """The `affect` command line run by this interpreter."""
    return [sys.executable, "-c", "from affectstore.cli import app; app(prog_name='affect')", *args]


def kill_after_marks(command: list[str], done_folder: Path, marks: int, timeout: float = 120.0) -> None:
    """Start ``command`` and SIGKILL it once ``done_folder`` holds ``marks`` completion marks."""
    process = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not (done_folder.is_dir() and sum(1 for _ in done_folder.iterdir()) >= marks):
            if process.poll() is not None:
                pytest.fail(f"the run ended (rc {process.returncode}) before the kill: {process.stderr.read()[-2000:]!r}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {marks} videos completed within {timeout:g} s")
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="session")
def killer():
    """(affect_command, kill_after_marks) for test modules (importlib mode does not import conftest by name)."""
    return affect_command, kill_after_marks
