"""What a run folder records about how it was made, and warnings shown once per run.

`run_environment(store)` gives the facts `run.json` keeps next to the recipe: affectstore's
version, the versions of the libraries that decide the numbers, the UTC time and the
store's absolute location (a URL stays as given).

`warnings_once()` is a context manager (`warnings_once_per_call` the decorator): inside it, a warning with the same text is shown
once however many times the code paths (one per target, fold or sweep row) log it.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import platform
from importlib import metadata
from pathlib import Path

LIBRARIES = ("numpy", "scipy", "scikit-learn", "torch", "zarr", "safetensors", "matplotlib")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def store_url(store) -> str:
    """The store's absolute path, or its URL unchanged."""
    loc = str(getattr(store, "location", store))
    if "://" in loc:
        return loc
    return str(Path(loc).resolve())


def run_environment(store) -> dict:
    """affectstore version, library versions, UTC timestamp and absolute store URL."""
    import affectstore

    return {
        "affectstore_version": getattr(affectstore, "__version__", None),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "python": platform.python_version(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "store_url": store_url(store),
    }


class _Once(logging.Filter):
    """Passes a WARNING-or-higher record only the first time its text is seen."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[tuple[str, str], logging.LogRecord] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith("affectstore"):
            return True
        key = (record.name, record.getMessage())
        # The same record reaches every handler: it passes all of them, a later repeat none.
        return self.seen.setdefault(key, record) is record


@contextlib.contextmanager
def warnings_once():
    """Show each distinct affectstore warning once while the block runs.

    The filter sits on the handlers (root's and logging's last-resort one), because a
    filter on a logger does not apply to records of its child loggers.
    """
    once = _Once()
    handlers = list(logging.getLogger().handlers) + ([logging.lastResort] if logging.lastResort else [])
    for h in handlers:
        h.addFilter(once)
    try:
        yield once
    finally:
        for h in handlers:
            h.removeFilter(once)


def warnings_once_per_call(func):
    """Decorator: run ``func`` inside `warnings_once` (one run = one call)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings_once():
            return func(*args, **kwargs)

    return wrapper
