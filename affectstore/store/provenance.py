"""Provenance of a feature set: what made its arrays, with which config, where and when."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import socket
from datetime import datetime, timezone
from typing import Any

# Fields every feature set must declare; trainers read dims and rates from here.
REQUIRED = ("extractor", "config_hash", "dim", "dtype", "kind")
KINDS = ("frames", "video", "segments", "text")
DTYPES = ("float16", "float32")
# Libraries whose versions can change the numbers a feature set holds.
_TRACKED_LIBRARIES = ("affectstore", "numpy", "zarr", "torch", "transformers", "opensmile", "av",
                      "faster-whisper", "ctranslate2", "sentence-transformers", "onnxruntime")


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 (hex, first 16 chars) of the canonical JSON of `config`: key order and whitespace do not matter."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can change extracted values."""
    versions = {"python": platform.python_version()}
    for name in _TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def complete_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
    """Validate `provenance` and add creation time, host and library versions where missing."""
    missing = [k for k in REQUIRED if k not in provenance]
    if missing:
        raise ValueError(
            f"Feature provenance lacks {', '.join(missing)}; every feature set must declare {', '.join(REQUIRED)}."
        )
    if provenance["kind"] not in KINDS:
        raise ValueError(f"Feature kind must be one of {', '.join(KINDS)}. Got {provenance['kind']!r} instead.")
    if provenance["kind"] != "text" and provenance["dtype"] not in DTYPES:
        raise ValueError(f"Feature dtype must be one of {', '.join(DTYPES)}. Got {provenance['dtype']!r} instead.")
    dim = provenance["dim"]
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
        raise ValueError(f"Feature dim must be an int >= 0. Got {dim!r} instead.")
    rate = provenance.get("rate")
    if rate is not None and (not isinstance(rate, (int, float)) or rate <= 0):
        raise ValueError(f"Feature rate must be a positive number of Hz, or None for per-video vectors. Got {rate!r} instead.")
    out = dict(provenance)
    out.setdefault("rate", None)
    out.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    out.setdefault("host", socket.gethostname())
    # One key for library versions: the tracked ones, plus whatever the extractor named itself.
    out["libraries"] = {**library_versions(), **(out.pop("library_versions", None) or {}), **(out.get("libraries") or {})}
    # Round-trip through JSON now, so a value that cannot be stored fails here with its name.
    try:
        return json.loads(json.dumps(out))
    except TypeError as exc:
        raise ValueError(f"Feature provenance must be JSON-serialisable: {exc}") from exc


def model_name(provenance: dict[str, Any]) -> str | None:
    """The model id a feature set was made with, wherever its extractor recorded it."""
    model = provenance.get("model")
    if isinstance(model, dict):
        return model.get("id")
    return provenance.get("model_id") or model
