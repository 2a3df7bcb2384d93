"""Errors raised by the feature store; each message names the bad value and the valid ones."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every feature-store error."""


class NotAStoreError(StoreError):
    """The path does not exist or holds no affectstore store."""


class UnknownDatasetError(StoreError, KeyError):
    """A dataset name that the store does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownFeatureError(StoreError, KeyError):
    """A feature-set name that the dataset does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownVideoError(StoreError, KeyError):
    """A video that is not complete in a feature set."""

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigMismatchError(StoreError):
    """Arrays from a different extractor configuration would be mixed into a feature set."""


class DamagedStoreError(StoreError):
    """Bytes in the store that do not match what was written: a bad checksum, a truncated or missing chunk,
    unreadable metadata. The message names the dataset, feature, video and file."""


class ArrayShapeError(StoreError, ValueError):
    """Arrays that do not match the feature set's declared dim, dtype or each other."""


def unknown(kind: str, name: str, valid: list[str], where: str, hint: str = "") -> str:
    """Message for an unknown name that lists the valid ones."""
    listed = ", ".join(sorted(valid)) if valid else "none"
    msg = f"Unknown {kind} {name!r} in {where}. Valid {kind}s: {listed}."
    return f"{msg} {hint}".rstrip()
