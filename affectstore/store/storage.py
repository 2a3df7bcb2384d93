"""The one seam between the feature store and its bytes: a local folder, or any zarr store.

`FeatureStore` and its modules never ask what kind of storage they sit on; they call a
`Storage`: `get` / `put` / `delete_dir` / `list_names` / `size`. Two implementations:

- `LocalStorage`: a folder on a local (or shared) file system. Plain file calls (zarr's
  event-loop round trip cost more than the read), atomic puts by rename, live listings.
  `local_root` is set, which lets the bulk readers read chunk files straight into their
  buffers (rawio.py) and lets claims work.
- `Storage` itself: any zarr store (a .zip archive, fsspec URLs: http(s), s3, memory ...),
  through zarr's public store API. http(s) servers cannot list folders: there (and in
  archives, where it is exact) the store's listing file (`listing.py`) answers every
  listing, so no server has to list directories. Object stores list live, so a reader
  never misses a video written after the listing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from zarr.abc.store import Store

from affectstore.store import chunks, rawio
from affectstore.store.chunks import sync
from affectstore.store.errors import StoreError

logger = logging.getLogger(__name__)


class Storage:
    """What the feature store needs from the storage under it (see the module doc)."""

    local_root: Path | None = None
    is_zip: bool = False
    can_list: bool = True  # False for http(s): servers have no listing API

    def __init__(self, zarr_store: Store, location: str, read_only: bool) -> None:
        self.zarr_store = zarr_store
        self.location = location
        self.read_only = read_only
        self.listing: dict[str, list[str]] | None = None  # set by the store when it reads a listing file
        self.refusal: str | None = None  # why writing is refused (a .zip), None when it is allowed

    def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, None when absent."""
        buf = sync(self.zarr_store.get(key, prototype=chunks.PROTOTYPE))
        return None if buf is None else buf.to_bytes()

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The bytes under each of ``keys``, fetched concurrently (one round trip's latency, not one per key).

        Sequential for archives: a zip over http reads through one shared file object.
        """
        if self.is_zip or len(keys) < 2:
            return [self.get(k) for k in keys]
        import asyncio

        async def fetch() -> list:
            return await asyncio.gather(*(self.zarr_store.get(k, prototype=chunks.PROTOTYPE) for k in keys))

        return [None if buf is None else buf.to_bytes() for buf in sync(fetch())]

    def exists(self, key: str) -> bool:
        """True when ``key`` holds bytes."""
        return bool(sync(self.zarr_store.exists(key)))

    def put(self, key: str, data: bytes, *, only_new: bool = False, atomic: bool = False) -> None:
        """Store ``data`` under ``key``; ``only_new`` leaves an existing key alone. Object stores
        put whole objects, so every put is atomic there."""
        buf = chunks.buffer(data)
        sync(self.zarr_store.set_if_not_exists(key, buf) if only_new else self.zarr_store.set(key, buf))

    def put_many(self, files: list[tuple[str, bytes]]) -> None:
        """Store every ``(key, bytes)`` (concurrently where the backend allows)."""
        import asyncio

        async def put_all() -> None:
            await asyncio.gather(*(self.zarr_store.set(k, chunks.buffer(v)) for k, v in files))

        sync(put_all())

    def delete_dir(self, prefix: str) -> None:
        """Delete everything under ``prefix`` (a missing prefix is fine)."""
        sync(self.zarr_store.delete_dir(prefix))

    def list_names(self, prefix: str) -> list[str]:
        """Names of the child nodes under ``prefix`` (its own zarr.json left out)."""
        if self.listing is not None:
            return list(self.listing.get(prefix, []))

        async def collect() -> list[str]:
            return [k async for k in self.zarr_store.list_dir(prefix) if k != "zarr.json"]

        try:
            return sync(collect())
        except NotImplementedError:
            raise StoreError(
                f"{self.location} cannot list its folders (an http(s) server) and holds no listing file. Publish "
                "the store after `affect store pack STORE` (which writes the listing), or serve its .zip made by "
                "`affect store pack STORE OUT.zip`."
            ) from None

    def list_files(self, prefix: str) -> list[str]:
        """Every key below ``prefix`` (for copying a video or a pack)."""

        async def collect() -> list[str]:
            return [k async for k in self.zarr_store.list_prefix(prefix)]

        return sorted(sync(collect()))

    def size(self) -> int | None:
        """Bytes the store takes, None where the backend cannot tell cheaply."""
        try:
            return int(sync(self.zarr_store.getsize_prefix("")))
        except (NotImplementedError, AttributeError, TypeError, OSError, StoreError):
            return None


class LocalStorage(Storage):
    """A folder store: plain file calls, atomic puts by rename (see the module doc)."""

    def __init__(self, zarr_store: Store, location: str, read_only: bool, root: Path) -> None:
        super().__init__(zarr_store, location, read_only)
        self.local_root = Path(root)

    def get(self, key: str) -> bytes | None:
        try:
            return (self.local_root / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self.get(k) for k in keys]  # a local read is faster than any thread hand-off

    def exists(self, key: str) -> bool:
        return (self.local_root / key).is_file()

    def put(self, key: str, data: bytes, *, only_new: bool = False, atomic: bool = False) -> None:
        path = self.local_root / key
        if only_new:
            rawio.write_exclusive(path, data)
        elif atomic:
            rawio.write_atomic(path, data)
        else:
            rawio.write_files(self.local_root, [(key, data)])

    def put_many(self, files: list[tuple[str, bytes]]) -> None:
        rawio.write_files(self.local_root, files)

    def delete_dir(self, prefix: str) -> None:
        rawio.remove_tree(self.local_root / prefix)

    def list_names(self, prefix: str) -> list[str]:
        folder = self.local_root / prefix
        try:
            return [e.name for e in os.scandir(folder) if e.name != "zarr.json" and not e.name.endswith(".partial")]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list_files(self, prefix: str) -> list[str]:
        base = self.local_root / prefix
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.local_root).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.endswith(".partial")
        )

    def size(self) -> int | None:
        total = 0
        for dirpath, _, files in os.walk(self.local_root):
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        return total


class ZipStorage(Storage):
    """A .zip archive on a local disk: read-only by design (see archive.py)."""

    is_zip = True

    def __init__(self, zarr_store: Store, location: str, path: Path) -> None:
        super().__init__(zarr_store, location, True)
        self.path = path
        from affectstore.store.backend import zip_refusal

        self.refusal = zip_refusal(location)

    def size(self) -> int | None:
        return self.path.stat().st_size


def describe(storage: Any) -> str:
    """One word for the kind of storage (for logs and `store info`)."""
    if storage.local_root is not None:
        return "folder"
    return "zip" if storage.is_zip else "remote"
