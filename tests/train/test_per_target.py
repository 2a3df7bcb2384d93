"""[per_target.<target>] recipe tables: one clips run, a different feature set per target."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectstore.store import FeatureStore
from affectstore.testing.datasets import make_clips_dataset
from affectstore.train.errors import RecipeError
from affectstore.train.recipe import load_recipe, merge_recipe, recipe_for_target, validate_recipe
from affectstore.train.run import predict_run, train_task


def _write(store, name, vectors):
    prov = {"extractor": "synthetic", "config_hash": f"h-{name}", "dim": 4, "dtype": "float32", "kind": "video", "rate": None}
    store.create_feature("clips", name, prov)
    for vid, x in vectors.items():
        store.write_video("clips", name, vid, x.reshape(1, -1), np.zeros(1), config_hash=prov["config_hash"])


@pytest.fixture(scope="module")
def two_signals(tmp_path_factory):
    """'a' carries the emotion, 'b' the arousal: each target is learnable from one feature only."""
    base = tmp_path_factory.mktemp("per-target")
    built = make_clips_dataset(base / "data", classes=("x", "y"), n_per_class=12, n_speakers=4, extensions=(".wav",),
                               with_split=False)
    rng = np.random.default_rng(0)
    st = FeatureStore.open(base / "s.zarr", mode="a")
    a, b = {}, {}
    for vid, (c, arousal) in built.video_labels.items():
        a[vid] = rng.normal(0, 0.2, 4).astype(np.float32) + np.float32(2.0 * c)
        b[vid] = rng.normal(0, 0.05, 4).astype(np.float32) + np.float32(3.0 * arousal)
    _write(st, "a", a)
    _write(st, "b", b)
    return built, base / "s.zarr"


def test_each_target_trains_on_its_own_features(two_signals, tmp_path):
    built, store = two_signals
    overrides = {"estimator": "ridge", "adapter": {"group_column": "speaker"}, "targets": ["emotion", "arousal"],
                 "per_target": {"emotion": {"estimator": "logreg"}, "arousal": {"features": ["b"]}}}
    result = train_task("clips", store, features="a", out=tmp_path / "run", cv=4, data_root=built.root, overrides=overrides)
    res = result.metrics["results"]
    assert res["emotion"]["out_of_fold"]["macro_f1"] > 0.9
    assert res["arousal"]["out_of_fold"]["pearson_r"] > 0.9  # from 'b'; 'a' knows nothing of arousal
    names = [f["name"] for f in json.loads((tmp_path / "run" / "features.json").read_text())]
    assert names == ["a", "b"]
    out = predict_run(tmp_path / "run", store, split="all", out=tmp_path / "pred")
    assert (tmp_path / "pred" / "predictions-all-arousal.csv").is_file()


def test_per_target_tables_are_checked(two_signals, tmp_path):
    rec = merge_recipe(load_recipe(None), {"task": "clips", "features": ["a"], "per_target": {"emotion": {"fuson": "early"}}})
    with pytest.raises(RecipeError, match=r"Unknown key\(s\) \['fuson'\] in \[per_target.emotion\]. Valid keys: features"):
        validate_recipe(rec)
    rec["per_target"] = {"emotion": {"pooling": {"a": "median"}}}
    with pytest.raises(RecipeError, match="pooling of 'a' must be one of mean, meanstd, stat. Got 'median'"):
        validate_recipe(rec)
    built, store = two_signals
    with pytest.raises(RecipeError, match=r"\[per_target\] names target\(s\) \['valence'\] that this run does not train"):
        train_task("clips", store, features="a", out=tmp_path / "r", cv=4, data_root=built.root,
                   overrides={"adapter": {"group_column": "speaker"}, "per_target": {"valence": {"features": ["b"]}}})


def test_recipe_for_target_leaves_the_others_alone():
    rec = merge_recipe(load_recipe(None), {"task": "clips", "features": ["a"], "pooling": {"a": "stat"},
                                           "per_target": {"t": {"features": ["b"], "pooling": {"b": "meanstd"}}}})
    t = recipe_for_target(rec, "t")
    assert t["features"] == ["b"] and t["pooling"] == {"default": "mean", "a": "stat", "b": "meanstd"} and t["per_target"] == {}
    assert recipe_for_target(rec, "other") is rec and rec["features"] == ["a"]
