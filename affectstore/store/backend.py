"""Opening the storage under a store: a local folder, a read-only .zip archive, or an fsspec URL.

Every way a location can be wrong ends here as a `StoreError` that says what the path is
and what to do: a file that is not a store, a non-empty folder that is not one (never
turned into a store in place), a .zip opened for writing, a damaged or hostile archive, a
URL whose file system is not installed.
"""

from __future__ import annotations

import collections
import os
import re
import zipfile
from pathlib import Path

from zarr.storage import FsspecStore, LocalStore, ZipStore

from affectstore.store.errors import NotAStoreError, StoreError

# Packages that provide each remote file system (fsspec's own error names them too).
_REMOTE_PACKAGES = {"http": "aiohttp requests", "https": "aiohttp requests", "s3": "s3fs", "gs": "gcsfs",
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
        f"`affect store pack {folder} --zip {location}`."
    )


def open_backend(location: str | os.PathLike, read_only: bool, storage_options: dict | None = None):
    """The zarr store under ``location``; raises `StoreError` subclasses with the fix in the message."""
    text = os.fspath(location)
    if "://" in text and not text.startswith("file://"):
        return _open_remote(text, read_only, storage_options)
    path = Path(text.removeprefix("file://")).expanduser()
    if path.suffix.lower() == ".zip":
        if not read_only:
            raise StoreError(zip_refusal(text))
        return open_zip(path, text)
    if path.exists() and not path.is_dir():
        raise NotAStoreError(
            f"{text} is a file, not a store: a store is a folder (e.g. runs/emi.zarr) or a .zip archive made by "
            "`affect store pack FOLDER --zip FILE.zip`. Check the path."
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
    return LocalStore(path, read_only=read_only)


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
            f"`affect store pack FOLDER --zip {text}`."
        ) from exc
    bad = unsafe_entries(names)
    if bad:
        raise NotAStoreError(
            f"{text} holds {len(bad)} entries that are absolute or leave the store (e.g. {bad[0]!r}); refusing to "
            "open it. Open only archives made by `affect store pack FOLDER --zip FILE.zip`."
        )
    twice = [n for n, k in collections.Counter(names).items() if k > 1]
    if twice:
        raise NotAStoreError(
            f"{text} holds {len(twice)} entries twice (e.g. {twice[0]!r}), so what it contains is ambiguous; "
            "refusing to open it. Pack the store again with `affect store pack FOLDER --zip FILE.zip`."
        )
    return ZipStore(path, mode="r")


def _open_remote(text: str, read_only: bool, storage_options: dict | None) -> FsspecStore:
    scheme = text.split("://", 1)[0].lower()
    if not read_only and scheme in _READ_ONLY_SCHEMES:
        raise StoreError(f"{text}: {scheme}:// stores are read-only; write to a folder or an object store (s3://, gs://).")
    try:
        import fsspec  # noqa: F401 - the dist extra
    except ImportError:
        raise StoreError(f"{text}: remote stores need fsspec; install it with `pip install 'affectstore[dist]'`.") from None
    try:
        return FsspecStore.from_url(text, storage_options=storage_options, read_only=read_only)
    except ImportError as exc:
        package = _REMOTE_PACKAGES.get(scheme, f"the fsspec implementation of {scheme}://")
        raise StoreError(
            f"{text}: the {scheme}:// file system is not installed ({exc}). Install it with `pip install {package}`."
        ) from None
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise StoreError(
                f"{text}: unknown URL scheme {scheme!r}. Use a local folder, a .zip file, or an fsspec URL "
                "(file://, memory://, http(s)://, s3://, gs://, az://)."
            ) from None
        raise StoreError(f"{text}: cannot open the store ({exc}).") from None
    except Exception as exc:  # noqa: BLE001 - network and credential errors of any file system
        raise StoreError(f"{text}: cannot open the store ({type(exc).__name__}: {exc}).") from None
