"""Extractor settings: the config dataclass every extractor extends, and the config hash."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

#: Compute dtypes an extractor may offer (stored as float16 or float32).
DTYPES = ("float32", "float16", "bfloat16")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal configs give byte-equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


C = TypeVar("C", bound="ExtractorConfig")


@dataclass(frozen=True, kw_only=True)
class ExtractorConfig:
    """Settings shared by every extractor. Subclasses add the fields their model needs.

    ``device``, ``batch_size`` and ``name`` do not change the numbers an extractor writes,
    so they are left out of :meth:`config_hash`; every other field is in it.
    """

    #: torch device string (``cpu``, ``cuda``, ``cuda:1``); ignored by CPU-only extractors.
    device: str = "cpu"
    #: Segments (clips, windows of long clips, face crops) per forward pass.
    batch_size: int = 8
    #: Feature-set name prefix; None uses the extractor's registered name.
    name: str | None = None

    #: Fields that never change the output and so stay out of the hash.
    NON_OUTPUT_FIELDS: ClassVar[frozenset[str]] = frozenset({"device", "batch_size", "name"})

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not self.device.strip():
            raise ValueError(f"device must be a non-empty string such as 'cpu' or 'cuda:0'. Got {self.device!r} instead.")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1. Got {self.batch_size!r} instead.")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip() or "/" in self.name):
            raise ValueError(f"name must be None or a non-empty string without '/'. Got {self.name!r} instead.")

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-ready values (saved next to the output)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def output_fields(self) -> dict[str, Any]:
        """The fields that change the output: what the config hash covers."""
        return {k: v for k, v in self.to_dict().items() if k not in self.NON_OUTPUT_FIELDS}

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build from a mapping (a recipe table, a stored config); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown setting(s) {', '.join(map(repr, unknown))} for {cls.__name__}. "
                f"Valid settings: {', '.join(sorted(known))}."
            )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """Names of every setting of this config class."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)


def check_dtype(value: Any) -> None:
    """Validate a ``dtype`` setting."""
    if value not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}. Got {value!r} instead.")


def config_hash(
    extractor_name: str,
    extractor_version: str,
    config: ExtractorConfig,
    dependencies: Mapping[str, str] | None = None,
) -> str:
    """Hash of extractor name, version, output-changing config fields and the config hashes of
    the feature sets it reads (the store's :func:`affectstore.store.config_hash`: SHA-256 of
    canonical JSON, first 16 hex digits).

    Computable before any model is loaded, so a runner can decide what to skip cheaply.
    A local model folder is hashed as the path string; the weights' own SHA-256 is in the
    provenance. ``dependencies`` (feature name -> its config hash) enter the hash only when
    given, so an extractor that reads nothing from the store keeps the hash it always had.
    """
    from affectstore.store.provenance import config_hash as store_config_hash

    payload: dict[str, Any] = {"extractor": extractor_name, "version": extractor_version, "config": config.output_fields()}
    if dependencies:
        payload["depends_on"] = dict(dependencies)
    # canonical_json first: it rejects NaN and non-JSON values, which the store's hash would stringify.
    return store_config_hash(json.loads(canonical_json(payload)))
