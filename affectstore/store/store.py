"""The feature store: per-video feature arrays of many datasets in one Zarr v3 hierarchy.

Layout (every node is a plain Zarr v3 group or array, readable by any Zarr client)::

    <dataset>/<feature>/                 group; attrs["affectstore"] = {"provenance": ..., "layout": ...}
        videos/<key>/values, times       one group per video (T x D, T); text: start, end, text
        done/<key>/                      completion mark, written after the video's arrays
        failed/<key>/                    failure record (stage, reason, time), kept apart
        packed/<fingerprint>/            concatenated copy of all complete videos, for bulk reads

`<key>` is the video id made safe by `keys.encode_id`. A video counts only once its
mark exists: a killed writer leaves arrays without a mark, which every reader ignores
and the next run overwrites. Each writer touches only its own video's keys, so any
number of processes may extract different videos of one feature at the same time.
Marks are tiny groups in one folder so that listing 15,000 complete videos is one
directory listing, not 15,000 metadata reads.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import numpy as np
import zarr
from zarr.core.buffer import cpu, default_buffer_prototype
from zarr.codecs import BytesCodec
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.core.dtype import get_data_type_from_native_dtype
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore, ZipStore

from affectstore.store import rawio
from affectstore.store.errors import (
    ArrayShapeError,
    ConfigMismatchError,
    NotAStoreError,
    StoreError,
    UnknownDatasetError,
    UnknownFeatureError,
    UnknownVideoError,
    unknown,
)
from affectstore.store.keys import decode_key, encode_id
from affectstore.store.provenance import complete_provenance, model_name

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_META = "affectstore"
# Single uncompressed chunk per video array: float features barely compress, and raw
# chunks can be read straight into a preallocated buffer (see rawio).
_LAYOUT = {"video_chunks": "single", "codec": "raw"}
# Rows per chunk of a packed array: about 16 MiB per chunk for 1024-d float16.
_PACK_CHUNK_BYTES = 16 << 20


@dataclass(frozen=True)
class VideoArrays:
    """One video's frames: `values` (T x D) and `times` (T, seconds from the video start)."""

    values: np.ndarray
    times: np.ndarray


@dataclass(frozen=True)
class TextSegments:
    """One video's transcript segments: `start`, `end` (seconds) and `text`, one entry per segment."""

    start: np.ndarray
    end: np.ndarray
    text: list[str]


@dataclass(frozen=True)
class Failure:
    """Why a video could not be extracted."""

    video_id: str
    stage: str
    reason: str
    time: str
    config_hash: str | None


@dataclass(frozen=True)
class FeatureSetInfo:
    """A feature set with its provenance and counts."""

    dataset: str
    feature: str
    provenance: dict[str, Any]
    n_complete: int
    n_failed: int


