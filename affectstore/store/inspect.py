"""Plain functions behind `affect store info|ls|verify`: summaries and structural checks of a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from affectstore.store.keys import decode_key
from affectstore.store.provenance import REQUIRED, model_name
from affectstore.store.store import FeatureStore


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def store_info(store: FeatureStore) -> str:
    """Datasets, feature sets with provenance, counts of complete and failed videos, size on disk."""
    lines = [f"store {store.location} ({_human_bytes(store.size_bytes())} on disk)"]
    sets = store.feature_sets()
    if not sets:
        lines.append("  (empty: no feature sets yet)")
    current = None
    for info in sets:
        if info.dataset != current:
            current = info.dataset
            lines.append(f"dataset {current}")
        p = info.provenance
        rate = {"video": "per video", "segments": "rows at their own times", "text": "timed text"}.get(p["kind"])
        rate = f"{p['rate']:g} Hz" if p.get("rate") is not None else rate or "per video"
        model = model_name(p)
        lines.append(
            f"  {info.feature}: {info.n_complete} complete, {info.n_failed} failed | {p['kind']}, dim {p['dim']}, "
            f"{rate}, {p['dtype']}"
        )
        lines.append(
            f"      extractor {p['extractor']} {p.get('extractor_version', '')}".rstrip()
            + (f", model {model}" if model else "")
            + f", config {p['config_hash']}, made {p.get('created', '?')} on {p.get('host', '?')}"
        )
        if p["kind"] == "video" and p.get("columns") and len(p["columns"]) <= 8 and info.n_complete:
            lines.append("      " + _column_means(store, info.dataset, info.feature, p["columns"], info.n_complete))
    return "\n".join(lines)


def _column_means(store: FeatureStore, dataset: str, feature: str, columns: list[str], n: int) -> str:
    """Means of a small per-video feature's columns (a face coverage, a speech VAD vector)."""
    table = store.load_feature(dataset, feature)
    means = np.nanmean(np.asarray(table.values, dtype=np.float64), axis=0)
    return "mean over " + f"{n} videos: " + ", ".join(f"{c} {m:.3g}" for c, m in zip(columns, means, strict=True))


def list_videos(store: FeatureStore, dataset: str, feature: str, failed: bool = False) -> str:
    """One line per complete video (id and frame count), or per failed video (id, stage, reason)."""
    if failed:
        rows = [f"{f.video_id}\t{f.stage}\t{f.reason}" for f in store.failures(dataset, feature)]
        return "\n".join(rows) if rows else f"no failed videos in {dataset}/{feature}"
    marks = store.marks(dataset, feature)
    rows = [f"{m['id']}\t{m.get('frames', '?')} frames" for m in marks.values()]
    return "\n".join(rows) if rows else f"no complete videos in {dataset}/{feature}"


@dataclass
class VerifyReport:
    """What `verify_store` found: errors break the store's promises, warnings do not."""

    checked: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self) -> str:
        lines = [f"{'ERROR' if self.errors else 'OK'}: checked {self.checked} complete videos, "
                 f"{len(self.errors)} errors, {len(self.warnings)} warnings"]
        lines += [f"error: {e}" for e in self.errors]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _check_video(store: FeatureStore, dataset: str, feature: str, key: str, mark: dict, prov: dict) -> list[str]:
    where = f"{dataset}/{feature} video {mark.get('id', key)!r}"
    if decode_key(key) not in (None, mark.get("id")):
        return [f"{where}: its key {key!r} does not decode to the id in its mark"]
    if mark.get("config_hash") != prov["config_hash"]:
        return [f"{where}: marked with config hash {mark.get('config_hash')}, feature set has {prov['config_hash']}"]
    group = store.video_group(dataset, feature, key)
    if group is None:
        return [f"{where}: marked complete but its arrays are missing"]
    names = ("start", "end", "text") if prov["kind"] == "text" else ("values", "times")
    missing = [n for n in names if n not in group]
    if missing:
        return [f"{where}: marked complete but lacks array(s) {', '.join(missing)}"]
    n = mark.get("frames")
    problems = []
    if prov["kind"] == "text":
        lengths = {name: group[name].shape[0] for name in names}
        if len(set(lengths.values())) != 1 or (n is not None and lengths["text"] != n):
            problems.append(f"{where}: segment arrays disagree in length {lengths} (mark says {n})")
        return problems
    values, times = group["values"], group["times"]
    if values.ndim != 2 or values.shape[1] != prov["dim"]:
        problems.append(f"{where}: values have shape {values.shape}, expected T x {prov['dim']}")
    if str(values.dtype) != prov["dtype"]:
        problems.append(f"{where}: values are {values.dtype}, feature set declares {prov['dtype']}")
    if times.shape != (values.shape[0],) or (n is not None and values.shape[0] != n):
        problems.append(f"{where}: {values.shape[0]} value rows, {times.shape} times, mark says {n} frames")
    t = times[:]
    if len(t) and (not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0)):
        problems.append(f"{where}: times are not finite and non-decreasing")
    return problems


def verify_store(store: FeatureStore) -> VerifyReport:
    """Check structure and completion marks of every feature set (checksums come with sharing)."""
    report = VerifyReport()
    for dataset in store.datasets():
        for feature in store.features(dataset):
            try:
                prov = store.provenance(dataset, feature)
            except Exception as exc:  # a damaged feature group must not stop the others' checks
                report.errors.append(f"{dataset}/{feature}: unreadable provenance ({exc})")
                continue
            lacking = [k for k in REQUIRED if k not in prov]
            if lacking:
                report.errors.append(f"{dataset}/{feature}: provenance lacks {', '.join(lacking)}")
                continue
            marks = store.marks(dataset, feature)
            for key, mark in marks.items():
                report.checked += 1
                report.errors.extend(_check_video(store, dataset, feature, key, mark, prov))
            unmarked = sorted(set(store.video_keys(dataset, feature)) - set(marks))
            if unmarked:
                names = ", ".join(repr(decode_key(k) or k) for k in unmarked[:3])
                report.warnings.append(
                    f"{dataset}/{feature}: {len(unmarked)} videos have arrays but no completion mark "
                    f"(an interrupted run; they are ignored and redone): {names}{' ...' if len(unmarked) > 3 else ''}"
                )
            for name, attrs in store.packs(dataset, feature).items():
                if not attrs.get("complete"):
                    report.warnings.append(f"{dataset}/{feature}: pack {name} is incomplete (an interrupted pack)")
                elif not attrs["current"]:
                    report.warnings.append(
                        f"{dataset}/{feature}: pack {name} is stale; rebuild with `affect store pack`"
                    )
    return report


def pack_store(store: FeatureStore, dataset: str | None = None, feature: str | None = None) -> list[tuple[str, str, Any]]:
    """Build the packed read copy of every (or one dataset's, or one) feature set; returns what was packed."""
    done = []
    datasets = [dataset] if dataset else store.datasets()
    for ds in datasets:
        for feat in [feature] if feature else store.features(ds):
            done.append((ds, feat, store.pack(ds, feat)))
    return done
