"""The feature store: per-video feature arrays of many datasets in one Zarr v3 hierarchy.

Layout (every node is a plain Zarr v3 group or array, readable by any Zarr client)::

    <dataset>/<feature>/                 group; attrs["affectstore"] = {"provenance", "layout", seal}
        videos/<key>/values, times       one group per video (T x D, T); text: start, end, text
        done/<key>/                      completion mark, written after the video's arrays
        failed/<key>/                    failure record (stage, reason, time), kept apart
        packed/<fingerprint>/            concatenated copy of all complete videos, for bulk reads
    .claims/                             work-sharing claims of running extractions (see claims.py)
    affectstore.listing.json             folder names for readers that cannot list (http), see listing.py

Every byte goes through one seam, `storage.Storage` (a local folder, or any zarr store).
`<key>` is the video id made safe by `keys.encode_id`. A video counts only once its
mark exists: a killed writer leaves arrays without a mark, which every reader ignores
and the next run overwrites. Each writer touches only its own video's keys, so any
number of processes may extract different videos of one feature at the same time.
Marks are tiny groups in one folder so that listing 15,000 complete videos is one
directory listing, not 15,000 metadata reads.

Integrity (see chunks.py): every chunk carries a CRC-32C (Zarr's ``crc32c`` codec); the
mark records the size and CRC-32C of each of the video's files and is sealed itself.
Readers refuse a missing, truncated or mismatching chunk with `DamagedStoreError`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
import zarr
from affectstore.store import chunks, read, write
from affectstore.store.chunks import LAYOUT, DamagedChunk
from affectstore.store.backend import open_backend
from affectstore.store.storage import Storage
from affectstore.store.errors import (
    ConfigMismatchError,
    DamagedStoreError,
    NotAStoreError,
    StoreError,
    UnknownDatasetError,
    UnknownFeatureError,
    unknown,
)
from affectstore.store.keys import decode_key, encode_id
from affectstore.store.provenance import complete_provenance, model_name
from affectstore.store.records import Failure, FeatureSetInfo, FeatureTable, TextSegments, VideoArrays

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
META = "affectstore"
CLAIMS_FOLDER = ".claims"


class FeatureStore:
    """A Zarr v3 feature store at a local path, a `.zip` file (read-only) or any fsspec URL.

    Open with `FeatureStore.open(location, mode="r")` to read, `mode="a"` to read and
    write (creating the store if needed).
    """

    def __init__(self, storage: Storage, root: zarr.Group, location: str):
        self._storage = storage
        self.root_group = root
        self.location = location
        self.read_only = storage.read_only

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        location: str | os.PathLike,
        mode: Literal["r", "a"] = "r",
        storage_options: dict | None = None,
    ) -> "FeatureStore":
        """Open the store at `location`; `mode="a"` creates it when missing (a folder or a URL, never a .zip)."""
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' (read) or 'a' (read and write). Got {mode!r} instead.")
        storage = open_backend(location, mode == "r", storage_options)
        text = os.fspath(location)
        try:
            try:
                root = zarr.open_group(storage.zarr_store, mode="r" if mode == "r" else "a")
            except zarr.errors.ContainsGroupError:
                # Another process created the new store between zarr's look and its create
                # (several extractions starting on one new store): open what it made.
                root = zarr.open_group(storage.zarr_store, mode="a")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError) as exc:
            raise NotAStoreError(f"{text} is not an affectstore store: it holds no Zarr v3 group ({exc}).") from exc
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
            raise DamagedStoreError(
                f"{text}: the store's root metadata zarr.json is unreadable ({type(exc).__name__}: {exc}). "
                "Copy the store again; only its root document is affected."
            ) from exc
        meta = root.attrs.get(META)
        if meta is None:
            if mode == "r" or any(True for _ in root.members(max_depth=0)):
                raise NotAStoreError(
                    f"{text} is a Zarr group but not an affectstore store (no '{META}' attribute). "
                    "Point --store at a store made by affectstore."
                )
            root.attrs[META] = {"format": FORMAT_VERSION}
        elif mode == "r" and (not storage.can_list or storage.is_zip):
            # Servers that cannot list (http) read the listing file written by `affect store pack`;
            # an archive's listing was written with it, so it is exact and saves walking its directory.
            from affectstore.store.listing import read_listing

            storage.listing = read_listing(storage)
        elif not isinstance(meta, dict) or meta.get("format", 0) > FORMAT_VERSION:
            raise StoreError(
                f"{text} uses store format {meta.get('format') if isinstance(meta, dict) else meta!r}, newer than this "
                f"affectstore understands ({FORMAT_VERSION}). Upgrade affectstore."
            )
        return cls(storage, root, text)

    def __repr__(self) -> str:
        return f"FeatureStore({self.location!r}, read_only={self.read_only})"

    def require_writable(self) -> None:
        """Raise `StoreError` unless this store may be written (never a .zip, never one opened with mode="r")."""
        if self._storage.refusal:
            raise StoreError(self._storage.refusal)
        if self.read_only:
            raise StoreError(f"Store {self.location} is open read-only; open it with mode='a' to write.")

    @property
    def local_root(self) -> Path | None:
        """The folder of a local store, None for .zip and remote stores."""
        return self._storage.local_root

    @property
    def is_zip(self) -> bool:
        """True for a .zip archive (read-only by design)."""
        return self._storage.is_zip

    def damage_hint(self) -> str:
        """What to do about damaged bytes in this store."""
        return (
            f"The store is damaged: `affect store verify {self.location}` lists every damaged file, and "
            "`--repair` drops the damaged videos so that the next extract redoes exactly those."
        )

    def damaged(self, where: str, damage: DamagedChunk) -> DamagedStoreError:
        """The error for `damage`, with `where` (dataset, feature, video) in front and what to do after it."""
        return DamagedStoreError(f"{where}: {damage.key}: {damage.problem}. {self.damage_hint()}")

    # --------------------------------------------------------------- raw keys
    def list_names(self, prefix: str) -> list[str]:
        """Names of the child nodes under `prefix` (its own metadata document left out)."""
        return self._storage.list_names(prefix)

    def get_bytes(self, key: str) -> bytes | None:
        """The bytes stored under `key`, None when absent."""
        return self._storage.get(key)

    def get_json(self, key: str, where: str | None = None) -> dict | None:
        """The JSON document under `key` (None when absent); unreadable JSON raises `DamagedStoreError`."""
        data = self.get_bytes(key)
        if data is None:
            return None
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self.damaged(where or key, DamagedChunk(key, f"unreadable metadata ({type(exc).__name__}: {exc})")) from None
        if not isinstance(doc, dict):
            raise self.damaged(where or key, DamagedChunk(key, "unreadable metadata (not a JSON object)"))
        return doc

    def put_group(self, path: str, attributes: dict) -> None:
        """Write a group node in one atomic put (a mark or a failure record)."""
        self._storage.put(f"{path}/zarr.json", chunks.group_doc(attributes), atomic=True)

    def delete_dir(self, path: str) -> None:
        """Delete everything under `path` (a missing path is fine)."""
        self._storage.delete_dir(path)

    def _node(self, path: str, where: str) -> zarr.Group | zarr.Array:
        try:
            return self.root_group[path]
        except KeyError:
            raise
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as exc:
            key = f"{path}/zarr.json"
            raise self.damaged(where, DamagedChunk(key, f"unreadable metadata ({type(exc).__name__}: {exc})")) from None

    # ------------------------------------------------------------ navigation
    def _child_groups(self, prefix: str) -> list[str]:
        out = []
        for name in self.list_names(prefix):
            if name.startswith("."):
                continue  # claims and other tool folders, never datasets or features
            key = f"{prefix}/{name}/zarr.json" if prefix else f"{name}/zarr.json"
            try:
                doc = self.get_json(key)
            except DamagedStoreError:
                out.append(name)  # listed, so that reading it reports the damage
                continue
            if doc is not None and doc.get("node_type") != "array":
                out.append(name)  # a damaged group document still lists its folder, so verify reports it
        return sorted(out)

    def datasets(self) -> list[str]:
        """Names of the datasets in the store."""
        return self._child_groups("")

    def features(self, dataset: str) -> list[str]:
        """Names of the feature sets of `dataset`."""
        if dataset not in self.datasets():
            raise UnknownDatasetError(unknown("dataset", dataset, self.datasets(), f"store {self.location}"))
        return self._child_groups(dataset)

    def _check_feature(self, dataset: str, feature: str) -> None:
        if feature not in self.features(dataset):
            raise UnknownFeatureError(
                unknown("feature", feature, self.features(dataset), f"dataset {dataset!r} of store {self.location}")
            )

    def provenance(self, dataset: str, feature: str) -> dict[str, Any]:
        """The provenance recorded when the feature set was created."""
        return self.feature_meta(dataset, feature)["provenance"]

    def feature_meta(self, dataset: str, feature: str) -> dict[str, Any]:
        """The feature set's affectstore attribute: provenance, layout and its seal."""
        where = f"{dataset}/{feature}"
        # One small read, not a group open: writers check it before every video.
        doc = self.get_json(f"{dataset}/{feature}/zarr.json", where) if "/" not in dataset + feature else None
        if doc is None:
            self._check_feature(dataset, feature)  # raises the helpful error
            raise UnknownFeatureError(f"{where} in {self.location} is not a feature set.")
        meta = doc.get("attributes", {}).get(META) if isinstance(doc.get("attributes"), dict) else None
        if meta is None:
            raise StoreError(f"{where} in {self.location} is not a feature set (no provenance).")
        if not isinstance(meta, dict) or not isinstance(meta.get("provenance"), dict):
            raise self.damaged(where, DamagedChunk(f"{where}/zarr.json", "unreadable provenance (not a JSON object)"))
        return dict(meta)

    def checksummed(self, dataset: str, feature: str) -> bool:
        """True when the feature set's chunks carry CRC-32C checksums."""
        return self.feature_meta(dataset, feature).get("layout", {}).get("checksum") == "crc32c"

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
                        len(self.done_keys(dataset, feature)),
                        len(self.list_names(f"{dataset}/{feature}/failed")),
                    )
                )
        return out

    # ------------------------------------------------------------- creating
    def create_feature(self, dataset: str, feature: str, provenance: dict[str, Any]) -> dict[str, Any]:
        """Create feature set `dataset/feature`, or check that the existing one has the same config hash.

        Returns the stored provenance. Raises ConfigMismatchError when the feature set
        exists with another config hash: old and new arrays are never mixed.
        """
        self.require_writable()
        for kind, name in (("dataset", dataset), ("feature", feature)):
            if not name or "/" in name or name.startswith((".", "__")):
                raise ValueError(
                    f"A {kind} name must be non-empty, without '/', not starting with '.' or '__'. Got {name!r} instead."
                )
        prov = complete_provenance(provenance)
        path = f"{dataset}/{feature}"
        doc = self.get_json(f"{path}/zarr.json", path)
        if doc is None:
            # Several writers may start at once (SLURM array): every step is idempotent, and the
            # feature group appears in one exclusive put that already holds its provenance.
            empty = chunks.group_doc({})
            self._storage.put(f"{dataset}/zarr.json", empty, only_new=True)
            for sub in ("videos", "done", "failed", "packed"):
                self._storage.put(f"{path}/{sub}/zarr.json", empty, only_new=True)
            meta = {META: chunks.seal({"provenance": prov, "layout": LAYOUT})}
            self._storage.put(f"{path}/zarr.json", chunks.group_doc(meta), only_new=True)
            doc = self.get_json(f"{path}/zarr.json", path)
        meta = doc.get("attributes", {}).get(META)
        if meta is None:
            raise StoreError(f"{path} in {self.location} is a Zarr group but not a feature set; pick another feature name.")
        existing = meta["provenance"]
        if existing["config_hash"] != prov["config_hash"]:
            raise ConfigMismatchError(_mismatch_message(dataset, feature, existing, prov["config_hash"]))
        return existing

    def delete_feature(self, dataset: str, feature: str) -> None:
        """Delete feature set `dataset/feature` with all its videos, marks, failures and packs."""
        self.require_writable()
        self._check_feature(dataset, feature)
        self.delete_dir(f"{dataset}/{feature}")

    def check_config(self, dataset: str, feature: str, config_hash: str) -> dict[str, Any]:
        """The stored provenance of `dataset/feature`; ConfigMismatchError when its config hash is not `config_hash`."""
        prov = self.provenance(dataset, feature)
        if prov["config_hash"] != config_hash:
            raise ConfigMismatchError(_mismatch_message(dataset, feature, prov, config_hash))
        return prov

    # -------------------------------------------------------------- writing
    def write_video(
        self, dataset: str, feature: str, video_id: str, values: np.ndarray, times: np.ndarray, *, config_hash: str,
        media: dict[str, Any] | None = None,
    ) -> None:
        """Write one video's `values` (T x D) and `times` (T), then its completion mark.

        `config_hash` must equal the feature set's; values are cast to its dtype. `media`
        (the input files' sizes and hashes) goes into the mark.
        """
        write.write_video(self, dataset, feature, video_id, values, times, config_hash=config_hash, media=media)

    def write_text(
        self, dataset: str, feature: str, video_id: str, start: Iterable[float], end: Iterable[float],
        text: Iterable[str], *, config_hash: str, media: dict[str, Any] | None = None,
    ) -> None:
        """Write one video's transcript segments (`start`, `end` in seconds, `text`), then its completion mark."""
        write.write_text(self, dataset, feature, video_id, start, end, text, config_hash=config_hash, media=media)

    def record_failure(
        self, dataset: str, feature: str, video_id: str, stage: str, reason: str, *, config_hash: str | None = None
    ) -> None:
        """Record that `video_id` failed at `stage` (e.g. "decode", "model") for `reason`."""
        write.record_failure(self, dataset, feature, video_id, stage, reason, config_hash=config_hash)

    def drop_complete_packs(self, base: str) -> None:
        """Delete the finished packs of feature set `base` ("dataset/feature"); see write.drop_complete_packs."""
        write.drop_complete_packs(self, base)

    # -------------------------------------------------------------- status
    def done_keys(self, dataset: str, feature: str) -> list[str]:
        """Keys of the videos with a completion mark, sorted."""
        keys = self.list_names(f"{dataset}/{feature}/done")
        if self.local_root is not None:
            # A writer killed inside its mark's atomic write leaves the folder without zarr.json.
            folder = self.local_root / dataset / feature / "done"
            keys = [k for k in keys if (folder / k / "zarr.json").is_file()]
        return sorted(keys)

    def key_ids(self, dataset: str, feature: str, keys: list[str], folder: str) -> list[str]:
        """Video ids of `keys`; a hashed key (a very long id) is looked up in its record in `folder`."""
        ids = []
        for key in keys:
            vid = decode_key(key)
            if vid is None:
                doc = self.get_json(f"{dataset}/{feature}/{folder}/{key}/zarr.json", f"{dataset}/{feature} video {key!r}")
                vid = (doc or {}).get("attributes", {}).get("id") or key
            ids.append(vid)
        return ids

    def completed(self, dataset: str, feature: str) -> list[str]:
        """Ids of the videos of `dataset/feature` whose completion mark is written, sorted by key."""
        self.feature_meta(dataset, feature)
        return self.key_ids(dataset, feature, self.done_keys(dataset, feature), "done")

    def failures(self, dataset: str, feature: str) -> list[Failure]:
        """Failure records of `dataset/feature` (videos that later succeeded are not listed)."""
        self.feature_meta(dataset, feature)
        out = []
        for key in sorted(self.list_names(f"{dataset}/{feature}/failed")):
            where = f"{dataset}/{feature} failure record of {decode_key(key) or key!r}"
            doc = self.get_json(f"{dataset}/{feature}/failed/{key}/zarr.json", where)
            if doc is None:
                continue
            a = doc.get("attributes", {})
            out.append(Failure(a.get("id", decode_key(key) or key), a.get("stage", "?"), a.get("reason", "?"),
                               a.get("time", "?"), a.get("config_hash")))
        return out

    def is_done(self, dataset: str, feature: str, video_id: str, config_hash: str) -> bool:
        """True when `video_id` is complete in `dataset/feature` with exactly `config_hash`."""
        key = encode_id(video_id)
        try:
            doc = self.get_json(f"{dataset}/{feature}/done/{key}/zarr.json")
        except DamagedStoreError:
            return False  # a damaged mark is redone
        return doc is not None and doc.get("attributes", {}).get("config_hash") == config_hash

    # -------------------------------------------------------------- reading
    def read_video(self, dataset: str, feature: str, video_id: str) -> VideoArrays | TextSegments:
        """One complete video's arrays (`VideoArrays`, or `TextSegments` for text features).

        Refuses a chunk that is missing, has the wrong size for its shape or fails its checksum.
        """
        return read.read_video(self, dataset, feature, video_id)

    def load_feature(
        self, dataset: str, feature: str, ids: Iterable[str] | None = None, *, pack: bool | None = None
    ) -> FeatureTable:
        """Load many complete videos of one feature into one `FeatureTable`, fast.

        `ids` defaults to every complete video; asking for an incomplete one is an
        error naming it. Reads the packed copy when it is current; `pack=None` builds
        it when missing or stale and the store is writable, `pack=False` reads video by video.
        A damaged chunk raises `DamagedStoreError` naming the video and the file.
        """
        return read.load_feature(self, dataset, feature, ids, pack=pack)

    def read_videos(self, dataset: str, feature: str, keys: list[str], dtype: np.dtype, dim: int):
        """(values, times, offsets) of the videos `keys`, concatenated, each chunk checked."""
        return read.read_videos(self, dataset, feature, keys, dtype, dim)

    def _where(self, dataset: str, feature: str, key: str) -> str:
        return read.where_of(dataset, feature, key)

    def pack(self, dataset: str, feature: str) -> str | None:
        """Build (or keep) the packed copy of every complete video; returns its name, None when no video is complete.

        Also None when the complete set changed while packing (another writer): pack again later.
        """
        from affectstore.store import pack as packing

        self.require_writable()
        prov = self.provenance(dataset, feature)
        if prov["kind"] == "text":
            return None
        done = self.done_keys(dataset, feature)
        if not done:
            return None
        current = packing.current_pack(self, dataset, feature, done)
        if current is not None:
            return current
        return packing.build_pack(self, dataset, feature, done)

    # ---------------------------------------------------------------- misc
    def size_bytes(self) -> int | None:
        """Bytes the store takes (None where the backend cannot tell cheaply)."""
        return self._storage.size()

    def video_keys(self, dataset: str, feature: str) -> list[str]:
        """Keys of every video group, complete or not (for verification)."""
        return sorted(self.list_names(f"{dataset}/{feature}/videos"))

    def marks(self, dataset: str, feature: str) -> dict[str, dict[str, Any]]:
        """Completion marks by video key: id, config_hash, frames, time, files (one small read per video)."""
        self.feature_meta(dataset, feature)
        out = {}
        for key in self.done_keys(dataset, feature):
            doc = self.get_json(f"{dataset}/{feature}/done/{key}/zarr.json", self._where(dataset, feature, key))
            if doc is not None:
                out[key] = doc.get("attributes", {})
        return out

    def video_group(self, dataset: str, feature: str, key: str) -> zarr.Group | None:
        """The Zarr group of video `key` (complete or not), None when absent."""
        try:
            node = self._node(f"{dataset}/{feature}/videos/{key}", self._where(dataset, feature, key))
        except KeyError:
            return None
        return node if isinstance(node, zarr.Group) else None

    def node(self, path: str, where: str) -> zarr.Group | zarr.Array | None:
        """The Zarr node at `path`, None when absent; unreadable metadata raises `DamagedStoreError`."""
        try:
            return self._node(path, where)
        except KeyError:
            return None

    @property
    def backend(self):
        """The zarr store underneath (for the modules of this package)."""
        return self._storage.zarr_store

    @property
    def storage(self) -> Storage:
        """The storage seam underneath: get, put, delete, list (for the modules of this package)."""
        return self._storage

    def packs(self, dataset: str, feature: str) -> dict[str, dict[str, Any]]:
        """Packed copies by name with their attributes, and whether each matches the current complete set."""
        from affectstore.store.pack import fingerprint

        done = fingerprint(self.done_keys(dataset, feature))
        out = {}
        for name in self.list_names(f"{dataset}/{feature}/packed"):
            doc = self.get_json(f"{dataset}/{feature}/packed/{name}/zarr.json", f"{dataset}/{feature} pack {name}") or {}
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
