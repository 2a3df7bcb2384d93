"""Handing stores between people: unpack an archive into a folder, merge stores into one.

Packing a folder into one .zip is archive.py. Both functions here write through the same
promises as an extraction: a video's files first, its completion mark last (so a killed
merge leaves nothing a reader trusts half-copied), every copied file checked against the
size and CRC-32C its mark (or the archive's manifest) recorded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from affectstore.store import chunks, write
from affectstore.store.chunks import DamagedChunk
from affectstore.store.errors import ConfigMismatchError, StoreError
from affectstore.store.listing import LISTING, parse_listing, write_listing
from affectstore.store.provenance import model_name
from affectstore.store.store import META, FeatureStore

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------- unpack
@dataclass(frozen=True)
class UnpackSummary:
    """What `unpack_archive` wrote: the folder, its files and bytes, complete videos per feature set."""

    folder: Path
    files: int
    bytes: int
    videos: dict[str, int]


def unpack_archive(archive: str | os.PathLike, folder: str | os.PathLike) -> UnpackSummary:
    """Unpack the .zip store ``archive`` (a path or URL) into the new or empty folder ``folder``.

    Entries that are absolute, leave the store or appear twice are refused before anything
    is written (opening the archive checks them); each entry is checked against the
    archive's checksum manifest. The folder appears whole, by one rename, or not at all.
    """
    source = FeatureStore.open(archive, mode="r")
    if not source.is_zip:
        raise StoreError(f"{archive} is not a .zip store; `affect store unpack` takes an archive made by `affect store pack`.")
    target = Path(folder).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} exists and is not an empty folder; unpack into a new folder, e.g. {target.with_suffix('.zarr')}.")
    raw = source.get_bytes(LISTING)
    manifest = parse_listing(raw, source.location).get("files") if raw is not None else None
    if manifest is None:
        logger.warning("%s has no checksum manifest (packed by an older affectstore): only marks are checked", archive)
    keys = [k for k in source.storage.list_files("") if k != LISTING]
    if manifest is not None:
        extra = sorted(set(keys) - set(manifest))
        if extra:
            raise StoreError(f"{archive} holds {len(extra)} entries its manifest does not list (e.g. {extra[0]!r}); "
                             "refusing to unpack an archive that was changed after packing.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:12]}.partial")
    size = 0
    try:
        tmp.mkdir()
        for key in keys:
            data = source.get_bytes(key)
            if data is None:
                raise StoreError(f"{archive}: entry {key!r} vanished while unpacking")
            if manifest is not None and chunks.file_sum(data) != list(manifest[key]):
                raise source.damaged(key, DamagedChunk(key, f"size or checksum differs from the manifest ({len(data)} bytes)"))
            path = tmp / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            size += len(data)
        if manifest is not None:
            missing = sorted(set(manifest) - set(keys))
            if missing:
                raise source.damaged(archive, DamagedChunk(missing[0], f"{len(missing)} entries of the manifest are missing"))
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    unpacked = FeatureStore.open(target, mode="r")
    videos = {f"{i.dataset}/{i.feature}": i.n_complete for i in unpacked.feature_sets()}
    logger.info("unpacked %d files (%d bytes) of %s into %s", len(keys), size, archive, target)
    return UnpackSummary(target, len(keys), size, videos)


# ------------------------------------------------------------------------ merge
@dataclass
class FeatureMerge:
    """One source feature set merged into the target: where it went and how many videos moved."""

    source: str
    dataset: str
    feature: str
    target: str
    copied: int = 0
    already: int = 0
    failures: int = 0
    created: bool = False


@dataclass
class MergeSummary:
    """What `merge_stores` did, one entry per source feature set."""

    out: str
    merged: list[FeatureMerge] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"merged into {self.out}:"]
        for m in self.merged:
            where = f"{m.dataset}/{m.feature}" + (f" -> {m.dataset}/{m.target}" if m.target != m.feature else "")
            lines.append(f"  {m.source}: {where}: {m.copied} videos copied, {m.already} already there, "
                         f"{m.failures} failure records" + (" (new feature set)" if m.created else ""))
        return "\n".join(lines)


def parse_renames(items: list[str]) -> dict[tuple[str, str], str]:
    """``DATASET/FEATURE=NEW`` strings as {(dataset, feature): new}."""
    out = {}
    for item in items:
        head, sep, new = item.partition("=")
        dataset, slash, feature = head.partition("/")
        if not (sep and slash and dataset and feature and new) or "/" in new:
            raise ValueError(f"--rename must be DATASET/FEATURE=NEW_NAME, e.g. bah/hubert=hubert_b. Got {item!r} instead.")
        out[(dataset, feature)] = new
    return out


def merge_stores(
    sources: list[str | os.PathLike], out: str | os.PathLike, renames: dict[tuple[str, str], str] | None = None,
    *, pack: bool = True,
) -> MergeSummary:
    """The union of the stores ``sources`` (folders, archives or URLs) in the store ``out`` (created when missing).

    A feature set whose config hash equals the target's merges video by video (a video
    complete in both keeps the target's copy). A different config hash under the same name
    is refused with both configs in the message, unless ``renames`` maps that
    ``(dataset, feature)`` to a name for the incoming set. Packs and the listing are rebuilt.
    """
    renames = dict(renames or {})
    if not sources:
        raise ValueError("Give at least one store to merge.")
    target = FeatureStore.open(out, mode="a")
    summary = MergeSummary(target.location)
    touched: set[tuple[str, str]] = set()
    for location in sources:
        source = FeatureStore.open(location, mode="r")
        if source.local_root is not None and target.local_root is not None and source.local_root.resolve() == target.local_root.resolve():
            raise StoreError(f"{location} is the output store itself; merge other stores into it.")
        for dataset in source.datasets():
            for feature in source.features(dataset):
                name = _target_name(source, target, dataset, feature, renames)
                result = _merge_feature(source, target, dataset, feature, name)
                summary.merged.append(result)
                touched.add((dataset, name))
    if target.local_root is not None:
        for dataset, name in sorted(touched):
            if pack:
                target.pack(dataset, name)
        write_listing(target)
    return summary


def _target_name(source: FeatureStore, target: FeatureStore, dataset: str, feature: str,
                 renames: dict[tuple[str, str], str]) -> str:
    incoming = source.provenance(dataset, feature)
    name = feature
    if (dataset, feature) in renames and _existing_hash(target, dataset, feature) not in (None, incoming["config_hash"]):
        name = renames[(dataset, feature)]
    existing = _existing_hash(target, dataset, name)
    if existing is not None and existing != incoming["config_hash"]:
        stored = target.provenance(dataset, name)
        raise ConfigMismatchError(
            f"{dataset}/{name} differs between {target.location} and {source.location}: config hash "
            f"{stored['config_hash']} vs {incoming['config_hash']}.\n"
            f"  {target.location}: {_describe(stored)}\n  {source.location}: {_describe(incoming)}\n"
            f"Keep both under another name with --rename {dataset}/{feature}=NEW_NAME (e.g. {feature}_b)."
        )
    return name


def _describe(prov: dict) -> str:
    config = json.dumps(prov.get("config", {}), sort_keys=True, default=str)
    return f"extractor {prov.get('extractor')}, model {model_name(prov)}, config {config}"


def _existing_hash(store: FeatureStore, dataset: str, feature: str) -> str | None:
    doc = store.get_json(f"{dataset}/{feature}/zarr.json", f"{dataset}/{feature}")
    if doc is None:
        return None
    meta = doc.get("attributes", {}).get(META)
    if not isinstance(meta, dict):
        raise StoreError(f"{dataset}/{feature} in {store.location} is a Zarr group but not a feature set; rename the incoming set.")
    return meta["provenance"]["config_hash"]


def _merge_feature(source: FeatureStore, target: FeatureStore, dataset: str, feature: str, name: str) -> FeatureMerge:
    result = FeatureMerge(source.location, dataset, feature, name)
    base_src, base_dst = f"{dataset}/{feature}", f"{dataset}/{name}"
    storage = target.storage
    if _existing_hash(target, dataset, name) is None:
        empty = chunks.group_doc({})
        storage.put(f"{dataset}/zarr.json", empty, only_new=True)
        for sub in ("videos", "done", "failed", "packed"):
            storage.put(f"{base_dst}/{sub}/zarr.json", empty, only_new=True)
        # The feature document verbatim: provenance, layout and seal say exactly what the source said.
        storage.put(f"{base_dst}/zarr.json", source.get_bytes(f"{base_src}/zarr.json"), only_new=True)
        result.created = True
    config = source.provenance(dataset, feature)["config_hash"]
    have = {k for k in target.done_keys(dataset, name)}
    for key, mark in source.marks(dataset, feature).items():
        if key in have and target.is_done(dataset, name, mark.get("id") or key, config):
            result.already += 1
            continue
        files = _video_files(source, base_src, key, mark)
        write.begin_video(target, base_dst, key)
        storage.put_many([(f"{base_dst}/videos/{key}/{rel}", data) for rel, data in files])
        storage.put(f"{base_dst}/done/{key}/zarr.json", source.get_bytes(f"{base_src}/done/{key}/zarr.json"), atomic=True)
        storage.delete_dir(f"{base_dst}/failed/{key}")
        result.copied += 1
    done_now = set(target.done_keys(dataset, name))
    for key in source.list_names(f"{base_src}/failed"):
        if key in done_now or storage.exists(f"{base_dst}/failed/{key}/zarr.json"):
            continue
        data = source.get_bytes(f"{base_src}/failed/{key}/zarr.json")
        if data is not None:
            storage.put(f"{base_dst}/failed/{key}/zarr.json", data, atomic=True)
            result.failures += 1
    logger.info("%s: %s -> %s: %d copied, %d already there", source.location, base_src, base_dst, result.copied, result.already)
    return result


def _video_files(source: FeatureStore, base: str, key: str, mark: dict) -> list[tuple[str, bytes]]:
    """The files of one complete video, each checked against its mark's size and CRC-32C."""
    prefix = f"{base}/videos/{key}"
    where = f"{source.location}: {base} video {mark.get('id') or key!r}"
    sums = mark.get("files")
    if not sums:  # a mark made before checksums: whatever lies below the video
        return [(k[len(prefix) + 1 :], source.get_bytes(k)) for k in source.storage.list_files(prefix)]
    out = []
    for rel, recorded in sorted(sums.items()):
        data = source.get_bytes(f"{prefix}/{rel}")
        if data is None or chunks.file_sum(data) != list(recorded):
            problem = "file is missing" if data is None else "size or checksum differs from its completion mark"
            raise source.damaged(where, DamagedChunk(f"{prefix}/{rel}", problem))
        out.append((rel, data))
    return out
