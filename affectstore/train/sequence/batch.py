"""A task's `Batch` for sequence estimators: labels as for row estimators, features as a `SequenceView`.

Video level: one item per video. Frame level: one item per label frame (the frames and times
the dataset adapter gives, as `affectstore.train.data.load_frame_data` lists them); the
estimator cuts windows around each frame's time. Nothing is aligned or pooled: ``Batch.X``
stays empty and ``Batch.sequences`` holds the view.
"""

from __future__ import annotations

import logging

import numpy as np

from affectstore.train.data import label_frames
from affectstore.train.errors import TrainError
from affectstore.train.labels import encode_labels, video_level_labels
from affectstore.train.pipeline import Batch
from affectstore.train.sequence.view import SequenceView, VideoSource

logger = logging.getLogger(__name__)


def build_sequence_batch(store, dataset: str, adapter, spec, recipe: dict, infos: dict, ids, labelled: bool) -> Batch:
    """Labels (when ``labelled``) and the sequence view of ``ids``, labels encoded as for row batches."""
    for section in ("video_filter", "override"):
        if recipe.get(section) is not None:
            raise TrainError(
                f"[{section}] works on row features; estimator {recipe['estimator']!r} reads sequences. "
                f"Drop [{section}] from the recipe or use a row estimator such as 'mlp'."
            )
    ids = list(ids)
    feats = {f: infos[f] for f in recipe["features"]}
    source = VideoSource(store, dataset, feats, ids)
    for f, have in source.present.items():
        if len(have) < len(ids):
            logger.warning("%s/%s: %d of %d videos have no features; the model sees that modality as missing.",
                           dataset, f, len(ids) - len(have), len(ids))
    if spec.level == "video":
        y = None
        valid = np.zeros(len(ids), dtype=bool)
        if labelled:
            y, valid = video_level_labels(adapter, spec, ids)
        return Batch("video", ids, np.asarray(ids, dtype=object), {}, {}, y, valid,
                     sequences=SequenceView(source, ids))
    first_frame = 1 if spec.dataset == "affwild2" else None
    parts = [label_frames(adapter, v, labelled, first_frame) for v in ids]
    groups = np.concatenate([np.full(len(p[0]), v, dtype=object) for v, p in zip(ids, parts)]) if parts else \
        np.zeros(0, dtype=object)
    frames = np.concatenate([p[0] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    times = np.concatenate([p[1] for p in parts]).astype(np.float64) if parts else np.zeros(0)
    ok = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, bool)
    y = None
    valid = np.zeros(len(frames), dtype=bool)
    if labelled:
        y, good = encode_labels(spec, np.concatenate([p[2] for p in parts]), adapter.task.target_names)
        valid = good & ok
    return Batch("frame", ids, groups, {}, {}, y, valid, frames=frames,
                 sequences=SequenceView(source, groups, times, frames))
