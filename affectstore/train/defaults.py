"""Where `affect train` finds what the user did not type: the recipe, the store, the data root.

So that, in a project folder, ``affect train emi --features gigachat,hubert,mobilevit`` runs:

- recipe: ``--recipe``, else ``train/<task>.toml`` when it exists (else the built-in defaults);
- store: ``--store``, else ``AFFECT_STORE``, else the ``store`` of the task's extraction recipe
  (``extract/<dataset>.toml``, the one ``make extract DATA=<dataset>`` wrote);
- data root: ``--data-root``, else ``DATA_ROOT``, else the recipe's ``data_root`` when that folder
  exists, else the root the store recorded when the features were extracted (with the adapter
  options used then), else the recipe's (missing) folder, which the adapter then names.

Relative paths resolve against the current working directory, as for extraction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from affectstore.train.errors import TrainError

logger = logging.getLogger(__name__)

#: The task's dataset adapter, whose extraction recipe is ``extract/<adapter>.toml``.
EXTRACT_RECIPES = {"emi": "emi", "bah": "bah", "bah-video": "bah", "expr": "affwild2", "va": "affwild2",
                   "au": "affwild2", "clips": "clips"}


def default_recipe(task: str | None, recipe: str | Path | None, cwd: Path | None = None) -> str | Path | None:
    """The recipe given, else ``train/<task>.toml`` under ``cwd`` when it exists, else None (defaults)."""
    if recipe is not None or task is None:
        return recipe
    candidate = (cwd or Path.cwd()) / "train" / f"{task}.toml"
    if candidate.is_file():
        logger.info("Recipe: %s (the task's default; --recipe picks another)", candidate)
        return candidate
    return None


def default_store(task: str | None, store: Any, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Any:
    """The store given, else ``AFFECT_STORE``, else the store named by the task's extraction recipe."""
    if store is not None:
        return store
    environ = os.environ if environ is None else environ
    if environ.get("AFFECT_STORE"):
        return environ["AFFECT_STORE"]
    cwd = cwd or Path.cwd()
    name = EXTRACT_RECIPES.get(task or "")
    path = cwd / "extract" / f"{name}.toml" if name else None
    if path is not None and path.is_file():
        from affectstore.extract.recipe import RecipeError as ExtractRecipeError
        from affectstore.extract.recipe import load_recipe as load_extract_recipe

        try:
            named = load_extract_recipe(path).store
        except ExtractRecipeError as error:
            raise TrainError(f"No --store given, and the extraction recipe to take it from is unreadable: {error}") from None
        if named:
            logger.info("Store: %s (from %s; --store or AFFECT_STORE picks another)", named, path)
            return named
    where = f" and {path} names none" if path is not None and path.is_file() else (
        f" and there is no extraction recipe {path}" if path is not None else "")
    raise TrainError(f"No store given: pass --store PATH_OR_URL or set AFFECT_STORE{where}.")


def recorded_source(store: Any, dataset: str, features: Iterable[str]) -> dict[str, Any] | None:
    """The dataset (adapter, absolute root, options) the store recorded when ``features`` were extracted."""
    for name in features:
        try:
            source = store.provenance(dataset, name).get("dataset")
        except Exception:  # noqa: BLE001 - a missing feature is reported by feature_infos with the right names
            continue
        if isinstance(source, dict) and source.get("root"):
            return source
    return None


def resolve_data_root(
    given: str | Path | None,
    recipe_root: str | None,
    source: dict[str, Any] | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, str, dict[str, Any]]:
    """(root, where it came from, adapter options recorded with it) by the precedence in the module doc."""
    environ = os.environ if environ is None else environ
    if given is not None:
        return str(given), "--data-root", {}
    if environ.get("DATA_ROOT"):
        return environ["DATA_ROOT"], "DATA_ROOT", {}
    if recipe_root and Path(recipe_root).expanduser().is_dir():
        return recipe_root, "the recipe's data_root", _same_root_options(recipe_root, source)
    if source is not None and Path(source["root"]).is_dir():
        return source["root"], "the root recorded in the store at extraction", dict(source.get("options") or {})
    if recipe_root:
        return recipe_root, "the recipe's data_root", {}
    return None, "", {}


def _same_root_options(root: str, source: dict[str, Any] | None) -> dict[str, Any]:
    """Recorded adapter options apply only to the root they were recorded with."""
    if source is None:
        return {}
    try:
        same = Path(root).expanduser().resolve() == Path(source["root"]).resolve()
    except OSError:
        return {}
    return dict(source.get("options") or {}) if same else {}


def parse_recipe_settings(pairs: Iterable[str]) -> dict[str, Any]:
    """``--set`` for training: ``KEY=VALUE`` or ``SECTION.KEY=VALUE`` recipe overrides, values read
    as TOML where they parse (``params.learning_rate=0.01``, ``fusion=early``, ``params.hidden_sizes=[32]``)."""
    from affectstore.extract.runner.options import parse_value

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        parts = [p.strip() for p in key.split(".")]
        if not sep or not all(parts) or len(parts) > 2:
            raise TrainError(f"--set must look like KEY=VALUE or SECTION.KEY=VALUE (e.g. params.learning_rate=0.01). Got {pair!r} instead.")
        parsed = parse_value(value.strip())
        if len(parts) == 1:
            out[parts[0]] = parsed
        else:
            section = out.setdefault(parts[0], {})
            if not isinstance(section, dict):
                raise TrainError(f"--set gives {parts[0]!r} both a value and a {parts[0]}.KEY setting; pick one.")
            section[parts[1]] = parsed
    return out
