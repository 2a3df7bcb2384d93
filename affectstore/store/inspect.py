"""Plain functions behind `affect store info|ls|pack`: summaries of a store, and packing it (verify: verify.py)."""

from __future__ import annotations

from typing import Any

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
        rate = "per video" if p.get("rate") is None else f"{p['rate']:g} Hz"
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
    return "\n".join(lines)


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
