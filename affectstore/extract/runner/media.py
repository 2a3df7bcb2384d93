"""What a run records about its input media, and the check that one store group holds one dataset.

Every feature set a run creates records the dataset it was made from (adapter and root
folder). A second dataset read by the same adapter (two ``clips`` folders) would otherwise
land in the same group and mix its videos with the first one's; the run refuses that and
names ``--dataset-name``. The folder's name is compared, not its full path, so a store
extracted further on another machine (another mount point) resumes.

Each completion mark records the input files of its video (path below the root, size, and
with ``--hash-media`` their SHA-256); with hashing the feature set's provenance also holds
one SHA-256 over the whole selection, so a colleague can check they have the same media.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from affectstore.extract.errors import ExtractionError


def dataset_provenance(adapter: Any) -> dict[str, Any]:
    """The dataset a feature set is made from: adapter name, root folder (and its name)."""
    root = getattr(adapter, "root", None)
    return {"adapter": getattr(adapter, "name", type(adapter).__name__), "root": str(Path(root).resolve()) if root else None,
            "root_name": root.name if root is not None else None}


def check_same_dataset(store: Any, group: str, adapter: Any, features: list[str]) -> None:
    """Refuse to extract ``adapter``'s dataset into store group ``group`` when it holds another dataset's features."""
    ours = dataset_provenance(adapter)
    for feature in features:
        theirs = store.provenance(group, feature).get("dataset")
        if not isinstance(theirs, dict):
            continue  # made before datasets were recorded
        if (theirs.get("adapter"), theirs.get("root_name")) != (ours["adapter"], ours["root_name"]):
            raise ExtractionError(
                f"Store group {group!r} of {store.location} holds {feature} of dataset {theirs.get('adapter')} at "
                f"{theirs.get('root')}; this run reads {ours['adapter']} at {ours['root']}. Pass --dataset-name NAME "
                f"(e.g. --dataset-name {ours['root_name'] or group + '2'}) to keep the two datasets apart."
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MediaRecorder:
    """Per video: the input files it is computed from, with sizes (and SHA-256 with ``hash_media``),
    recorded in each completion mark; cached, so several outputs of one video hash it once."""

    def __init__(self, adapter: Any, hash_media: bool = False) -> None:
        self.root = getattr(adapter, "root", None)
        self.hash_media = hash_media
        self._cache: dict[str, dict[str, Any]] = {}

    def record(self, entry: Any) -> dict[str, Any]:
        """``{"files": [{"path", "size"[, "sha256"]}]}`` of ``entry``'s video and audio files (those that exist)."""
        if entry.id in self._cache:
            return self._cache[entry.id]
        files = []
        for path in dict.fromkeys(p for p in (entry.video, entry.audio) if p is not None):
            path = Path(path)
            try:
                size = path.stat().st_size
            except OSError:
                continue  # decoding reports the missing file
            rel = path.relative_to(self.root).as_posix() if self.root is not None and path.is_relative_to(self.root) else path.name
            item: dict[str, Any] = {"path": rel, "size": size}
            if self.hash_media and path.is_file():
                item["sha256"] = _sha256(path)
            files.append(item)
        self._cache[entry.id] = {"files": files}
        return self._cache[entry.id]


def dataset_digest(recorder: MediaRecorder, entries: list[Any]) -> dict[str, Any]:
    """Total media bytes of ``entries`` and (with hashing) one SHA-256 over every video's id and file hashes:
    the fingerprint of the dataset root's media."""
    total, digest = 0, hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.id):
        record = recorder.record(entry)
        for item in record["files"]:
            total += item["size"]
            digest.update(f"{entry.id}\t{item['path']}\t{item['size']}\t{item.get('sha256', '')}\n".encode())
    out: dict[str, Any] = {"media_bytes": total, "videos": len(entries)}
    if recorder.hash_media:
        out["sha256"] = digest.hexdigest()
    return out
