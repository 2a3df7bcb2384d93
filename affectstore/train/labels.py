"""Labels as the models want them: one encoding for row and sequence batches alike."""

from __future__ import annotations

import numpy as np

from affectstore.train.errors import TrainError
from affectstore.train.tasks import MULTILABEL, REGRESSION, TaskSpec


def encode_labels(spec: TaskSpec, values: np.ndarray, target_names) -> tuple[np.ndarray, np.ndarray]:
    """Labels as the model wants them, and which rows are valid."""
    if spec.target is not None:
        values = values[:, [list(target_names).index(spec.target)]]
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    valid = np.isfinite(values).all(axis=1)
    if spec.problem == REGRESSION:
        return values, valid
    if spec.problem == MULTILABEL:  # -1 marks an invalid frame
        valid &= (values >= 0).all(axis=1)
        return np.where(valid[:, None], values, 0).astype(np.int64), valid
    y = np.where(valid, values[:, 0], -1).astype(np.int64)
    return y, valid & (y >= 0)


def video_level_labels(adapter, spec: TaskSpec, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(y, valid) of video-level ``ids``; every id must have a label row."""
    vl = adapter.video_labels()
    rows = vl.as_dict()
    missing = [i for i in ids if i not in rows]
    if missing:
        raise TrainError(f"{len(missing)} videos have no labels, e.g. {missing[:3]}.")
    return encode_labels(spec, np.stack([rows[i] for i in ids]), vl.target_names)
