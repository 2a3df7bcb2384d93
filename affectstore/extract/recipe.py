"""Extraction recipes: one TOML file per dataset (``extract/<dataset>.toml``) naming the
extractors to run, their settings, the dataset adapter's options, the default dataset root
and the store. Layout::

    dataset = "clips"                       # adapter: emi, bah, affwild2, clips
    root = "../shared/data/ravdess-dev"     # default root; DATA_ROOT or the command line wins
    store = "runs/ravdess-dev.zarr"
    name = "ravdess"                        # dataset group in the store (default: the dataset adapter name)
    split = "train"                         # optional: one split only

    [dataset_options]                       # keyword options of the adapter
    targets = "emotion,intensity"

    [run]                                   # runner options (see RunOptions)
    batch_size = 8
    device = "cpu"

    [extractors.egemaps]                    # table name = registered extractor name ...
    feature_set = "eGeMAPSv02"

    [extractors.w2v-l6]                     # ... or a feature-set prefix with `extractor = ...`
    extractor = "wav2vec2"
    layer = 6

Relative paths (root, store, model folders are left alone) resolve against the current
working directory, where ``make`` runs. Parsed with the standard library's ``tomllib``.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TOP_LEVEL_KEYS = ("dataset", "root", "store", "name", "split", "dataset_options", "run", "extractors")
def _run_keys() -> tuple[str, ...]:
    from affectstore.extract.runner.options import RUN_OPTION_FIELDS

    return ("device", "dtype", "batch_size", "limit", *RUN_OPTION_FIELDS)


class RecipeError(ValueError):
    """A recipe file that cannot be read or holds an unknown key or a wrong value."""


@dataclass(frozen=True)
class ExtractorSpec:
    """One extractor of a recipe: the feature-set prefix users type, the registered extractor and its settings."""

    feature: str
    extractor: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe; ``path`` is None for one built from command-line arguments only."""

    path: Path | None
    dataset: str | None = None
    root: str | None = None
    store: str | None = None
    name: str | None = None
    split: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    extractors: tuple[ExtractorSpec, ...] = ()

    @property
    def features(self) -> list[str]:
        return [spec.feature for spec in self.extractors]

    def spec(self, feature: str) -> ExtractorSpec | None:
        return next((s for s in self.extractors if s.feature == feature), None)


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise RecipeError(f"{where}: '{key}' must be a table ([{key}]). Got {type(value).__name__} {value!r} instead.")
    return dict(value)


def _string(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise RecipeError(f"{where}: '{key}' must be a non-empty string. Got {value!r} instead.")
    return value


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe file; unknown keys are an error naming the valid ones."""
    path = Path(path)
    if not path.is_file():
        folder = path.parent if path.parent.is_dir() else Path("extract")
        known = sorted(p.name for p in folder.glob("*.toml")) if folder.is_dir() else []
        raise RecipeError(
            f"Recipe {str(path)!r} not found. Recipes in {folder}/: {', '.join(known) or '(none)'}."
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{path}: not valid TOML ({error}).") from error
    where = str(path)
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}. Valid keys: {', '.join(TOP_LEVEL_KEYS)}.")
    run = _table(data, "run", where)
    run_keys = _run_keys()
    bad_run = sorted(set(run) - set(run_keys))
    if bad_run:
        raise RecipeError(f"{where}: unknown [run] setting(s) {', '.join(map(repr, bad_run))}. Valid: {', '.join(run_keys)}.")
    specs = []
    for feature, settings in _table(data, "extractors", where).items():
        if not isinstance(settings, Mapping):
            raise RecipeError(f"{where}: [extractors.{feature}] must be a table of settings. Got {settings!r} instead.")
        settings = dict(settings)
        extractor = settings.pop("extractor", feature)
        if not isinstance(extractor, str):
            raise RecipeError(f"{where}: [extractors.{feature}] extractor must be a name. Got {extractor!r} instead.")
        if extractor != feature:
            settings.setdefault("name", feature)
        specs.append(ExtractorSpec(feature, extractor, settings))
    return Recipe(
        path=path,
        dataset=_string(data, "dataset", where),
        root=_string(data, "root", where),
        store=_string(data, "store", where),
        name=_string(data, "name", where),
        split=_string(data, "split", where),
        dataset_options=_table(data, "dataset_options", where),
        run=run,
        extractors=tuple(specs),
    )


def dataset_root(command_line: str | None, recipe: Recipe | None, environ: Mapping[str, str] = os.environ) -> str:
    """The dataset root: the command line, else DATA_ROOT, else the recipe's ``root``."""
    for value in (command_line, environ.get("DATA_ROOT") or None, recipe.root if recipe else None):
        if value:
            return value
    source = f" and recipe {recipe.path} sets no 'root'" if recipe is not None and recipe.path else ""
    raise RecipeError(f"No dataset root given: pass ROOT, or set DATA_ROOT{source}.")
