"""The listing file: every folder name readers list, in one small document at the store's root.

An http(s) server cannot list folders and an object store lists slowly (one request per
thousand keys), so a store that is published carries ``affectstore.listing.json``: for
each prefix a reader lists (the root, each dataset and feature set, and their ``videos``,
``done``, ``failed`` and ``packed`` folders) the names below it. `affect store pack` writes
it (a folder store's listing is rewritten whenever it packs; a .zip holds one written with
it, plus the size and CRC-32C of every other entry, which `unpack` and `verify` check).
Read-only remote stores read it instead of listing; local folders always list live, so a
stale listing never hides a video from a local run.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from affectstore.store import chunks
from affectstore.store.errors import DamagedStoreError
from affectstore.store.records import now

if TYPE_CHECKING:
    from affectstore.store.storage import Storage
    from affectstore.store.store import FeatureStore

logger = logging.getLogger(__name__)

LISTING = "affectstore.listing.json"
_SUBFOLDERS = ("videos", "done", "failed", "packed")


def build_listing(store: "FeatureStore") -> dict[str, list[str]]:
    """Prefix -> child names of every folder a reader of ``store`` lists (from a live listing)."""
    names: dict[str, list[str]] = {"": sorted(n for n in store.list_names("") if n != LISTING)}
    for dataset in store.datasets():
        names[dataset] = sorted(store.list_names(dataset))
        for feature in store.features(dataset):
            base = f"{dataset}/{feature}"
            names[base] = sorted(store.list_names(base))
            for sub in _SUBFOLDERS:
                found = store.list_names(f"{base}/{sub}")
                if sub == "done":
                    found = store.done_keys(dataset, feature)
                names[f"{base}/{sub}"] = sorted(found)
    return names


def restrict(names: dict[str, list[str]], keys: list[str]) -> dict[str, list[str]]:
    """``names`` cut down to the children that hold at least one of ``keys`` (what an archive holds)."""
    present: set[tuple[str, str]] = set()
    for key in keys:
        parts = key.split("/")
        for i in range(len(parts) - 1):
            present.add(("/".join(parts[:i]), parts[i]))
    return {prefix: [n for n in children if (prefix, n) in present] for prefix, children in names.items()}


def listing_document(names: dict[str, list[str]], files: dict[str, list[int]] | None = None) -> bytes:
    """The listing file's bytes: names, optional per-file ``[size, crc32c]``, sealed."""
    doc: dict[str, Any] = {"format": 1, "created": now(), "names": names}
    if files is not None:
        doc["files"] = files
    return json.dumps(chunks.seal(doc), sort_keys=True, separators=(",", ":")).encode("utf-8")


def write_listing(store: "FeatureStore") -> None:
    """Write (replace) the listing file of the writable store ``store`` from a live listing."""
    store.require_writable()
    store.storage.put(LISTING, listing_document(build_listing(store)), atomic=True)


def parse_listing(data: bytes, where: str) -> dict[str, Any]:
    """The listing document in ``data``; `DamagedStoreError` when it is not valid or its seal fails."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedStoreError(f"{where}: {LISTING} is unreadable ({exc}). Publish the store again.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("names"), dict) or chunks.seal_ok(doc) is False:
        raise DamagedStoreError(f"{where}: {LISTING} does not match its checksum. Publish the store again.")
    return doc


def read_listing(storage: "Storage") -> dict[str, list[str]] | None:
    """The names of ``storage``'s listing file, None when it has none (then it lists live)."""
    data = storage.get(LISTING)
    if data is None:
        return None
    doc = parse_listing(data, storage.location)
    logger.debug("%s: folder names from its listing file of %s", storage.location, doc.get("created"))
    return {str(k): [str(n) for n in v] for k, v in doc["names"].items()}
