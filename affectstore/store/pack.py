"""Packed copies of a feature set: every complete video concatenated, for fast bulk reads.

A pack lives in ``<dataset>/<feature>/packed/<fingerprint>-<suffix>/`` with arrays
``values`` (N x D, chunked by rows, ~16 MiB a chunk), ``times`` (N), ``offsets`` (videos + 1)
and ``keys``; its group attributes say ``complete`` only once every array is written, and
record each file's size and CRC-32C. The fingerprint names the complete set it copies, so
a pack goes stale by itself when a video is added. Several processes may pack at once:
each writes its own folder (the random suffix), and one that sees the complete set change
while it packs drops its pack instead of marking it complete.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from typing import TYPE_CHECKING

import numpy as np

from affectstore.store import chunks, rawio
from affectstore.store.chunks import DamagedChunk
from affectstore.store.errors import DamagedStoreError
from affectstore.store.records import FeatureTable, now

if TYPE_CHECKING:
    from affectstore.store.store import FeatureStore

logger = logging.getLogger(__name__)

# Rows per chunk of a packed array: about 16 MiB per chunk for 1024-d float16.
PACK_CHUNK_BYTES = 16 << 20


def fingerprint(done_keys: list[str]) -> str:
    """Name of a complete set of videos: its size and a hash of its sorted keys."""
    digest = hashlib.sha256("\n".join(done_keys).encode("utf-8")).hexdigest()[:16]
    return f"n{len(done_keys)}x{digest}"


def rows_per_chunk(n_rows: int, row_bytes: int) -> int:
    """Rows per chunk of a packed array: chunks of at most ~16 MiB, split evenly.

    Zarr stores an edge chunk full-size; even chunks keep that padding under one row per
    chunk, so a pack takes the bytes of its data (12 x 88 floats is one 4 KiB chunk, not
    16 MiB; 17 MiB is two 8.5 MiB chunks, not 32 MiB).
    """
    n_rows = max(1, n_rows)
    n_chunks = max(1, -(-n_rows * row_bytes // PACK_CHUNK_BYTES))
    return -(-n_rows // n_chunks)


def current_pack(store: "FeatureStore", dataset: str, feature: str, done: list[str]) -> str | None:
    """Name of a complete pack of exactly the videos ``done``, None when there is none."""
    want = fingerprint(done)
    for name in sorted(store.list_names(f"{dataset}/{feature}/packed")):
        if name.split("-")[0] != want:
            continue
        try:
            doc = store.get_json(f"{dataset}/{feature}/packed/{name}/zarr.json")
        except DamagedStoreError:
            continue  # verify reports it; reading falls back to the videos
        if doc and doc.get("attributes", {}).get("complete"):
            return name
    return None


def build_pack(store: "FeatureStore", dataset: str, feature: str, done: list[str]) -> str | None:
    """Pack the videos ``done``; returns the pack's name, or None when the complete set changed meanwhile."""
    prov = store.provenance(dataset, feature)
    dtype, dim = np.dtype(prov["dtype"]), prov["dim"]
    checksum = store.checksummed(dataset, feature)
    base = f"{dataset}/{feature}"
    started = time.time()
    logger.info("Packing %d videos of %s/%s for fast reading", len(done), dataset, feature)
    values, times, offsets = store.read_videos(dataset, feature, done, dtype, dim)
    # A unique suffix lets two processes pack at once without writing the same chunks.
    name = f"{fingerprint(done)}-{uuid.uuid4().hex[:8]}"
    prefix = f"{base}/packed/{name}"
    rows = rows_per_chunk(len(values), dim * dtype.itemsize)
    _put(store, f"{base}/packed/zarr.json", chunks.group_doc({}), only_new=True)
    _put(store, f"{prefix}/zarr.json", chunks.group_doc({"complete": False, "created": now()}))
    sums: dict[str, list[int]] = {}
    # Dimension names and attributes so that xarray opens a pack as a table of rows.
    arrays = [
        ("values", values, rows, ("row", "column"), {"coordinates": "times"}),
        ("times", times, None, ("row",), {"units": "s", "long_name": "seconds from the start of each row's video"}),
        ("offsets", offsets, None, ("video_edge",), {"long_name": "rows offsets[i]:offsets[i+1] are video keys[i]"}),
    ]
    files = []
    for array_name, data, chunk_rows, dims, attrs in arrays:
        files.extend(chunks.array_files(f"{prefix}/{array_name}", data, checksum, chunk_rows, dims, attrs))
    columns = prov.get("columns")
    if columns and len(columns) == dim:
        files.extend(chunks.string_array_files(f"{prefix}/column", tuple(str(c) for c in columns), checksum, ("column",)))
    files.extend(chunks.string_array_files(f"{prefix}/keys", tuple(done), checksum, ("video",)))
    for key, data_bytes in files:
        _put(store, key, data_bytes)
        sums[key[len(prefix) + 1 :]] = chunks.file_sum(data_bytes)
    if _changed_since(store, dataset, feature, done, started):
        logger.info("not marking pack %s of %s complete: videos changed while packing", name, base)
        store.delete_dir(prefix)
        return None
    attrs = chunks.seal({"complete": True, "n_videos": len(done), "rows_per_chunk": rows, "created": now(), "files": sums})
    _put(store, f"{prefix}/zarr.json", chunks.group_doc(attrs), atomic=True)
    # Drop finished packs of an older complete set only: a pack still being built by another
    # process, or one of the same set that a reader may hold, is left alone.
    for other, info in store.packs(dataset, feature).items():
        if other != name and info.get("complete") and not other.startswith(fingerprint(done)):
            store.delete_dir(f"{base}/packed/{other}")
    return name