class FeatureTable:
    """All requested videos of one feature, concatenated: row block `offsets[i]:offsets[i+1]` is video `ids[i]`.

    Indexing by id returns views, so a 1.3 GB feature is held once in memory.
    """

    def __init__(self, ids: list[str], values: np.ndarray, times: np.ndarray, offsets: np.ndarray):
        self.ids = list(ids)
        self.values = values
        self.times = times
        self.offsets = offsets
        self._index = {vid: i for i, vid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __getitem__(self, video_id: str) -> VideoArrays:
        try:
            i = self._index[video_id]
        except KeyError:
            raise UnknownVideoError(f"Video {video_id!r} is not in this feature table ({len(self)} videos).") from None
        a, b = self.offsets[i], self.offsets[i + 1]
        return VideoArrays(self.values[a:b], self.times[a:b])

    @property
    def lengths(self) -> np.ndarray:
        """Number of frames of each video, in `ids` order."""
        return np.diff(self.offsets)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _open_backend(location: str | os.PathLike, read_only: bool, storage_options: dict | None):
    text = os.fspath(location)
    if "://" in text and not text.startswith("file://"):
        return FsspecStore.from_url(text, storage_options=storage_options, read_only=read_only)
    path = Path(text.removeprefix("file://"))
    if path.suffix == ".zip":
        if read_only and not path.is_file():
            raise NotAStoreError(f"No store at {text}: the file does not exist.")
        return ZipStore(path, mode="r" if read_only else "a")
    if read_only and not path.is_dir():
        raise NotAStoreError(
            f"No store at {text}: the folder does not exist. Check the path, or create a store with "
            "`affect extract ... --store PATH`."
        )
    return LocalStore(path, read_only=read_only)


class FeatureStore:
    """A Zarr v3 feature store at a local path, a `.zip` file or any fsspec URL.

    Open with `FeatureStore.open(location, mode="r")` to read, `mode="a"` to read and
    write (creating the store if needed).
    """

    def __init__(self, backend, root: zarr.Group, location: str):
        self._backend = backend
        self._root = root
        self.location = location
        self.read_only = backend.read_only

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        location: str | os.PathLike,
        mode: Literal["r", "a"] = "r",
        storage_options: dict | None = None,
    ) -> "FeatureStore":
        """Open the store at `location`; `mode="a"` creates it when missing."""
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' (read) or 'a' (read and write). Got {mode!r} instead.")
        backend = _open_backend(location, mode == "r", storage_options)
        text = os.fspath(location)
        try:
            root = zarr.open_group(backend, mode="r" if mode == "r" else "a")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError) as exc:
            raise NotAStoreError(f"{text} is not an affectstore store: it holds no Zarr v3 group ({exc}).") from exc
        meta = root.attrs.get(_META)
        if meta is None:
            if mode == "r" or any(True for _ in root.members(max_depth=0)):
                raise NotAStoreError(
                    f"{text} is a Zarr group but not an affectstore store (no '{_META}' attribute). "
                    "Point --store at a store made by affectstore."
                )
            root.attrs[_META] = {"format": FORMAT_VERSION}
        elif meta.get("format", 0) > FORMAT_VERSION:
            raise StoreError(
                f"{text} uses store format {meta.get('format')}, newer than this affectstore understands "
                f"({FORMAT_VERSION}). Upgrade affectstore."
            )
        return cls(backend, root, text)

    def __repr__(self) -> str:
        return f"FeatureStore({self.location!r}, read_only={self.read_only})"

    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"Store {self.location} is open read-only; open it with mode='a' to write.")

    # --------------------------------------------------------------- raw keys
    def _list(self, prefix: str) -> list[str]:
        """Names of the child nodes under `prefix` (its own metadata document left out)."""

        async def collect() -> list[str]:
            return [k async for k in self._backend.list_dir(prefix) if k != "zarr.json"]

        return sync(collect())

    def _get_json(self, key: str) -> dict | None:
        buf = sync(self._backend.get(key, prototype=default_buffer_prototype()))
        return None if buf is None else json.loads(buf.to_bytes())

    def _put_group(self, path: str, attributes: dict) -> None:
        """Write a group node in one atomic put (a mark or a failure record)."""
        sync(self._backend.set(f"{path}/zarr.json", _group_doc(attributes)))

    def _delete_dir(self, path: str) -> None:
        sync(self._backend.delete_dir(path))

    # ------------------------------------------------------------ navigation
    def datasets(self) -> list[str]:
        """Names of the datasets in the store."""
        return sorted(name for name, _ in self._root.groups())

    def features(self, dataset: str) -> list[str]:
        """Names of the feature sets of `dataset`."""
        return sorted(name for name, _ in self._dataset_group(dataset).groups())

    def _dataset_group(self, dataset: str) -> zarr.Group:
        try:
            node = self._root[dataset]
        except KeyError:
            raise UnknownDatasetError(unknown("dataset", dataset, self.datasets(), f"store {self.location}")) from None
        return node

    def _feature_group(self, dataset: str, feature: str) -> zarr.Group:
        group = self._dataset_group(dataset)
        try:
            node = group[feature]
        except KeyError:
            raise UnknownFeatureError(
                unknown("feature", feature, self.features(dataset), f"dataset {dataset!r} of store {self.location}")
            ) from None
        if _META not in node.attrs:
            raise StoreError(f"{dataset}/{feature} in {self.location} is not a feature set (no provenance).")
        return node

    def provenance(self, dataset: str, feature: str) -> dict[str, Any]:
        """The provenance recorded when the feature set was created."""
        return self._feature_meta(dataset, feature)["provenance"]

    def _feature_meta(self, dataset: str, feature: str) -> dict[str, Any]:
        # One small read, not a group open: writers check it before every video.
        doc = self._get_json(f"{dataset}/{feature}/zarr.json") if "/" not in dataset + feature else None
        meta = (doc or {}).get("attributes", {}).get(_META)
        if meta is None:
            meta = self._feature_group(dataset, feature).attrs[_META]  # raises the helpful error
        return dict(meta)

    def feature_sets(self) -> list[FeatureSetInfo]:
        """Every feature set of every dataset, with provenance and counts of complete and failed videos."""
        out = []
        for dataset in self.datasets():
            for feature in self.features(dataset):
                out.append(
                    FeatureSetInfo(
                        dataset,
                        feature,
                        self.provenance(dataset, feature),
                        len(self._done_keys(dataset, feature)),
                        len(self._list(f"{dataset}/{feature}/failed")),
                    )
                )
        return out

    # ------------------------------------------------------------- creating
    def create_feature(self, dataset: str, feature: str, provenance: dict[str, Any]) -> dict[str, Any]:
        """Create feature set `dataset/feature`, or check that the existing one has the same config hash.

        Returns the stored provenance. Raises ConfigMismatchError when the feature set
        exists with another config hash: old and new arrays are never mixed.
        """
        self._require_writable()
        for kind, name in (("dataset", dataset), ("feature", feature)):
            if not name or "/" in name or name.startswith((".", "__")):
                raise ValueError(
                    f"A {kind} name must be non-empty, without '/', not starting with '.' or '__'. Got {name!r} instead."
                )
        prov = complete_provenance(provenance)
        path = f"{dataset}/{feature}"
        doc = self._get_json(f"{path}/zarr.json")
        if doc is None:
            # Several writers may start at once (SLURM array): every step is idempotent, and the
            # feature group appears in one exclusive put that already holds its provenance.
            empty = _group_doc({})
            sync(self._backend.set_if_not_exists(f"{dataset}/zarr.json", empty))
            for sub in ("videos", "done", "failed", "packed"):
                sync(self._backend.set_if_not_exists(f"{path}/{sub}/zarr.json", empty))
            meta = {_META: {"provenance": prov, "layout": _LAYOUT}}
            sync(self._backend.set_if_not_exists(f"{path}/zarr.json", _group_doc(meta)))
            doc = self._get_json(f"{path}/zarr.json")
        meta = doc.get("attributes", {}).get(_META)
        if meta is None:
            raise StoreError(f"{path} in {self.location} is a Zarr group but not a feature set; pick another feature name.")
        existing = meta["provenance"]
        if existing["config_hash"] != prov["config_hash"]:
            raise ConfigMismatchError(_mismatch_message(dataset, feature, existing, prov["config_hash"]))
        return existing

    def delete_feature(self, dataset: str, feature: str) -> None:
        """Delete feature set `dataset/feature` with all its videos, marks, failures and packs."""
        self._require_writable()
        self._feature_group(dataset, feature)
        self._delete_dir(f"{dataset}/{feature}")

    def check_config(self, dataset: str, feature: str, config_hash: str) -> dict[str, Any]:
        """The stored provenance of `dataset/feature`; ConfigMismatchError when its config hash is not `config_hash`."""
        return self._check_hash(dataset, feature, config_hash)

    def _check_hash(self, dataset: str, feature: str, config_hash: str) -> dict[str, Any]:
        prov = self.provenance(dataset, feature)
        if prov["config_hash"] != config_hash:
            raise ConfigMismatchError(_mismatch_message(dataset, feature, prov, config_hash))
        return prov

    # -------------------------------------------------------------- writing
    def write_video(
        self,
        dataset: str,
        feature: str,
        video_id: str,
        values: np.ndarray,
        times: np.ndarray,
        *,
        config_hash: str,
    ) -> None:
        """Write one video's `values` (T x D) and `times` (T), then its completion mark.

        `config_hash` must equal the feature set's; values are cast to its dtype.
        """
        self._require_writable()
        prov = self._check_hash(dataset, feature, config_hash)
        if prov["kind"] == "text":
            raise ArrayShapeError(f"{dataset}/{feature} is a text feature; write it with write_text().")
        values, times = _validate_frames(values, times, prov, f"{dataset}/{feature} video {video_id!r}")
        base, key = f"{dataset}/{feature}", encode_id(video_id)
        if isinstance(self._backend, LocalStore):
            self._write_frames_local(base, key, video_id, values, times, config_hash)
        else:
            sync(self._awrite_frames(base, key, video_id, values, times, config_hash))

    def write_text(
        self,
        dataset: str,
        feature: str,
        video_id: str,
        start: Iterable[float],
        end: Iterable[float],
        text: Iterable[str],
        *,
        config_hash: str,
    ) -> None:
        """Write one video's transcript segments (`start`, `end` in seconds, `text`), then its completion mark."""
        self._require_writable()
        prov = self._check_hash(dataset, feature, config_hash)
        where = f"{dataset}/{feature} video {video_id!r}"
        if prov["kind"] != "text":
            raise ArrayShapeError(f"{where}: {prov['kind']} feature; write it with write_video().")
        start_a = np.asarray(start, dtype=np.float64).reshape(-1)
        end_a = np.asarray(end, dtype=np.float64).reshape(-1)
        texts = [str(t) for t in text]
        if not (len(start_a) == len(end_a) == len(texts)):
            raise ArrayShapeError(
                f"{where}: start, end and text must have one entry per segment. Got {len(start_a)}, {len(end_a)} and {len(texts)}."
            )
        if np.any(end_a < start_a):
            i = int(np.argmax(end_a < start_a))
            raise ArrayShapeError(f"{where}: segment {i} ends ({end_a[i]}) before it starts ({start_a[i]}).")
        key = encode_id(video_id)
        base = f"{dataset}/{feature}"
        sync(self._abegin_video(base, key))
        group = self._root[f"{base}/videos"].create_group(key, overwrite=True, attributes={"id": video_id})
        _raw_array(group, "start", start_a)
        _raw_array(group, "end", end_a)
        text_arr = group.create_array("text", shape=(len(texts),), chunks=(max(len(texts), 1),), dtype=str, compressors=None)
        if texts:
            text_arr[:] = np.array(texts, dtype=object)
        sync(self._afinish_video(base, key, video_id, config_hash, len(texts)))

    async def _abegin_video(self, base: str, key: str) -> None:
        b = self._backend
        if await b.exists(f"{base}/done/{key}/zarr.json"):
            # Re-writing a complete video: unmark it first so no reader trusts half-new arrays,
            # and drop packs, whose copy of it is now stale.
            await b.delete_dir(f"{base}/done/{key}")
            await b.delete_dir(f"{base}/packed")
        await b.delete_dir(f"{base}/videos/{key}")  # leftovers of a killed writer

    async def _afinish_video(self, base: str, key: str, video_id: str, config_hash: str, n: int) -> None:
        b = self._backend
        mark = {"id": video_id, "config_hash": config_hash, "frames": n, "time": _now()}
        await b.set(f"{base}/done/{key}/zarr.json", _group_doc(mark))
        if await b.exists(f"{base}/failed/{key}/zarr.json"):
            await b.delete_dir(f"{base}/failed/{key}")

    def _frame_docs(self, base: str, key: str, video_id: str, values: np.ndarray, times: np.ndarray) -> dict:
        prefix = f"{base}/videos/{key}"
        docs = {f"{prefix}/zarr.json": _group_doc({"id": video_id})}
        for name, data in (("values", values), ("times", times)):
            docs.update(_raw_array_docs(f"{prefix}/{name}", data))
        return docs

    def _write_frames_local(
        self, base: str, key: str, video_id: str, values: np.ndarray, times: np.ndarray, config_hash: str
    ) -> None:
        """The same keys and bytes as `_awrite_frames`, written with plain file calls: 6x faster on a local disk."""
        root = Path(self._backend.root)
        if (root / base / "done" / key / "zarr.json").exists():
            rawio.remove_tree(root / base / "packed")  # its copy of this video is about to be stale
        rawio.remove_tree(root / base / "done" / key)  # the mark, or what a killed writer left of it
        rawio.remove_tree(root / base / "videos" / key)
        # No temp-and-rename for the arrays: nothing reads them before the mark exists, and
        # the mark below is written atomically, last.
        made: set[Path] = set()
        for k, buf in self._frame_docs(base, key, video_id, values, times).items():
            path = root / k
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(buf.to_bytes())
        mark = {"id": video_id, "config_hash": config_hash, "frames": len(times), "time": _now()}
        rawio.write_atomic(root / base / "done" / key / "zarr.json", _group_doc(mark).to_bytes())
        rawio.remove_tree(root / base / "failed" / key)

    async def _awrite_frames(
        self, base: str, key: str, video_id: str, values: np.ndarray, times: np.ndarray, config_hash: str
    ) -> None:
        await self._abegin_video(base, key)
        docs = self._frame_docs(base, key, video_id, values, times)
        # Chunks and metadata of one video are independent keys: write them concurrently.
        await asyncio.gather(*(self._backend.set(k, v) for k, v in docs.items()))
        await self._afinish_video(base, key, video_id, config_hash, len(times))

    def record_failure(
        self, dataset: str, feature: str, video_id: str, stage: str, reason: str, *, config_hash: str | None = None
    ) -> None:
        """Record that `video_id` failed at `stage` (e.g. "decode", "model") for `reason`."""
        self._require_writable()
        self._feature_group(dataset, feature)
        self._put_group(
            f"{dataset}/{feature}/failed/{encode_id(video_id)}",
            {"id": video_id, "stage": stage, "reason": reason, "time": _now(), "config_hash": config_hash},
        )

    # -------------------------------------------------------------- status
    def _done_keys(self, dataset: str, feature: str) -> list[str]:
        keys = self._list(f"{dataset}/{feature}/done")
        if isinstance(self._backend, LocalStore):
            # A writer killed inside its mark's atomic write leaves the folder without zarr.json.
            folder = Path(self._backend.root) / dataset / feature / "done"
            keys = [k for k in keys if (folder / k / "zarr.json").is_file()]
        return sorted(keys)

    def _key_ids(self, dataset: str, feature: str, keys: list[str], folder: str) -> list[str]:
        ids = []
        for key in keys:
            vid = decode_key(key)
            if vid is None:  # hashed key of a very long id: the record holds the id
                vid = self._get_json(f"{dataset}/{feature}/{folder}/{key}/zarr.json")["attributes"]["id"]
            ids.append(vid)
        return ids

    def completed(self, dataset: str, feature: str) -> list[str]:
        """Ids of the videos of `dataset/feature` whose completion mark is written, sorted by key."""
        self._feature_group(dataset, feature)
        return self._key_ids(dataset, feature, self._done_keys(dataset, feature), "done")

    def failures(self, dataset: str, feature: str) -> list[Failure]:
        """Failure records of `dataset/feature` (videos that later succeeded are not listed)."""
        self._feature_group(dataset, feature)
        out = []
        for key in sorted(self._list(f"{dataset}/{feature}/failed")):
            doc = self._get_json(f"{dataset}/{feature}/failed/{key}/zarr.json")
            if doc is None:
                continue
            a = doc["attributes"]
            out.append(Failure(a["id"], a["stage"], a["reason"], a["time"], a.get("config_hash")))
        return out

    def is_done(self, dataset: str, feature: str, video_id: str, config_hash: str) -> bool:
        """True when `video_id` is complete in `dataset/feature` with exactly `config_hash`."""
        try:
            group = self._dataset_group(dataset)
        except UnknownDatasetError:
            return False
        if feature not in group:
            return False
        doc = self._get_json(f"{dataset}/{feature}/done/{encode_id(video_id)}/zarr.json")
        return doc is not None and doc["attributes"].get("config_hash") == config_hash

    # -------------------------------------------------------------- reading
    def read_video(self, dataset: str, feature: str, video_id: str) -> VideoArrays | TextSegments:
        """One complete video's arrays (`VideoArrays`, or `TextSegments` for text features)."""
        prov = self.provenance(dataset, feature)
        key = encode_id(video_id)
        if self._get_json(f"{dataset}/{feature}/done/{key}/zarr.json") is None:
            raise UnknownVideoError(
                f"Video {video_id!r} is not complete in {dataset}/{feature} "
                f"({len(self._done_keys(dataset, feature))} complete videos; list them with `affect store ls`)."
            )
        group = self._root[f"{dataset}/{feature}/videos/{key}"]
        if prov["kind"] == "text":
            return TextSegments(group["start"][:], group["end"][:], [str(t) for t in group["text"][:]])
        return VideoArrays(group["values"][:], group["times"][:])

    def load_feature(
        self, dataset: str, feature: str, ids: Iterable[str] | None = None, *, pack: bool | None = None
    ) -> FeatureTable:
        """Load many complete videos of one feature into one `FeatureTable`, fast.

        `ids` defaults to every complete video; asking for an incomplete one is an
        error naming it. Reads the packed copy when it is current; `pack=None` builds
        it when missing or stale and the store is writable, `pack=False` reads video by video.
        """
        prov = self.provenance(dataset, feature)
        if prov["kind"] == "text":
            raise StoreError(f"{dataset}/{feature} is a text feature; read its segments with read_video().")
        done = self._done_keys(dataset, feature)
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
        video_ids = self._key_ids(dataset, feature, keys, "done")
        dtype = np.dtype(prov["dtype"])
        dim = prov["dim"]
        # A pack is read whole: worth it for most of a feature, not for a small subset.
        if pack is not False and (pack or 2 * len(keys) >= len(done)):
            packed = self._current_pack(dataset, feature, done)
            if packed is None and pack is None and not self.read_only and done:
                packed = self._build_pack(dataset, feature, done, dtype, dim)
            if packed is not None:
                return self._read_from_pack(packed, keys, video_ids, dtype, dim)
        values, times, offsets = self._read_videos(dataset, feature, keys, dtype, dim)
        return FeatureTable(video_ids, values, times, offsets)

    def _read_videos(self, dataset: str, feature: str, keys: list[str], dtype: np.dtype, dim: int):
        base = f"{dataset}/{feature}/videos"
        layout = self._feature_meta(dataset, feature).get("layout")
        if isinstance(self._backend, LocalStore) and layout == _LAYOUT:
            root = Path(self._backend.root)
            return rawio.read_raw_videos([root / base / k for k in keys], dtype, dim, self._zarr_video_reader(base))
        parts = [self._zarr_video_reader(base)(k) for k in keys]
        return _concat(parts, dtype, dim)

    def _zarr_video_reader(self, base: str):
        def read(key: str) -> tuple[np.ndarray, np.ndarray]:
            group = self._root[f"{base}/{key}"]
            return group["values"][:], group["times"][:]

        return read

    # -------------------------------------------------------------- packing
    def pack(self, dataset: str, feature: str) -> str | None:
        """Build (or keep) the packed copy of every complete video; returns its name, None when no video is complete."""
        self._require_writable()
        prov = self.provenance(dataset, feature)
        if prov["kind"] == "text":
            return None
        done = self._done_keys(dataset, feature)
        if not done:
            return None
        current = self._current_pack(dataset, feature, done)
        if current is not None:
            return current.basename
        return self._build_pack(dataset, feature, done, np.dtype(prov["dtype"]), prov["dim"]).basename

    def _current_pack(self, dataset: str, feature: str, done: list[str]) -> zarr.Group | None:
        want = _fingerprint(done)
        group = self._root[f"{dataset}/{feature}"]
        if "packed" not in group:
            return None
        for name in self._list(f"{dataset}/{feature}/packed"):
            if name.split("-")[0] != want:
                continue
            doc = self._get_json(f"{dataset}/{feature}/packed/{name}/zarr.json")
            if doc and doc["attributes"].get("complete"):
                return self._root[f"{dataset}/{feature}/packed/{name}"]
        return None

    def _build_pack(self, dataset: str, feature: str, done: list[str], dtype: np.dtype, dim: int) -> zarr.Group:
        logger.info("Packing %d videos of %s/%s for fast reading", len(done), dataset, feature)
        values, times, offsets = self._read_videos(dataset, feature, done, dtype, dim)
        packed_root = self._root[f"{dataset}/{feature}"].require_group("packed")
        # A unique suffix lets two processes pack at once without writing the same chunks.
        name = f"{_fingerprint(done)}-{uuid.uuid4().hex[:8]}"
        group = packed_root.create_group(name)
        rows = max(1, _PACK_CHUNK_BYTES // max(1, dim * dtype.itemsize))
        arr = group.create_array(
            "values", shape=values.shape, chunks=(rows, max(dim, 1)), dtype=dtype, compressors=None, fill_value=0,
            config={"write_empty_chunks": True},
        )
        if values.size:
            arr[:] = values
        _raw_array(group, "times", times)
        _raw_array(group, "offsets", offsets)
        keys_arr = group.create_array("keys", shape=(len(done),), chunks=(max(len(done), 1),), dtype=str, compressors=None)
        keys_arr[:] = np.array(done, dtype=object)
        group.attrs.update({"complete": True, "n_videos": len(done), "rows_per_chunk": rows, "created": _now()})
        # Drop finished packs of an older complete set only: a pack still being built by another
        # process, or one of the same set that a reader may hold, is left alone.
        for other, attrs in self.packs(dataset, feature).items():
            if other != name and attrs.get("complete") and not other.startswith(_fingerprint(done)):
                self._delete_dir(f"{dataset}/{feature}/packed/{other}")
        return group

    def _read_from_pack(self, group: zarr.Group, keys: list[str], video_ids: list[str], dtype: np.dtype, dim: int):
        offsets_all = group["offsets"][:]
        times_all = group["times"][:]
        packed_keys = [str(k) for k in group["keys"][:]]
        values_all = None
        if isinstance(self._backend, LocalStore):
            values_all = rawio.read_raw_chunked(
                Path(self._backend.root) / group.path / "values", group["values"], dtype, dim
            )
        if values_all is None:
            values_all = group["values"][:]
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

    # ---------------------------------------------------------------- misc
    def size_bytes(self) -> int | None:
        """Bytes the store takes (None where the backend cannot tell cheaply)."""
        if isinstance(self._backend, LocalStore):
            total = 0
            for dirpath, _, files in os.walk(self._backend.root):
                total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
            return total
        try:
            return int(sync(self._backend.getsize_prefix("")))
        except (NotImplementedError, AttributeError, TypeError):
            return None

    def video_keys(self, dataset: str, feature: str) -> list[str]:
        """Keys of every video group, complete or not (for verification)."""
        return sorted(self._list(f"{dataset}/{feature}/videos"))

    def marks(self, dataset: str, feature: str) -> dict[str, dict[str, Any]]:
        """Completion marks by video key: id, config_hash, frames, time (one small read per video)."""
        self._feature_group(dataset, feature)
        out = {}
        for key in self._done_keys(dataset, feature):
            doc = self._get_json(f"{dataset}/{feature}/done/{key}/zarr.json")
            if doc is not None:
                out[key] = doc["attributes"]
        return out

    def video_group(self, dataset: str, feature: str, key: str) -> zarr.Group | None:
        """The Zarr group of video `key` (complete or not), None when absent."""
        try:
            node = self._root[f"{dataset}/{feature}/videos/{key}"]
        except KeyError:
            return None
        return node if isinstance(node, zarr.Group) else None

    def packs(self, dataset: str, feature: str) -> dict[str, dict[str, Any]]:
        """Packed copies by name with their attributes, and whether each matches the current complete set."""
        done = _fingerprint(self._done_keys(dataset, feature))
        out = {}
        for name in self._list(f"{dataset}/{feature}/packed"):
            doc = self._get_json(f"{dataset}/{feature}/packed/{name}/zarr.json") or {}
            attrs = dict(doc.get("attributes", {}))
            attrs["current"] = name.split("-")[0] == done and bool(attrs.get("complete"))
            out[name] = attrs
        return out


def _mismatch_message(dataset: str, feature: str, existing: dict[str, Any], new_hash: str) -> str:
    return (
        f"Feature set {dataset}/{feature} holds arrays made with config hash {existing['config_hash']} "
        f"(extractor {existing.get('extractor')}, model {model_name(existing)}); refusing to mix in arrays "
        f"made with config hash {new_hash}. Write them under another feature name, or delete the old set "
        f"first with `affect store rm STORE {dataset} {feature}`."
    )


def _validate_frames(values: Any, times: Any, prov: dict[str, Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values)
    times = np.asarray(times, dtype=np.float64)
    dim = prov["dim"]
    if values.ndim != 2 or values.shape[1] != dim:
        raise ArrayShapeError(f"{where}: values must be a T x {dim} array. Got shape {values.shape} instead.")
    if times.ndim != 1 or len(times) != len(values):
        raise ArrayShapeError(
            f"{where}: times must hold one entry per frame ({len(values)}). Got shape {times.shape} instead."
        )
    if len(times) and (not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0)):
        raise ArrayShapeError(f"{where}: times must be finite and non-decreasing seconds from the video start.")
    if not np.issubdtype(values.dtype, np.number):
        raise ArrayShapeError(f"{where}: values must be numeric. Got dtype {values.dtype} instead.")
    return np.ascontiguousarray(values, dtype=prov["dtype"]), np.ascontiguousarray(times)


def _raw_array(group: zarr.Group, name: str, data: np.ndarray) -> zarr.Array:
    """One uncompressed chunk holding all of `data` (chunk shapes must be >= 1)."""
    chunks = tuple(max(n, 1) for n in data.shape)
    arr = group.create_array(
        name, shape=data.shape, chunks=chunks, dtype=data.dtype, compressors=None, fill_value=0,
        config={"write_empty_chunks": True},
    )
    if data.size:
        arr[...] = data
    return arr


def _group_doc(attributes: dict) -> cpu.Buffer:
    doc = {"zarr_format": 3, "node_type": "group", "attributes": attributes}
    return cpu.Buffer.from_bytes(json.dumps(doc).encode("utf-8"))


@functools.lru_cache(maxsize=256)
def _array_metadata(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """zarr.json of an uncompressed single-chunk array, made by Zarr itself (cached: the same shapes recur)."""
    meta = ArrayV3Metadata(
        shape=shape,
        data_type=get_data_type_from_native_dtype(dtype),
        chunk_grid=RegularChunkGrid(chunk_shape=tuple(max(n, 1) for n in shape)),
        chunk_key_encoding=DefaultChunkKeyEncoding(separator="/"),
        fill_value=0,
        codecs=(BytesCodec(endian="little"),),
        attributes={},
        dimension_names=None,
    )
    return meta.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()


def _raw_array_docs(path: str, data: np.ndarray) -> dict[str, cpu.Buffer]:
    """Metadata and the one chunk of an uncompressed single-chunk array, as Zarr itself writes them."""
    docs = {f"{path}/zarr.json": cpu.Buffer.from_bytes(_array_metadata(data.shape, data.dtype))}
    if data.size:
        chunk = "/".join(["c"] + ["0"] * data.ndim)
        docs[f"{path}/{chunk}"] = cpu.Buffer.from_bytes(np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes())
    return docs


def _fingerprint(done_keys: list[str]) -> str:
    digest = hashlib.sha256("\n".join(done_keys).encode("utf-8")).hexdigest()[:16]
    return f"n{len(done_keys)}x{digest}"


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
