"""The built-in demo: generated clips -> eGeMAPS features in a store -> a trained clip classifier.

It needs no dataset and no model hub: the clips are generated (tones whose loudness
follows the label, spoken by several "speakers"), and eGeMAPS comes from openSMILE,
which ships inside its PyPI package. Every step is the one a researcher runs on real
data (`affect extract`, `affect train`, `affect store info`).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """Where the demo wrote its dataset, store and run, and the scores it got."""

    dataset_root: Path
    store: Path
    run_dir: Path
    summary: str
    info: str
    metrics: dict


def run_demo(out: str | Path = "runs/demo", n_per_class: int = 8, n_speakers: int = 4, progress: bool = True) -> DemoResult:
    """Build the demo dataset under `out`, extract eGeMAPS into `out`/store.zarr and train `clips` on it."""
    from affectstore.extract.runner import extract_command
    from affectstore.store import FeatureStore
    from affectstore.store.inspect import store_info
    from affectstore.testing.datasets import make_clips_dataset
    from affectstore.train.run import train_task

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)  # the demo is regenerated from scratch, so a rerun shows the same thing
    root = out / "clips"
    store = out / "store.zarr"
    logger.info("Generating %d clips in %s", 2 * n_per_class, root)
    make_clips_dataset(
        root, classes=("calm", "excited"), n_per_class=n_per_class, n_speakers=n_speakers,
        extensions=(".wav", ".mp4", ".mp3", ".flac"), duration=1.5, with_split=False, plant=True,
    )
    summary = extract_command("clips", str(root), features="egemaps", store=str(store), progress=progress)
    result = train_task(
        "clips", str(store), features="egemaps", out=out / "run", cv=n_speakers, data_root=str(root),
        overrides={"targets": ["emotion"], "adapter": {"group_column": "speaker"}, "estimator": "logreg"},
    )
    info = store_info(FeatureStore.open(store))
    return DemoResult(root, store, result.run_dir, summary.text(), info, result.metrics)
