"""Training recipes: one TOML per task/method in the top-level ``train/`` folder.

A recipe holds only choices, never dimensions or rates (those come from the store)::

    task = "emi"
    features = ["mobilevit", "hubert", "gigachat"]   # store feature-set names
    data_root = "/data/hume-vidmimic2"                # optional; --data-root wins
    store_dataset = "emi"                             # optional; default: the task's dataset
    fusion = "late"                                   # "late": one model per feature + blend; "early": concat
    estimator = "mlp"                                 # a registry name: mlp | logreg | svc | ridge | lstm-fusion | ...
    targets = ["emotion", "intensity"]                # clips only (default: every target)
    adapter = { group_column = "actor" }              # options for the dataset adapter

    [pooling]        # video level: per feature "mean", "meanstd" or "stat"; key "default" for the rest
    [align]          # frame level: method = "interp1d" (timestamps) | "position" (the papers' interp1d
                     #   of each sequence to the visual length, see affectstore.train.align)
    [params]         # estimator hyper-parameters (MLP: hidden_sizes, head, loss, ...)
    [blend]          # step = 0.05, per_output = false, weights = [..] (fixed, not searched)
    [smoothing]      # frame level: method = "box" | "median" | "gaussian", sizes = [1, 5, ...],
                     #   edge = "nearest" (hold edge values) | "truncate" (window cut at the video's ends)
    [threshold]      # binary: enabled = true, thresholds = [..]
    [video_filter]   # bah: feature = "gigachat", kind = "svc" | "logreg", params = {...}
    [override]       # expr: feature, columns, order, softmax, thresholds
    [protocol]       # mode = "honest" | "paper", refit = false, tune_fraction = 0.5, val_fraction = 0.3,
                     #   cv = 0, seed = 0 (see affectstore.train.protocol); protocol = "paper" is
                     #   shorthand for [protocol] mode = "paper"

Unknown keys are errors (a typo would otherwise silently do nothing).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from affectstore.train.errors import RecipeError
from affectstore.train.pooling import POOLING_METHODS
from affectstore.train.registry import REGISTRY
from affectstore.train.tasks import check_task
FUSIONS = ("late", "early")
PROTOCOL_MODES = ("honest", "paper")

DEFAULTS: dict[str, Any] = {
    "task": None,
    "name": None,
    "description": "",
    "features": [],
    "data_root": None,
    "store_dataset": None,
    "fusion": "late",
    "estimator": "mlp",
    "targets": None,
    "adapter": {},
    "pooling": {"default": "mean"},
    "align": {"method": "interp1d"},
    "params": {},
    "blend": {"step": 0.05, "per_output": False, "weights": None},
    "smoothing": {"method": "box", "sizes": [1, 3, 5, 9, 15, 25, 41], "enabled": True, "edge": "nearest"},
    "threshold": {"enabled": True, "thresholds": None},
    "video_filter": None,
    "override": None,
    "protocol": {"mode": "honest", "refit": False, "tune_fraction": 0.5, "val_fraction": 0.3, "cv": 0, "seed": 0},
    "per_target": {},
}
#: what a [per_target.<target>] table may change for that target (clips recipes with several targets)
PER_TARGET_KEYS = ("features", "fusion", "estimator", "pooling", "params", "blend")
SECTION_KEYS = {
    "align": {"method"},
    "blend": {"step", "per_output", "weights"},
    "smoothing": {"method", "sizes", "enabled", "edge"},
    "threshold": {"enabled", "thresholds"},
    "video_filter": {"feature", "pooling", "kind", "params"},
    "override": {"feature", "columns", "order", "softmax", "thresholds"},
    "protocol": {"mode", "refit", "tune_fraction", "val_fraction", "cv", "seed"},
}


# Published configurations whose estimators (sequence models) are not in this version yet: the
# names are kept so that nobody ships a different recipe under them.
RECIPE_DIRS = ("train", "train/papers")


def find_recipe(name: str | Path) -> Path:
    """The recipe file for ``name``: a path, or a bare name looked up in ./train and ./train/papers.
    """
    p = Path(name)
    stem = p.name.removesuffix(".toml")
    if p.is_file() or p.suffix or len(p.parts) > 1:
        return p
    for folder in RECIPE_DIRS:
        candidate = Path(folder) / f"{stem}.toml"
        if candidate.is_file():
            return candidate
    return p


def load_recipe(path: str | Path | None) -> dict[str, Any]:
    """A recipe from a TOML file or a bare recipe name (None: the defaults only), merged over `DEFAULTS`."""
    if path is None:
        return copy.deepcopy(DEFAULTS)
    p = find_recipe(path)
    if not p.is_file():
        here = sorted(x.name for x in p.parent.glob("*.toml")) if p.parent.is_dir() else []
        raise RecipeError(f"Recipe {str(p)!r} not found. Recipes in {p.parent}: {', '.join(here) or 'none'}.")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"Recipe {p} is not valid TOML: {exc}") from None
    recipe = merge_recipe(copy.deepcopy(DEFAULTS), raw, str(p))
    recipe.setdefault("name", p.stem)
    if recipe["name"] is None:
        recipe["name"] = p.stem
    return recipe


def merge_recipe(base: dict[str, Any], overrides: dict[str, Any], where: str = "recipe") -> dict[str, Any]:
    """``base`` updated with ``overrides``; sections merge key by key. Unknown keys raise."""
    for key, value in overrides.items():
        if key not in DEFAULTS:
            raise RecipeError(f"Unknown key {key!r} in {where}. Valid keys: {', '.join(sorted(DEFAULTS))}.")
        if key == "protocol" and isinstance(value, str):
            value = {"mode": value}  # protocol = "paper"
        if key in SECTION_KEYS and value is not None:
            if not isinstance(value, dict):
                raise RecipeError(f"[{key}] in {where} must be a table. Got {value!r} instead.")
            bad = sorted(set(value) - SECTION_KEYS[key])
            if bad:
                raise RecipeError(
                    f"Unknown key(s) {bad} in [{key}] of {where}. Valid keys: {', '.join(sorted(SECTION_KEYS[key]))}."
                )
            merged = dict(base.get(key) or {})
            merged.update(value)
            base[key] = merged
        elif key in ("pooling", "params", "adapter") and value is not None:
            if not isinstance(value, dict):
                raise RecipeError(f"[{key}] in {where} must be a table. Got {value!r} instead.")
            merged = dict(base.get(key) or {})
            merged.update(value)
            base[key] = merged
        else:
            base[key] = value
    return base


def recipe_for_target(recipe: dict[str, Any], target: str | None) -> dict[str, Any]:
    """The recipe one target is trained with: ``recipe`` with its ``[per_target.<target>]`` table applied."""
    table = (recipe.get("per_target") or {}).get(target) if target is not None else None
    if not table:
        return recipe
    out = merge_recipe({k: copy.deepcopy(v) for k, v in recipe.items() if k != "per_target"}, table, f"[per_target.{target}]")
    out["per_target"] = {}
    return out


def per_target_features(recipe: dict[str, Any]) -> list[str]:
    """Every feature set a recipe's [per_target] tables name beyond its own ``features``."""
    extra = [f for table in (recipe.get("per_target") or {}).values() for f in (table.get("features") or [])]
    return [f for f in dict.fromkeys(extra) if f not in recipe["features"]]


