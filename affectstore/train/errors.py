"""Errors of the training layer; each message names the bad value, what was expected and the fix."""

from __future__ import annotations


class TrainError(ValueError):
    """Bad input to a training or prediction run (features, recipe, splits, run folder)."""


class RecipeError(TrainError):
    """A recipe (train/*.toml) or option that cannot be used."""


class LineageError(TrainError):
    """Features in the store were made with another config than the ones a model was trained on."""
