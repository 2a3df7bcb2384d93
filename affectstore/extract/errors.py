"""Errors of affectstore.extract, and the import helper that turns a missing package into an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'affectstore[extract]'"


class ExtractorError(Exception):
    """Base class of the errors raised by affectstore.extract."""


class UnknownExtractorError(ExtractorError, LookupError):
    """A name that no extractor is registered under."""


class DuplicateExtractorError(ExtractorError, ValueError):
    """A second registration under a name that is already taken."""


class MissingDependencyError(ExtractorError, ImportError):
    """An optional package an extractor needs is not installed."""


class ModelLoadError(ExtractorError, RuntimeError):
    """A checkpoint could not be loaded completely (missing or mismatched weights, bad config, missing file).

    ``advice`` says how to provide the model, where the generic hub advice does not fit.
    """

    def __init__(self, message: str, advice: str | None = None) -> None:
        super().__init__(message)
        self.advice = advice


class InputError(ExtractorError, ValueError):
    """An input an extractor cannot process (wrong shape, dtype, rate, too short, no face)."""


class ExtractionError(ExtractorError):
    """The run cannot start or go on (bad option, model that cannot load, unsupported input)."""


def require(module: str, extra: str = "extract") -> ModuleType:
    """Import an optional heavy module, or fail with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"The '{module}' package is needed by this extractor but could not be imported ({error}). "
            f"Install it with: pip install 'affectstore[{extra}]'"
        ) from error