def read_pack(
    store: "FeatureStore", dataset: str, feature: str, name: str, keys: list[str], video_ids: list[str],
    dtype: np.dtype, dim: int,
) -> FeatureTable | None:
    """The videos ``keys`` from pack ``name``; None when the pack vanished meanwhile (another process dropped it)."""

    prefix = f"{dataset}/{feature}/packed/{name}"
    where = f"{dataset}/{feature} pack {name}"
    try:
        group = store.node(prefix, where)
        if group is None:
            return None
        arrays = {}
        for array_name in ("offsets", "times", "keys", "values"):
            arrays[array_name] = store.node(f"{prefix}/{array_name}", where)
            if arrays[array_name] is None:
                raise DamagedChunk(f"{prefix}/{array_name}", "the pack lacks this array")
        offsets_all = chunks.read_array(arrays["offsets"], store.get_bytes)
        times_all = chunks.read_array(arrays["times"], store.get_bytes)
        packed_keys = [str(k) for k in chunks.read_array(arrays["keys"], store.get_bytes)]
        values_all = None
        if store.local_root is not None:
            values_all = rawio.read_raw_chunked(store.local_root / prefix / "values", arrays["values"], dtype, dim)
        if values_all is None:
            values_all = chunks.read_array(arrays["values"], store.get_bytes, store.storage.get_many)
    except (DamagedChunk, FileNotFoundError) as damage:
        if store.get_bytes(f"{prefix}/zarr.json") is None:
            return None  # dropped by a writer while we read: the caller reads the videos instead
        if isinstance(damage, FileNotFoundError):
            damage = DamagedChunk(prefix, f"a file vanished while reading ({damage})")
        raise store.damaged(where, damage) from None
    if len(offsets_all) != len(packed_keys) + 1 or offsets_all[-1] != len(values_all) or len(times_all) != len(values_all):
        raise store.damaged(where, DamagedChunk(prefix, "its offsets, times, keys and values do not agree in length"))
    if keys == packed_keys:
        return FeatureTable(video_ids, values_all, times_all, offsets_all)
    pos = {k: i for i, k in enumerate(packed_keys)}
    idx = np.array([pos[k] for k in keys], dtype=np.int64)
    starts, ends = offsets_all[idx], offsets_all[idx + 1]
    lengths = ends - starts
    offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(keys) else np.zeros(0, np.int64)
    return FeatureTable(video_ids, values_all[rows], times_all[rows], offsets)


def _changed_since(store: "FeatureStore", dataset: str, feature: str, done: list[str], started: float) -> bool:
    """True when the complete set differs from ``done``, or (locally) a mark was rewritten after ``started``."""
    if store.done_keys(dataset, feature) != done:
        return True
    root = store.local_root
    if root is None:
        return False
    folder = root / dataset / feature / "done"
    for key in done:
        try:
            if (folder / key / "zarr.json").stat().st_mtime >= started:
                return True
        except FileNotFoundError:
            return True
    return False


def _put(store: "FeatureStore", key: str, data: bytes, *, only_new: bool = False, atomic: bool = False) -> None:
    store.storage.put(key, data, only_new=only_new, atomic=atomic)
