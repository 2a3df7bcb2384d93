"""Pooling of ragged feature sequences into one vector per video.

``mean`` gives D values; ``meanstd`` 2·D: concat(mean, std) (the usual utterance-level
pooling of speech encoder states); ``stat`` gives 4·D: concat(mean, std, min, max) over time
(population std, ddof=0), the STAT pooling of the EmotiEffLib ABAW papers.

Empty sequences (T = 0, e.g. a video where no face was found) cannot be pooled.
``on_empty`` decides: ``"error"`` (default) raises and names the sequence (by its id
when ``ids`` are given), ``"zeros"`` pools it to zeros, and ``"flag"`` pools it to
zeros and appends one more column that is 1.0 for empty sequences and 0.0
otherwise, so a downstream model can tell "no data" from "all-zero features".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

logger = logging.getLogger(__name__)

#: pooling method -> output width in multiples of D
POOLED_WIDTH = {"mean": 1, "meanstd": 2, "stat": 4}
POOLING_METHODS = tuple(POOLED_WIDTH)
ON_EMPTY = ("error", "zeros", "flag")


def _as_sequences(X, ids) -> list[np.ndarray]:
    if isinstance(X, np.ndarray) and X.ndim == 3:
        return [x for x in X]
    if isinstance(X, np.ndarray) and X.dtype != object:
        raise ValueError(
            f"Pooling expects a list of (T_i, D) arrays or one (N, T, D) array. Got an array of shape {X.shape} instead."
        )
    seqs = []
    for i, x in enumerate(X):
        a = np.asarray(x)
        if a.ndim != 2:
            name = ids[i] if ids is not None else i
            raise ValueError(f"Sequence {name!r} must be a 2-D (T, D) array. Got shape {a.shape} instead.")
        seqs.append(a)
    return seqs


def _pool_one(x: np.ndarray, method: str, out: np.ndarray) -> None:
    # float64 accumulation: float32 sums over long sequences lose digits in the std.
    x64 = x.astype(np.float64, copy=False)
    mean = x64.mean(axis=0)
    if method == "mean":
        out[:] = mean
        return
    d = x.shape[1]
    out[:d] = mean
    out[d:2 * d] = np.sqrt(np.square(x64 - mean).mean(axis=0))
    if method == "meanstd":
        return
    out[2 * d:3 * d] = x.min(axis=0)
    out[3 * d:] = x.max(axis=0)


def pool_sequences(
    X: Sequence[np.ndarray] | np.ndarray,
    method: str = "stat",
    on_empty: str = "error",
    ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Pool each (T_i, D) sequence over time; returns an (N, D), (N, 2·D) or (N, 4·D) float array (+1 column for "flag")."""
    if method not in POOLING_METHODS:
        raise ValueError(f"method must be one of {POOLING_METHODS}. Got {method!r} instead.")
    if on_empty not in ON_EMPTY:
        raise ValueError(f"on_empty must be one of {ON_EMPTY}. Got {on_empty!r} instead.")
    seqs = _as_sequences(X, ids)
    if ids is not None and len(ids) != len(seqs):
        raise ValueError(f"ids must have one entry per sequence ({len(seqs)}). Got {len(ids)} instead.")
    if not seqs:
        raise ValueError("Cannot pool an empty list of sequences.")
    dims = {s.shape[1] for s in seqs}
    if len(dims) != 1:
        raise ValueError(f"All sequences must have the same feature dimension. Got dimensions {sorted(dims)} instead.")
    dim = dims.pop()
    lengths = np.array([s.shape[0] for s in seqs])
    empty = lengths == 0
    if empty.any() and on_empty == "error":
        bad = [ids[i] if ids is not None else int(i) for i in np.flatnonzero(empty)[:5]]
        raise ValueError(
            f"{int(empty.sum())} sequence(s) have no time steps, e.g. {bad}. "
            "Drop them, or pass on_empty='zeros' or 'flag' to pool them to zeros."
        )
    if empty.any():
        logger.warning("%d of %d sequences are empty; pooling them to zeros.", int(empty.sum()), len(seqs))

    dtype = np.result_type(*[s.dtype for s in seqs], np.float32)
    n_out = POOLED_WIDTH[method] * dim
    out = np.zeros((len(seqs), n_out), dtype=dtype)
    # A plain loop over videos: each (T_i, D) block stays in cache, which measured 10x faster
    # than one concatenated array with ufunc.reduceat (12,660 videos x ~35 x 768: 0.9 s vs 8.6 s).
    for i in np.flatnonzero(~empty):
        _pool_one(seqs[i], method, out[i])
    if on_empty == "flag":
        out = np.concatenate([out, empty[:, None].astype(dtype)], axis=1)
    return out


class SequencePooler(TransformerMixin, BaseEstimator):
    """Transformer: list of (T_i, D) sequences -> (N, D) ("mean") or (N, 4·D) ("stat") matrix.

    Parameters
    ----------
    method : "mean", "meanstd" (concat of mean, std) or "stat" (concat of mean, std, min, max).
    on_empty : "error", "zeros" or "flag" (see the module docstring).
    """

    def __init__(self, method: str = "stat", on_empty: str = "error"):
        self.method = method
        self.on_empty = on_empty

    def fit(self, X, y=None):
        """Record the feature dimension; pooling itself learns nothing."""
        seqs = _as_sequences(X, None)
        if not seqs:
            raise ValueError("Cannot fit SequencePooler on an empty list of sequences.")
        if self.method not in POOLING_METHODS:
            raise ValueError(f"method must be one of {POOLING_METHODS}. Got {self.method!r} instead.")
        if self.on_empty not in ON_EMPTY:
            raise ValueError(f"on_empty must be one of {ON_EMPTY}. Got {self.on_empty!r} instead.")
        self.n_features_in_ = int(seqs[0].shape[1])
        return self

    def transform(self, X, ids: Sequence[str] | None = None) -> np.ndarray:
        """Pool each sequence; ``ids`` only serve error messages."""
        check_is_fitted(self, "n_features_in_")
        seqs = _as_sequences(X, ids)
        if seqs and seqs[0].shape[1] != self.n_features_in_:
            raise ValueError(
                f"Sequences have {seqs[0].shape[1]} features, but SequencePooler was fitted with "
                f"{self.n_features_in_}."
            )
        return pool_sequences(seqs, self.method, self.on_empty, ids=ids)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names like ``mean_3``, ``std_3``, ``min_3``, ``max_3`` (and ``is_empty``)."""
        check_is_fitted(self, "n_features_in_")
        base = list(input_features) if input_features is not None else [str(i) for i in range(self.n_features_in_)]
        stats = ("mean",) if self.method == "mean" else ("mean", "std", "min", "max")
        names = [f"{s}_{b}" for s in stats for b in base]
        if self.on_empty == "flag":
            names.append("is_empty")
        return np.asarray(names, dtype=object)
