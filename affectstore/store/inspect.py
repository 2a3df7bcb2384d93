"""Plain functions behind `affect store info|ls|pack`: summaries of a store, and packing it (verify: verify.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from affectstore.store.provenance import model_name
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


def pack_store(store: FeatureStore, dataset: str | None = None, feature: str | None = None) -> list[tuple[str, str, Any]]:
    """Build the packed read copy of every (or one dataset's, or one) feature set; returns what was packed."""
    done = []
    datasets = [dataset] if dataset else store.datasets()
    for ds in datasets:
        for feat in [feature] if feature else store.features(ds):
            done.append((ds, feat, store.pack(ds, feat)))
    return done
