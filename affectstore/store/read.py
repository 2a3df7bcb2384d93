"""Reading complete videos out of a feature set, every chunk checked on the way.

Missing, truncated or mismatching chunks raise `DamagedStoreError` naming the dataset,
feature, video and file; Zarr alone would return zeros for a missing chunk. Bulk loads
read a current pack when most of a feature is asked for, else the videos (straight from
their chunk files on a local disk, see rawio.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np

from affectstore.store import chunks, rawio
from affectstore.store.chunks import DamagedChunk
from affectstore.store.errors import StoreError, UnknownVideoError
from affectstore.store.keys import decode_key, encode_id
from affectstore.store.records import FeatureTable, TextSegments, VideoArrays

if TYPE_CHECKING:
    from affectstore.store.store import FeatureStore


def read_video(store: "FeatureStore", dataset: str, feature: str, video_id: str) -> VideoArrays | TextSegments:
    """One complete video's arrays (`VideoArrays`, or `TextSegments` for text features).

    Refuses a chunk that is missing, has the wrong size for its shape or fails its checksum.
    """
    prov = store.provenance(dataset, feature)
    key = encode_id(video_id)
    where = f"{dataset}/{feature} video {video_id!r}"
    mark = store.get_json(f"{dataset}/{feature}/done/{key}/zarr.json", where)
    if mark is None:
        raise UnknownVideoError(
            f"Video {video_id!r} is not complete in {dataset}/{feature} "
            f"({len(store.done_keys(dataset, feature))} complete videos; list them with `affect store ls`)."
        )
    names = ("start", "end", "text") if prov["kind"] == "text" else ("values", "times")
    arrays = read_arrays(store, f"{dataset}/{feature}/videos/{key}", names, where)
    frames = mark.get("attributes", {}).get("frames")
    if prov["kind"] == "text":
        return TextSegments(arrays["start"], arrays["end"], [str(t) for t in arrays["text"]])
    values, times = arrays["values"], arrays["times"]
    if values.ndim != 2 or values.shape[1] != prov["dim"] or times.shape != (len(values),) or (
        frames is not None and len(values) != frames
    ):
        raise store.damaged(where, DamagedChunk(
            f"{dataset}/{feature}/videos/{key}",
            f"arrays of shape {values.shape} and {times.shape} do not match the mark ({frames} frames of dim {prov['dim']})",
        ))
    return VideoArrays(values, times)


def read_arrays(store: "FeatureStore", path: str, names: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    """The arrays ``names`` of the group at ``path``, each checked (``where`` names the video in errors)."""
    out = {}
    for name in names:
        array = store.node(f"{path}/{name}", where)
        if array is None:
            raise store.damaged(where, DamagedChunk(f"{path}/{name}", "array is missing"))
        try:
            out[name] = chunks.read_array(array, store.get_bytes)
        except DamagedChunk as damage:
            raise store.damaged(where, damage) from None
    return out


def load_feature(
    store: "FeatureStore", dataset: str, feature: str, ids: Iterable[str] | None = None, *, pack: bool | None = None
) -> FeatureTable:
    """Many complete videos of one feature in one `FeatureTable` (see `FeatureStore.load_feature`)."""
    from affectstore.store import pack as packing

    prov = store.provenance(dataset, feature)
    if prov["kind"] == "text":
        raise StoreError(f"{dataset}/{feature} is a text feature; read its segments with read_video().")
    done = store.done_keys(dataset, feature)
    if ids is None:
        keys = done
    else:
        keys = [encode_id(v) for v in ids]
        missing = sorted(set(keys) - set(done))
        if missing:
            names = [decode_key(k) or k for k in missing[:5]]
            raise UnknownVideoError(
                f"{len(missing)} requested videos are not complete in {dataset}/{feature}, e.g. {names}. "
                f"{len(done)} videos are complete; extract the missing ones first."
            )
    video_ids = store.key_ids(dataset, feature, keys, "done")
    dtype = np.dtype(prov["dtype"])
    dim = prov["dim"]
    # A pack is read whole: worth it for most of a feature, not for a small subset.
    if pack is not False and (pack or 2 * len(keys) >= len(done)):
        name = packing.current_pack(store, dataset, feature, done)
        if name is None and pack is None and not store.read_only and not store.is_zip and done:
            name = packing.build_pack(store, dataset, feature, done)
        if name is not None:
            table = packing.read_pack(store, dataset, feature, name, keys, video_ids, dtype, dim)
            if table is not None:
                return table
    values, times, offsets = read_videos(store, dataset, feature, keys, dtype, dim)
    return FeatureTable(video_ids, values, times, offsets)


def read_videos(store: "FeatureStore", dataset: str, feature: str, keys: list[str], dtype: np.dtype, dim: int):
    """(values, times, offsets) of the videos `keys`, concatenated, each chunk checked."""
    base = f"{dataset}/{feature}/videos"
    layout = store.feature_meta(dataset, feature).get("layout")
    checksum = store.checksummed(dataset, feature)

    def read(key: str) -> tuple[np.ndarray, np.ndarray]:
        arrays = read_arrays(store, f"{base}/{key}", ("values", "times"), where_of(dataset, feature, key))
        return arrays["values"], arrays["times"]

    if store.local_root is not None and layout in (chunks.LAYOUT, chunks.LAYOUT_UNCHECKED):
        try:
            return rawio.read_raw_videos([store.local_root / base / k for k in keys], dtype, dim, checksum, read)
        except rawio.RawDamage as damage:
            key = keys[damage.index]
            rel = f"{base}/{key}/{damage.name}"
            raise store.damaged(where_of(dataset, feature, key), DamagedChunk(rel, damage.problem)) from None
    return _concat([read(k) for k in keys], dtype, dim)


def where_of(dataset: str, feature: str, key: str) -> str:
    """How errors name video ``key`` of ``dataset/feature``."""
    return f"{dataset}/{feature} video {decode_key(key) or key!r}"


def _concat(parts: list[tuple[np.ndarray, np.ndarray]], dtype: np.dtype, dim: int):
    lengths = np.array([len(t) for _, t in parts], dtype=np.int64)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.empty((int(offsets[-1]), dim), dtype=dtype)
    times = np.empty(int(offsets[-1]), dtype=np.float64)
    for i, (v, t) in enumerate(parts):
        values[offsets[i] : offsets[i + 1]] = v
        times[offsets[i] : offsets[i + 1]] = t
    return values, times, offsets
