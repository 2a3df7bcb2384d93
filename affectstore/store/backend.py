"""Opening the storage under a store: a local folder, a read-only .zip archive, or an fsspec URL.

Every way a location can be wrong ends here as a `StoreError` that says what the path is
and what to do: a file that is not a store, a non-empty folder that is not one (never
turned into a store in place), a .zip opened for writing, a damaged or hostile archive, a
URL whose file system is not installed. What comes back is a `storage.Storage`: the
one seam the rest of the store talks to.

Keys go into http(s) URLs percent-encoded (`QuotedHTTPStore`): a video key holds ``%``
escapes (``%2F`` for the ``/`` of an id, see keys.py) and a server decodes a request path
once, so the key's own ``%`` must travel as ``%25`` for the server to find the file.
"""

from __future__ import annotations

import collections
import os
import re
import zipfile
from pathlib import Path

from urllib.parse import quote

from zarr.storage import FsspecStore, LocalStore, ZipStore

from affectstore.store.errors import NotAStoreError, StoreError
from affectstore.store.storage import LocalStorage, Storage, ZipStorage

# Packages that provide each remote file system (fsspec's own error names them too).
_REMOTE_PACKAGES = {"http": "'affectstore[http]'", "https": "'affectstore[http]'", "s3": "'affectstore[s3]'", "gs": "gcsfs",
                    "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "sftp": "paramiko"}
_READ_ONLY_SCHEMES = ("http", "https")
_DRIVE = re.compile(r"^[A-Za-z]:")


def zip_refusal(location: str) -> str:
    """Why a .zip store is never written in place, and the commands that do the job."""
    path = Path(location)
    folder = path.with_suffix(".zarr")
    return (
        f"{location} is a .zip store: affectstore reads it but never writes it in place (an interrupted write "
        f"would leave an unreadable archive). Write to a folder store instead (extract with --store {folder}, or "
        f"change the folder the archive was packed from), then pack it into one file with "
        f"`affect store pack {folder} {location}`."
    )


def open_backend(location: str | os.PathLike, read_only: bool, storage_options: dict | None = None) -> Storage:
    """The storage under ``location``; raises `StoreError` subclasses with the fix in the message."""
    text = os.fspath(location)
    if "://" in text and not text.startswith("file://"):
        if text.split("?", 1)[0].lower().endswith(".zip"):
            if not read_only:
                raise StoreError(zip_refusal(text))
            return _open_remote_zip(text, storage_options)
        storage = Storage(_open_remote(text, read_only, storage_options), text, read_only)
        storage.can_list = not isinstance(storage.zarr_store, QuotedHTTPStore)
        return storage
    path = Path(text.removeprefix("file://")).expanduser()
    if path.suffix.lower() == ".zip":
        if not read_only:
            raise StoreError(zip_refusal(text))
        return ZipStorage(open_zip(path, text), text, path)
    if path.exists() and not path.is_dir():
        raise NotAStoreError(
            f"{text} is a file, not a store: a store is a folder (e.g. runs/emi.zarr) or a .zip archive made by "
            "`affect store pack FOLDER FILE.zip`. Check the path."
        )
    if read_only and not path.is_dir():
        raise NotAStoreError(
            f"No store at {text}: the folder does not exist. Check the path, or create a store with "
            "`affect extract ... --store PATH`."
        )
    if not read_only and path.is_dir() and not (path / "zarr.json").exists():
        first = next(iter(sorted(path.iterdir())), None)
        if first is not None:
            raise NotAStoreError(
                f"{text} is a folder that holds other files (e.g. {first.name!r}) and no store; refusing to turn it "
                f"into a store in place. Pass a new or empty folder, e.g. --store {path / 'features.zarr'}."
            )
    return LocalStorage(LocalStore(path, read_only=read_only), text, read_only, path)


def unsafe_entries(names: list[str]) -> list[str]:
    """Archive entry names that are absolute or would leave the store folder (``..``, drive letters, backslashes)."""
    bad = []
    for name in names:
        parts = name.split("/")
        if (
            name.startswith("/")
            or "\\" in name
            or "\x00" in name
            or _DRIVE.match(name)
            or any(p in ("..", ".") for p in parts)
            or "" in parts[:-1]
        ):
            bad.append(name)
    return bad


def open_zip(path: Path, text: str) -> ZipStore:
    """A .zip store, read-only, after checking that the archive is whole and every entry stays inside it."""
    if not path.is_file():
        raise NotAStoreError(
            f"No store at {text}: " + ("it is a folder, not a .zip file." if path.is_dir() else "the file does not exist.")
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise NotAStoreError(
            f"{text} is not a readable zip archive ({exc}): it may have been cut short by an interrupted copy or "
            "write, or it is not a zip at all. Copy it again, or pack a folder store into one with "
            f"`affect store pack FOLDER {text}`."
        ) from exc
    _check_names(text, names)
    return ZipStore(path, mode="r")


def _check_names(text: str, names: list[str]) -> None:
    """Refuse an archive with entries that are absolute, leave the store, or appear twice."""
    bad = unsafe_entries(names)
    if bad:
        raise NotAStoreError(
            f"{text} holds {len(bad)} entries that are absolute or leave the store (e.g. {bad[0]!r}); refusing to "
            "open it. Open only archives made by `affect store pack FOLDER FILE.zip`."
        )
    twice = [n for n, k in collections.Counter(names).items() if k > 1]
    if twice:
        raise NotAStoreError(
            f"{text} holds {len(twice)} entries twice (e.g. {twice[0]!r}), so what it contains is ambiguous; "
            "refusing to open it. Pack the store again with `affect store pack FOLDER FILE.zip`."
        )


class QuotedHTTPStore(FsspecStore):
    """An http(s) store whose keys are percent-encoded into the URL path (see the module doc)."""

    async def get(self, key, prototype, byte_range=None):
        return await super().get(quote(key, safe="/"), prototype, byte_range)

    async def exists(self, key: str) -> bool:
        return await super().exists(quote(key, safe="/"))

    async def get_partial_values(self, prototype, key_ranges):
        return await super().get_partial_values(prototype, [(quote(k, safe="/"), r) for k, r in key_ranges])

    async def list_dir(self, prefix: str):
        raise NotImplementedError("http(s) servers do not list folders")
        yield  # an async generator, like the base class

    async def list_prefix(self, prefix: str):
        raise NotImplementedError("http(s) servers do not list folders")
        yield


def _open_remote_zip(text: str, storage_options: dict | None) -> Storage:
    """A .zip store at a URL, read with range requests through fsspec's zip file system."""
    _need_fsspec(text)
    import fsspec
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

    scheme = text.split("://", 1)[0].lower()
    try:
        zipfs = fsspec.filesystem("zip", fo=text, target_options=storage_options or {})
        names = [info.filename for info in zipfs.zip.infolist()]
    except ImportError as exc:
        raise StoreError(_missing_fs(text, scheme, exc)) from None
    except Exception as exc:  # noqa: BLE001 - network errors and damaged archives of any file system
        raise NotAStoreError(f"{text}: cannot read it as a zip archive ({type(exc).__name__}: {exc}).") from None
    _check_names(text, names)
    store = FsspecStore(AsyncFileSystemWrapper(zipfs, asynchronous=True), path="", read_only=True)
    storage = Storage(store, text, True)
    storage.is_zip = True
    storage.refusal = zip_refusal(text)
    return storage


def _need_fsspec(text: str) -> None:
    try:
        import fsspec  # noqa: F401 - the http / s3 extras
    except ImportError:
        raise StoreError(f"{text}: remote stores need fsspec; install it with `pip install 'affectstore[http]'`.") from None


def _missing_fs(text: str, scheme: str, exc: Exception) -> str:
    package = _REMOTE_PACKAGES.get(scheme, f"the fsspec implementation of {scheme}://")
    return f"{text}: the {scheme}:// file system is not installed ({exc}). Install it with `pip install {package}`."


def _open_remote(text: str, read_only: bool, storage_options: dict | None) -> FsspecStore:
    scheme = text.split("://", 1)[0].lower()
    if not read_only and scheme in _READ_ONLY_SCHEMES:
        raise StoreError(f"{text}: {scheme}:// stores are read-only; write to a folder or an object store (s3://, gs://).")
    _need_fsspec(text)
    kind = QuotedHTTPStore if scheme in _READ_ONLY_SCHEMES else FsspecStore
    try:
        return kind.from_url(text.rstrip("/"), storage_options=storage_options, read_only=read_only)
    except ImportError as exc:
        raise StoreError(_missing_fs(text, scheme, exc)) from None
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise StoreError(
                f"{text}: unknown URL scheme {scheme!r}. Use a local folder, a .zip file, or an fsspec URL "
                "(file://, memory://, http(s)://, s3://, gs://, az://)."
            ) from None
        raise StoreError(f"{text}: cannot open the store ({exc}).") from None
    except Exception as exc:  # noqa: BLE001 - network and credential errors of any file system
        raise StoreError(f"{text}: cannot open the store ({type(exc).__name__}: {exc}).") from None