def _validate_per_target(recipe: dict[str, Any]) -> None:
    tables = recipe.get("per_target") or {}
    if not isinstance(tables, dict):
        raise RecipeError(f"[per_target] must hold one table per target ([per_target.intensity]). Got {tables!r} instead.")
    for target, table in tables.items():
        if not isinstance(table, dict):
            raise RecipeError(f"[per_target.{target}] must be a table. Got {table!r} instead.")
        bad = sorted(set(table) - set(PER_TARGET_KEYS))
        if bad:
            raise RecipeError(f"Unknown key(s) {bad} in [per_target.{target}]. Valid keys: {', '.join(PER_TARGET_KEYS)}.")
        if isinstance(table.get("features"), str):
            table["features"] = [f.strip() for f in table["features"].split(",") if f.strip()]
        validate_recipe(recipe_for_target(recipe, target))


def validate_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """Check the choices that do not need the store; returns the recipe."""
    if recipe.get("task") is None:
        raise RecipeError("The recipe names no task. Set task = \"emi\" (or bah, expr, va, au, bah-video, clips) or pass TASK.")
    check_task(recipe["task"])
    feats = recipe["features"]
    if isinstance(feats, str):
        feats = [f.strip() for f in feats.split(",") if f.strip()]
        recipe["features"] = feats
    if not isinstance(feats, list) or not all(isinstance(f, str) and f for f in feats):
        raise RecipeError(f"features must be a list of feature-set names. Got {feats!r} instead.")
    if recipe["fusion"] not in FUSIONS:
        raise RecipeError(f"fusion must be one of {FUSIONS}. Got {recipe['fusion']!r} instead.")
    if recipe["estimator"] not in REGISTRY:
        raise RecipeError(f"estimator must be one of {tuple(sorted(REGISTRY))}. Got {recipe['estimator']!r} instead.")
    for name, value in recipe["pooling"].items():
        if value not in POOLING_METHODS:
            raise RecipeError(f"pooling of {name!r} must be one of {', '.join(POOLING_METHODS)}. Got {value!r} instead.")
    if recipe["align"]["method"] not in ("interp1d", "position"):
        raise RecipeError(f"align.method must be 'interp1d' or 'position'. Got {recipe['align']['method']!r} instead.")
    from affectstore.train.smoothing import EDGE_MODES, SMOOTHING_METHODS

    sm = recipe["smoothing"]
    if sm.get("method", "box") not in SMOOTHING_METHODS:
        raise RecipeError(f"smoothing.method must be one of {SMOOTHING_METHODS}. Got {sm.get('method')!r} instead.")
    if sm.get("edge", "nearest") not in EDGE_MODES:
        raise RecipeError(f"smoothing.edge must be one of {EDGE_MODES}. Got {sm.get('edge')!r} instead.")
    prot = recipe["protocol"]
    cv = prot.get("cv", 0)
    if not isinstance(cv, int) or isinstance(cv, bool) or cv == 1 or cv < 0:
        raise RecipeError(f"cv must be 0 (no cross-validation) or an int >= 2. Got {cv!r} instead.")
    protocol_settings(recipe)
    for key in ("tune_fraction", "val_fraction"):
        v = prot.get(key)
        if not isinstance(v, (int, float)) or not 0.0 < float(v) < 1.0:
            raise RecipeError(f"protocol.{key} must be a number in (0, 1). Got {v!r} instead.")
    weights = recipe["blend"].get("weights")
    if weights is not None:
        if not isinstance(weights, list) or len(weights) != len(feats) or recipe["fusion"] != "late":
            raise RecipeError(
                f"blend.weights {weights!r} must hold one weight per feature {feats} (late fusion). "
                "Drop blend.weights to search the weights on validation, or name as many features as weights."
            )
        if any(not isinstance(w, (int, float)) or w < 0 for w in weights) or sum(weights) <= 0:
            raise RecipeError(f"blend.weights must be non-negative numbers with a positive sum. Got {weights!r}.")
    for section, needed in (("video_filter", ("feature",)), ("override", ("feature", "columns"))):
        sec = recipe.get(section)
        if sec is not None:
            missing = [k for k in needed if k not in sec]
            if missing:
                raise RecipeError(f"[{section}] needs {', '.join(missing)}. Got keys {sorted(sec)}.")
    _validate_per_target(recipe)
    return recipe


def protocol_settings(rec: dict) -> tuple[str, bool]:
    """(mode, refit) from the recipe's [protocol], checked."""
    prot = rec["protocol"]
    mode = prot.get("mode", "honest")
    refit = prot.get("refit", False)
    if mode not in PROTOCOL_MODES:
        raise RecipeError(f"protocol.mode must be one of {PROTOCOL_MODES}. Got {mode!r} instead.")
    if not isinstance(refit, bool):
        raise RecipeError(f"protocol.refit must be true or false. Got {refit!r} instead.")
    if mode == "paper" and int(prot.get("cv", 0)):
        raise RecipeError(
            f"protocol.mode='paper' chooses and reports on the validation split; it does not combine with cv={prot['cv']}. "
            "Drop cv (or --cv) or use mode='honest'."
        )
    return mode, refit
