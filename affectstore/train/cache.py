"""A cache of pooled video-level features, so a second run (or a sweep) does not read the store again.

Pooling a feature reads every frame of every video (at EMI scale, 12 GB for three features
and most of a training run's time). The pooled rows are small (one per video), so they are
kept as ``.npz`` files (numpy arrays only; loaded with ``allow_pickle=False``) in a cache
folder:

- ``$AFFECTSTORE_CACHE/pooled`` when that variable is set;
- ``<store>.cache/pooled`` next to a local folder store;
- ``~/.cache/affectstore/pooled`` for remote or read-only stores.

A file is keyed by the store's absolute location, the dataset, the feature name, its
config hash, the pooling and the list of complete videos: re-extracting the feature with
another config, choosing another pooling or completing more videos gives a new key, so a
stale file is never read (old files are simply left behind; delete the folder to reclaim
the space). Set ``AFFECTSTORE_CACHE=off`` to read the store every time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from affectstore.train.data import FeatureInfo, load_video_features

logger = logging.getLogger(__name__)

ENV = "AFFECTSTORE_CACHE"
_warned: set[str] = set()


def cache_folder(store) -> Path | None:
    """Where pooled features of ``store`` are cached; None when caching is off."""
    env = os.environ.get(ENV)
    if env is not None and env.strip().lower() in ("off", "0", "no", "false", ""):
        return None
    if env:
        return Path(env) / "pooled"
    loc = str(getattr(store, "location", ""))
    local = Path(loc) if loc and "://" not in loc else None
    if local is not None and local.is_dir() and os.access(local.parent, os.W_OK):
        return local.parent / f"{local.name}.cache" / "pooled"
    return Path.home() / ".cache" / "affectstore" / "pooled"


def cache_key(store, dataset: str, info: FeatureInfo, pooling: str, complete: list[str]) -> str:
    """Hash of everything the pooled rows depend on."""
    loc = str(getattr(store, "location", ""))
    if loc and "://" not in loc:
        loc = str(Path(loc).resolve())
    ids_hash = hashlib.sha256("\n".join(complete).encode("utf-8")).hexdigest()
    doc = {"store": loc, "dataset": dataset, "feature": info.name, "config_hash": info.config_hash,
           "pooling": "mean" if info.kind == "video" else pooling, "dim": info.dim, "videos": ids_hash}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()[:24]


def cached_video_features(store, dataset: str, info: FeatureInfo, ids, pooling: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """`load_video_features` through the cache: the pooled rows of every complete video, read once."""
    folder = cache_folder(store)
    if folder is None:
        return load_video_features(store, dataset, info, ids, pooling)
    complete = sorted(store.completed(dataset, info.name))
    key = cache_key(store, dataset, info, pooling, complete)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in info.name)
    path = folder / f"{dataset}-{safe}-{pooling}-{key}.npz"
    ids = list(ids)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                cached_ids, X_all, present_all = list(z["ids"]), z["X"], z["present"]
            logger.debug("Pooled %s/%s (%s) read from the cache %s.", dataset, info.name, pooling, path)
            return _selected(dataset, info, cached_ids, X_all, present_all, ids)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("Pooled-feature cache file %s is unreadable (%s); reading the store instead.", path, exc)
    X_all, present_all = load_video_features(store, dataset, info, complete, pooling)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, ids=np.asarray(complete, dtype=str), X=X_all, present=present_all)
        os.replace(tmp, path)  # readers never see a half-written file
        logger.debug("Pooled %s/%s (%s) cached at %s.", dataset, info.name, pooling, path)
    except OSError as exc:
        if str(folder) not in _warned:
            _warned.add(str(folder))
            logger.warning("Cannot write the pooled-feature cache in %s (%s); set %s to a writable folder.", folder, exc, ENV)
    return _selected(dataset, info, complete, X_all, present_all, ids)


def _selected(dataset: str, info: FeatureInfo, have_ids: list[str], X_all: np.ndarray, present_all: np.ndarray,
              ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``ids`` (NaN and not present where the cache has none)."""
    pos = {v: i for i, v in enumerate(have_ids)}
    X = np.full((len(ids), X_all.shape[1]), np.nan, dtype=np.float32)
    present = np.zeros(len(ids), dtype=bool)
    rows = [(k, pos[v]) for k, v in enumerate(ids) if v in pos]
    if rows:
        dst, src = np.array(rows).T
        X[dst] = X_all[src]
        present[dst] = present_all[src]
    missing = int((~present).sum())
    if missing:
        logger.warning("%s/%s: %d of %d videos have no features (not extracted, failed or empty).",
                       dataset, info.name, missing, len(ids))
    return X, present
