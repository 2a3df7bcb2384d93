"""Correlation losses for the torch models and their per-output weights.

``pearson``: ``1 - sum_i w_i r_i`` and ``ccc``: ``1 - sum_i w_i CCC_i`` over the output
columns of a batch. The weights come from `output_weights`: given weights normalised to
sum 1, or class counts inverted as in Savchenko 2025 (sec. 3.2), so the rarest output
weighs most.
"""

from __future__ import annotations

import numpy as np
import torch


def pearson_loss(pred: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``1 - sum_i w_i r_i``: Pearson's r of each output column over the batch, weighted."""
    pc = pred - pred.mean(dim=0)
    tc = target - target.mean(dim=0)
    # eps keeps the gradient finite when a batch column is constant.
    r = (pc * tc).sum(dim=0) / torch.sqrt((pc * pc).sum(dim=0) * (tc * tc).sum(dim=0) + 1e-8)
    return 1.0 - (w * r).sum()


def ccc_loss(pred: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``1 - sum_i w_i CCC_i``: the concordance of each output column over the batch, weighted."""
    mp, mt = pred.mean(dim=0), target.mean(dim=0)
    vp = ((pred - mp) ** 2).mean(dim=0)
    vt = ((target - mt) ** 2).mean(dim=0)
    cov = ((pred - mp) * (target - mt)).mean(dim=0)
    c = 2.0 * cov / (vp + vt + (mp - mt) ** 2 + 1e-8)
    return 1.0 - (w * c).sum()


def output_weights(n_outputs: int, weights=None, counts=None) -> np.ndarray:
    """Loss weights per output, summing to 1: ``weights`` normalised, or inverse ``counts`` normalised.

    >>> output_weights(6, counts=[1, 8, 4, 2, 8, 8]).round(3).tolist()
    [0.471, 0.059, 0.118, 0.235, 0.059, 0.059]
    """
    if weights is None and counts is None:
        return np.full(n_outputs, 1.0 / n_outputs)
    name, given = ("output_weights", weights) if counts is None else ("class_counts", counts)
    w = np.asarray(given, dtype=np.float64)
    if w.shape != (n_outputs,) or not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(f"{name} must hold {n_outputs} positive numbers (one per output). Got {given!r} instead.")
    if counts is not None:
        w = 1.0 / w  # rare outputs weigh more
    return w / w.sum()
