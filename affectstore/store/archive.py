"""`affect store pack FOLDER FILE.zip`: one read-only file holding a folder store's complete work.

A .zip store is a read format and a pack target: it is only ever written here, whole,
into a temporary file that replaces the target in one rename, so an interrupted pack
leaves the old archive (or none), never an unreadable one. Entries are stored
uncompressed (float features barely compress, and stored entries read without
inflating). Only what readers trust goes in: metadata, complete videos (with their
marks), failure records and complete current packs; unmarked leftovers, incomplete or
stale packs, claims and temporary files stay out. The archive ends with the store's
listing file (listing.py) holding the size and CRC-32C of every other entry: the checksum
manifest that `unpack` and `verify` check, and the folder names remote readers list.
"""

from __future__ import annotations

import logging
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from affectstore.store import chunks
from affectstore.store.errors import StoreError
from affectstore.store.listing import LISTING, build_listing, listing_document, restrict
from affectstore.store.store import FeatureStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveSummary:
    """What went into an archive: files, bytes, complete videos per feature set."""

    path: Path
    files: int
    bytes: int
    videos: dict[str, int]


def _members(store: FeatureStore, packs: bool = True) -> list[Path]:
    root = store.local_root
    files = [root / "zarr.json"]
    for dataset in store.datasets():
        files.append(root / dataset / "zarr.json")
        for feature in store.features(dataset):
            base = root / dataset / feature
            files.append(base / "zarr.json")
            files += [base / sub / "zarr.json" for sub in ("videos", "done", "failed", "packed")]
            for key in store.done_keys(dataset, feature):
                files.append(base / "done" / key / "zarr.json")
                files += sorted(p for p in (base / "videos" / key).rglob("*") if p.is_file() and not p.name.endswith(".partial"))
            files += sorted((base / "failed").glob("*/zarr.json"))
            for name, attrs in store.packs(dataset, feature).items() if packs else ():
                if attrs.get("current"):
                    files += sorted(p for p in (base / "packed" / name).rglob("*") if p.is_file() and not p.name.endswith(".partial"))
    return [f for f in files if f.is_file()]


def _entry(name: str) -> zipfile.ZipInfo:
    """A stored (uncompressed) entry with a fixed date, so packing the same store twice gives the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def archive_store(store: FeatureStore, target: str | os.PathLike, *, packs: bool = True) -> ArchiveSummary:
    """Write the complete work of the folder store ``store`` into the .zip file ``target`` (replaced atomically).

    ``packs=False`` leaves the packed copies out: the archive is then the size of the arrays
    (a pack is a second copy, for fast bulk reads), and whoever unpacks it packs again.
    """
    target = Path(target)
    if target.suffix.lower() != ".zip":
        raise StoreError(f"The archive must be a .zip file. Got {str(target)!r} instead.")
    root = store.local_root
    if root is None:
        raise StoreError(
            f"{store.location} is not a local folder store; only folder stores are packed into a .zip "
            "(copy the store to a folder first)."
        )
    if target.resolve().is_relative_to(root.resolve()):
        raise StoreError(f"The archive {target} must not lie inside the store it packs ({store.location}).")
    if target.is_dir():
        raise StoreError(f"{target} is a folder; pass the path of the .zip file to write.")
    members = _members(store, packs)
    names = build_listing(store)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:12]}.partial")
    size = 0
    files: dict[str, list[int]] = {}
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path in members:
                data = path.read_bytes()  # the bytes checksummed are the bytes archived
                name = path.relative_to(root).as_posix()
                archive.writestr(_entry(name), data)
                files[name] = chunks.file_sum(data)
                size += len(data)
            archive.writestr(_entry(LISTING), listing_document(restrict(names, list(files)), files))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    videos = {f"{info.dataset}/{info.feature}": info.n_complete for info in store.feature_sets()}
    logger.info("packed %d files (%d bytes) of %s into %s", len(members), size, store.location, target)
    return ArchiveSummary(target, len(members), size, videos)
