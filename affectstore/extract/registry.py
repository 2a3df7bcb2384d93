"""The extractor registry: short names users type -> extractor classes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from affectstore.extract.errors import DuplicateExtractorError, UnknownExtractorError

if TYPE_CHECKING:
    from affectstore.extract.base import Extractor
    from affectstore.extract.config import ExtractorConfig

logger = logging.getLogger(__name__)

#: Names kept for extractor families that come later; registering them is allowed,
#: asking for one before it is registered says it is planned rather than unknown.
RESERVED_NAMES: tuple[str, ...] = ()

E = TypeVar("E", bound="type[Extractor[Any]]")

_REGISTRY: dict[str, type[Extractor[Any]]] = {}


def register(cls: E) -> E:
    """Class decorator: make an extractor available under ``cls.name``. A taken name is an error."""
    from affectstore.extract.base import Extractor

    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} must set a class attribute 'name' (the short name users type) before registering.")
    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        raise TypeError(f"Only Extractor subclasses can be registered, got {cls!r}.")
    existing = _REGISTRY.get(name)
    if existing is not None:
        raise DuplicateExtractorError(
            f"Extractor name '{name}' is already registered by {existing.__module__}.{existing.__qualname__}; "
            f"cannot register {cls.__module__}.{cls.__qualname__} under it. Choose another name."
        )
    _REGISTRY[name] = cls
    logger.debug("registered extractor %r -> %s", name, cls.__qualname__)
    return cls


def unregister(name: str) -> None:
    """Remove a registration (for tests and plugins that replace an extractor)."""
    if name not in _REGISTRY:
        raise UnknownExtractorError(_unknown_message(name))
    del _REGISTRY[name]


def available_extractors() -> list[str]:
    """Registered extractor names, sorted."""
    return sorted(_REGISTRY)


def did_you_mean(name: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choices, or nothing."""
    import difflib

    close = difflib.get_close_matches(name, choices, n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def _unknown_message(name: str) -> str:
    known = ", ".join(available_extractors()) or "(none)"
    if name in RESERVED_NAMES:
        return f"Extractor '{name}' is planned but not available yet. Available extractors: {known}."
    return f"Unknown extractor '{name}'{did_you_mean(name, available_extractors())}. Known extractors: {known}."


def get_extractor_class(name: str) -> type[Extractor[Any]]:
    """The class registered under ``name``; unknown names raise an error listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownExtractorError(_unknown_message(name)) from None


def create_extractor(
    name: str, config: ExtractorConfig | Mapping[str, Any] | None = None, /, **overrides: Any
) -> Extractor[Any]:
    """Instantiate the extractor registered under ``name`` (model not loaded yet).

    ``config`` is its config dataclass or a mapping of settings (as in a recipe);
    keyword overrides win over both, e.g. ``create_extractor("hubert", device="cuda")``.
    ``name`` and ``config`` are positional-only, so every config field, including the
    feature-set ``name``, can be given as a keyword: ``create_extractor("wav2vec2", name="w2v-l6", layer=6)``.
    """
    cls = get_extractor_class(name)
    if config is None:
        config = cls.config_class(**overrides)
    elif isinstance(config, Mapping):
        config = cls.config_class.from_dict({**config, **overrides})
    elif overrides:
        config = config.replace(**overrides)
    return cls(config)
