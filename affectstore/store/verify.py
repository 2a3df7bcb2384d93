"""`affect store verify [--repair]`: recompute every checksum and check every promise of a store.

Each problem is a `Damage` naming dataset, feature, video and file. ``repair=True`` makes
the store consistent again without guessing at contents: a damaged video loses its
completion mark and arrays (so the next ``affect extract`` redoes exactly those), a
damaged pack or failure record is removed, an unreadable empty group document is
rewritten. A damaged provenance cannot be repaired: the message says how to start over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from affectstore.store import chunks
from affectstore.store.chunks import DamagedChunk
from affectstore.store.errors import DamagedStoreError, StoreError
from affectstore.store.keys import decode_key
from affectstore.store.provenance import REQUIRED
from affectstore.store.store import FeatureStore

logger = logging.getLogger(__name__)

_GROUPS = ("videos", "done", "failed", "packed")


@dataclass(frozen=True)
class Damage:
    """One broken promise: where (dataset, feature, video, file) and what is wrong.

    ``kind`` says what repair does: "video" (drop its mark and arrays), "pack" (drop the
    pack), "failure" (drop the record), "group" (rewrite the empty group document),
    "feature" (not repairable).
    """

    dataset: str
    feature: str | None
    kind: str
    problem: str
    video: str | None = None
    key: str | None = None
    file: str | None = None
    pack: str | None = None

    def __str__(self) -> str:
        where = self.dataset + (f"/{self.feature}" if self.feature else "")
        if self.video is not None:
            where += f" video {self.video!r}"
        if self.pack is not None:
            where += f" pack {self.pack}"
        return f"{where}: {self.file + ': ' if self.file else ''}{self.problem}"


@dataclass
class VerifyReport:
    """What `verify_store` found (and repaired): damages break the store's promises, warnings do not."""

    checked: int = 0
    damages: list[Damage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unrepaired: list[Damage] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Each damage in words."""
        return [str(d) for d in self.damages]

    @property
    def ok(self) -> bool:
        """True when nothing is damaged, or everything damaged was repaired."""
        return not self.damages or (bool(self.repaired) and not self.unrepaired)

    def damaged_videos(self) -> dict[tuple[str, str], list[str]]:
        """(dataset, feature) -> ids of the damaged videos."""
        out: dict[tuple[str, str], list[str]] = {}
        for d in self.damages:
            if d.kind == "video" and d.video not in out.setdefault((d.dataset, d.feature), []):
                out[(d.dataset, d.feature)].append(d.video)
        return out

    def text(self) -> str:
        status = "ERROR" if self.damages and not self.ok else "REPAIRED" if self.damages else "OK"
        lines = [f"{status}: checked {self.checked} complete videos, {len(self.damages)} errors, "
                 f"{len(self.warnings)} warnings"]
        lines += [f"error: {e}" for e in self.errors]
        lines += [f"repaired: {r}" for r in self.repaired]
        lines += [f"not repaired: {d} (delete the feature set with `affect store rm STORE {d.dataset} {d.feature}` "
                  "and extract it again)" for d in self.unrepaired]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def verify_store(store: FeatureStore, *, repair: bool = False, progress: bool = False) -> VerifyReport:
    """Recompute every chunk's and file's checksum and check structure, marks and packs of every feature set."""
    report = VerifyReport()
    for dataset in store.datasets():
        _check_group_doc(store, report, dataset, None, f"{dataset}/zarr.json")
        for feature in store.features(dataset):
            try:
                _verify_feature(store, report, dataset, feature, progress)
            except StoreError as exc:  # a damaged feature group must not stop the others' checks
                report.damages.append(Damage(dataset, feature, "feature", f"cannot be checked ({exc})"))
    if store.is_zip:
        _verify_manifest(store, report)
    if repair and report.damages:
        repair_store(store, report)
    return report


def _verify_manifest(store: FeatureStore, report: VerifyReport) -> None:
    """An archive's manifest covers every entry, metadata included: check the ones no mark or pack covers."""
    from affectstore.store.listing import LISTING, parse_listing

    raw = store.get_bytes(LISTING)
    if raw is None:
        report.warnings.append(f"{store.location}: no checksum manifest (packed by an older affectstore)")
        return
    try:
        files = parse_listing(raw, store.location).get("files") or {}
    except DamagedStoreError as exc:
        report.damages.append(Damage("(archive)", None, "feature", str(exc), file=LISTING))
        return
    seen = {d.file for d in report.damages}
    for key, (size, crc) in sorted(files.items()):
        if key in seen or "/videos/" in key or "/packed/" in key:
            continue  # videos and packs: checked against their marks above
        data = store.get_bytes(key)
        if data is None or chunks.file_sum(data) != [size, crc]:
            parts = key.split("/")
            problem = "entry is missing" if data is None else "entry differs from the archive's manifest"
            report.damages.append(Damage(parts[0] if len(parts) > 1 else "(archive)", parts[1] if len(parts) > 3 else None,
                                         "feature", problem, file=key))


def _doc_ok(doc: dict | None) -> bool:
    """The parts of a record's zarr.json outside its attributes are fixed: a flip there is damage too."""
    if doc is None:
        return True
    extra = set(doc) - {"zarr_format", "node_type", "attributes", "consolidated_metadata"}
    return not extra and doc.get("zarr_format") == 3 and doc.get("node_type") == "group" and isinstance(doc.get("attributes"), dict)


def _check_group_doc(store: FeatureStore, report: VerifyReport, dataset: str, feature: str | None, key: str) -> None:
    """These documents are always the empty group affectstore writes: anything else is damage."""
    try:
        doc = store.get_json(key)
    except DamagedStoreError:
        report.damages.append(Damage(dataset, feature, "group", "unreadable metadata (not valid JSON)", file=key))
        return
    if doc is None:
        if not key.endswith("/packed/zarr.json"):  # older versions dropped the packed group whole
            report.damages.append(Damage(dataset, feature, "group", "group document is missing", file=key))
        return
    doc.pop("consolidated_metadata", None)
    if doc != {"zarr_format": 3, "node_type": "group", "attributes": {}}:
        report.damages.append(Damage(dataset, feature, "group", "differs from the empty group document that was written", file=key))


def _verify_feature(store: FeatureStore, report: VerifyReport, dataset: str, feature: str, progress: bool) -> None:
    base = f"{dataset}/{feature}"
    try:
        meta = store.feature_meta(dataset, feature)
    except DamagedStoreError as exc:
        report.damages.append(Damage(dataset, feature, "feature", f"unreadable provenance ({exc.args[0].split(': ', 2)[-1]})",
                                     file=f"{base}/zarr.json"))
        return
    if chunks.seal_ok(meta) is False or not _doc_ok(store.get_json(f"{base}/zarr.json")):
        report.damages.append(Damage(dataset, feature, "feature", "provenance does not match its checksum (changed after it "
                                     "was written)", file=f"{base}/zarr.json"))
        return
    prov = meta["provenance"]
    lacking = [k for k in REQUIRED if k not in prov]
    if lacking:
        report.damages.append(Damage(dataset, feature, "feature", f"provenance lacks {', '.join(lacking)}", file=f"{base}/zarr.json"))
        return
    for sub in _GROUPS:
        _check_group_doc(store, report, dataset, feature, f"{base}/{sub}/zarr.json")
    if meta.get("layout", {}).get("checksum") != "crc32c":
        report.warnings.append(f"{base}: written before checksums: sizes and structure are checked, contents cannot be")
    done = store.done_keys(dataset, feature)
    for key in tqdm(done, desc=f"verify {base}", unit="video", disable=not progress, leave=False):
        report.checked += 1
        report.damages.extend(_check_video(store, dataset, feature, key, prov))
    unmarked = sorted(set(store.video_keys(dataset, feature)) - set(done))
    if unmarked:
        names = ", ".join(repr(decode_key(k) or k) for k in unmarked[:3])
        report.warnings.append(
            f"{base}: {len(unmarked)} videos have arrays but no completion mark "
            f"(an interrupted run; they are ignored and redone): {names}{' ...' if len(unmarked) > 3 else ''}"
        )
    for key in sorted(store.list_names(f"{base}/failed")):
        try:
            doc = store.get_json(f"{base}/failed/{key}/zarr.json")
        except DamagedStoreError:
            doc = None
            ok = False
        else:
            ok = doc is None or (_doc_ok(doc) and chunks.seal_ok(doc.get("attributes", {})) is not False)
        if not ok:
            report.damages.append(Damage(dataset, feature, "failure", "unreadable failure record", video=decode_key(key) or key,
                                         key=key, file=f"{base}/failed/{key}/zarr.json"))
    _verify_packs(store, report, dataset, feature)


def _check_video(store: FeatureStore, dataset: str, feature: str, key: str, prov: dict[str, Any]) -> list[Damage]:
    base = f"{dataset}/{feature}"
    mark_file = f"{base}/done/{key}/zarr.json"

    def damage(problem: str, file: str | None = None, vid: str | None = None) -> Damage:
        return Damage(dataset, feature, "video", problem, video=vid or decode_key(key) or key, key=key, file=file)

    try:
        doc = store.get_json(mark_file)
    except DamagedStoreError:
        return [damage("unreadable completion mark (not valid JSON)", mark_file)]
    mark = (doc or {}).get("attributes", {})
    vid = mark.get("id") or decode_key(key) or key
    if chunks.seal_ok(mark) is False or not _doc_ok(doc):
        return [damage("completion mark does not match its checksum (changed after it was written)", mark_file, vid)]
    if decode_key(key) not in (None, mark.get("id")):
        return [damage(f"its key {key!r} does not decode to the id in its mark", mark_file, vid)]
    if mark.get("config_hash") != prov["config_hash"]:
        return [damage(f"marked with config hash {mark.get('config_hash')}, feature set has {prov['config_hash']}",
                       mark_file, vid)]
    prefix = f"{base}/videos/{key}"
    found: dict[str, Damage] = {}
    for rel, (size, crc) in sorted((mark.get("files") or {}).items()):
        data = store.get_bytes(f"{prefix}/{rel}")
        file = f"{prefix}/{rel}"
        if data is None:
            found[file] = damage("file is missing", file, vid)
        elif len(data) != size:
            kind = "truncated" if len(data) < size else "longer than written"
            found[file] = damage(f"file is {kind}: {len(data)} bytes, {size} were written", file, vid)
        elif chunks.crc32c(data) != crc:
            found[file] = damage(f"checksum mismatch (recorded {crc:08x}, computed {chunks.crc32c(data):08x})", file, vid)
    if f"{prefix}/zarr.json" in found:
        return list(found.values())
    group = _open(store, prefix, found, damage, vid)
    if group is None:
        if not found:
            found[prefix] = damage("marked complete but its arrays are missing", prefix, vid)
        return list(found.values())
    names = ("start", "end", "text") if prov["kind"] == "text" else ("values", "times")
    arrays = {}
    for name in names:
        meta_file = f"{prefix}/{name}/zarr.json"
        if meta_file in found:
            continue
        array = _open(store, f"{prefix}/{name}", found, damage, vid)
        if array is None:
            if not any(f.startswith(f"{prefix}/{name}/") for f in found):
                found[f"{prefix}/{name}"] = damage(f"marked complete but lacks array {name}", f"{prefix}/{name}", vid)
            continue
        arrays[name] = array
        if not mark.get("files"):  # recorded sums already covered every byte: no second read
            for problem in chunks.verify_array(array, store.get_bytes):
                found.setdefault(problem.key, damage(problem.problem, problem.key, vid))
    if found or len(arrays) != len(names):
        return list(found.values())
    return _check_shapes(arrays, mark.get("frames"), prov, prefix, lambda p: damage(p, prefix, vid), store)


def _open(store: FeatureStore, path: str, found: dict, damage, vid: str):
    try:
        return store.node(path, path)
    except DamagedStoreError:
        found[f"{path}/zarr.json"] = damage("unreadable metadata (not valid Zarr JSON)", f"{path}/zarr.json", vid)
        return None


def _check_shapes(arrays: dict, n: int | None, prov: dict, prefix: str, damage, store: FeatureStore) -> list[Damage]:
    if prov["kind"] == "text":
        lengths = {name: a.shape[0] for name, a in arrays.items()}
        if len(set(lengths.values())) != 1 or (n is not None and lengths["text"] != n):
            return [damage(f"segment arrays disagree in length {lengths} (mark says {n})")]
        return []
    values, times = arrays["values"], arrays["times"]
    problems = []
    if values.ndim != 2 or values.shape[1] != prov["dim"]:
        problems.append(damage(f"values have shape {values.shape}, expected T x {prov['dim']}"))
    if str(values.dtype) != prov["dtype"]:
        problems.append(damage(f"values are {values.dtype}, feature set declares {prov['dtype']}"))
    if times.shape != (values.shape[0],) or (n is not None and values.shape[0] != n):
        problems.append(damage(f"{values.shape[0]} value rows, {times.shape} times, mark says {n} frames"))
    if not problems and times.size:
        t = chunks.read_array(times, store.get_bytes)
        if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
            problems.append(damage("times are not finite and non-decreasing"))
    return problems


def _verify_packs(store: FeatureStore, report: VerifyReport, dataset: str, feature: str) -> None:
    base = f"{dataset}/{feature}"
    for name in sorted(store.list_names(f"{base}/packed")):
        prefix = f"{base}/packed/{name}"

        def damage(problem: str, file: str | None = None) -> Damage:
            return Damage(dataset, feature, "pack", problem, file=file, pack=name)

        try:
            doc = store.get_json(f"{prefix}/zarr.json")
        except DamagedStoreError:
            report.damages.append(damage("unreadable pack metadata (not valid JSON)", f"{prefix}/zarr.json"))
            continue
        attrs = (doc or {}).get("attributes", {})
        if chunks.seal_ok(attrs) is False or not _doc_ok(doc):  # before "complete": a flip may hide that word
            report.damages.append(damage("pack metadata does not match its checksum", f"{prefix}/zarr.json"))
            continue
        if not attrs.get("complete"):
            report.warnings.append(f"{base}: pack {name} is incomplete (an interrupted pack, or one being built)")
            continue
        found: dict[str, Damage] = {}
        for rel, (size, crc) in sorted((attrs.get("files") or {}).items()):
            file = f"{prefix}/{rel}"
            data = store.get_bytes(file)
            if data is None:
                found[file] = damage("file is missing", file)
            elif len(data) != size:
                found[file] = damage(f"file is {'truncated' if len(data) < size else 'longer than written'}: "
                                     f"{len(data)} bytes, {size} were written", file)
            elif chunks.crc32c(data) != crc:
                found[file] = damage(f"checksum mismatch (recorded {crc:08x}, computed {chunks.crc32c(data):08x})", file)
        if not found:
            try:
                group = store.node(prefix, prefix)
                for array_name in ("values", "times", "offsets", "keys"):
                    if attrs.get("files"):
                        continue  # every file's recorded sum matched: no second read
                    for problem in chunks.verify_array(group[array_name], store.get_bytes):
                        found.setdefault(problem.key, damage(problem.problem, problem.key))
                if not found:
                    offsets = chunks.read_array(group["offsets"], store.get_bytes)
                    n_keys = group["keys"].shape[0]
                    if len(offsets) != n_keys + 1 or offsets[-1] != group["values"].shape[0] != group["times"].shape[0]:
                        found[prefix] = damage("its offsets, times, keys and values do not agree in length", prefix)
            except (DamagedStoreError, DamagedChunk, KeyError) as exc:
                found[prefix] = damage(f"unreadable ({exc})", prefix)
        report.damages.extend(found.values())
        if not found and not store.packs(dataset, feature).get(name, {}).get("current"):
            report.warnings.append(f"{base}: pack {name} is stale; rebuild with `affect store pack`")


def repair_store(store: FeatureStore, report: VerifyReport) -> None:
    """Apply the repairs the damages of ``report`` call for (see the module doc); records what it did."""
    store.require_writable()
    videos: dict[tuple[str, str], dict[str, str]] = {}
    for d in report.damages:
        base = f"{d.dataset}/{d.feature}"
        if d.kind == "video":
            videos.setdefault((d.dataset, d.feature), {})[d.key] = d.video
        elif d.kind == "pack":
            store.delete_dir(f"{base}/packed/{d.pack}")
            report.repaired.append(f"{base}: removed damaged pack {d.pack} (the next extract or `affect store pack` rebuilds it)")
        elif d.kind == "failure":
            store.delete_dir(f"{base}/failed/{d.key}")
            report.repaired.append(f"{base}: removed the unreadable failure record of {d.video!r}")
        elif d.kind == "group":
            store.put_group(d.file.removesuffix("/zarr.json"), {})
            report.repaired.append(f"{d.file}: rewrote the empty group document")
        else:
            report.unrepaired.append(d)
    for (dataset, feature), keys in videos.items():
        base = f"{dataset}/{feature}"
        for key in keys:
            store.delete_dir(f"{base}/done/{key}")
            store.delete_dir(f"{base}/videos/{key}")
        store.drop_complete_packs(base)  # they hold copies of the dropped videos
        names = ", ".join(repr(v) for v in list(keys.values())[:5])
        report.repaired.append(
            f"{base}: removed the marks and arrays of {len(keys)} damaged videos ({names}{' ...' if len(keys) > 5 else ''}); "
            "the next `affect extract` redoes exactly those"
        )
    logger.info("repaired %d problems in %s", len(report.damages) - len(report.unrepaired), store.location)
