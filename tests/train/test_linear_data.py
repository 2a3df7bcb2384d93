"""ScaledLinear (sklearn models saved without pickle) and the store-loading helpers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from affectstore.store import FeatureStore
from affectstore.train.data import coverage, feature_infos, load_video_features
from affectstore.train.errors import TrainError
from affectstore.train.linear import ScaledLinear
from affectstore.train.recipe import load_recipe, validate_recipe


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)) * [1, 10, 0.1, 1, 3] + [0, 5, 0, -2, 0]
    y3 = (X[:, 0] + 0.1 * X[:, 1] > 0.5).astype(int) + (X[:, 3] > -2)
    return X, y3


@pytest.mark.parametrize("kind,cls,params,n_classes", [
    ("logreg", LogisticRegression, {"C": 0.5}, 3),
    ("logreg", LogisticRegression, {}, 2),
    ("svc", SVC, {"kernel": "linear"}, 2),
    ("ridge", Ridge, {"alpha": 2.0}, None),
])
def test_scaled_linear_matches_sklearn_and_round_trips(xy, tmp_path, kind, cls, params, n_classes):
    X, y3 = xy
    y = X[:, 0] * 2 + X[:, 2] if n_classes is None else (y3 if n_classes == 3 else (y3 > 0).astype(int))
    ours = ScaledLinear(kind, params).fit(X, y)
    Xs = StandardScaler().fit(X).transform(X)
    ref = cls(**params).fit(Xs, y)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(Xs))
    if kind == "logreg":
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(Xs), atol=1e-10)
    else:
        ref_d = ref.decision_function(Xs) if kind == "svc" else ref.predict(Xs)
        np.testing.assert_allclose(ours.predict_scores(X), ref_d, atol=1e-10)
    ours.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["linear.json", "linear.safetensors"]
    back = ScaledLinear.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(X), ours.predict(X))
    np.testing.assert_allclose(back.predict_scores(X), ours.predict_scores(X))


def test_scaled_linear_refuses_what_it_cannot_save(xy):
    X, y3 = xy
    with pytest.raises(ValueError, match="svc kernel must be 'linear'.*Got kernel='rbf'"):
        ScaledLinear("svc", {"kernel": "rbf"}).fit(X, y3 > 0)
    with pytest.raises(ValueError, match="svc is supported for 2 classes only. Got 3"):
        ScaledLinear("svc").fit(X, y3)
    with pytest.raises(ValueError, match=r"kind must be one of \['logreg', 'ridge', 'svc'\]. Got 'tree'"):
        ScaledLinear("tree").fit(X, y3)


def test_coverage_half_a_sample_period():
    samples = np.array([0.0, 1 / 30, 3 / 30, 4 / 30])  # frame 2 (t = 2/30) has no face crop
    frames = np.arange(6) / 30
    np.testing.assert_array_equal(coverage(samples, frames, 30.0), [True, True, False, True, True, False])
    np.testing.assert_array_equal(coverage(samples, frames, None), [True, True, True, True, True, False])
    assert not coverage(np.zeros(0), frames, 30.0).any()


def test_video_features_pool_and_mark_missing(tmp_path):
    st = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    prov = {"extractor": "x", "config_hash": "h", "dim": 2, "dtype": "float32", "kind": "frames", "rate": 10.0}
    st.create_feature("d", "f", prov)
    st.write_video("d", "f", "a", np.array([[1, 2], [3, 6]], np.float32), np.array([0.0, 0.1]), config_hash="h")
    st.write_video("d", "f", "b", np.array([[5, 5]], np.float32), np.array([0.0]), config_hash="h")
    st.create_feature("d", "t", {"extractor": "w", "config_hash": "t", "dim": 0, "dtype": "str", "kind": "text"})
    ro = FeatureStore.open(tmp_path / "s.zarr")
    info = feature_infos(ro, "d", ["f"])["f"]
    assert (info.dim, info.rate, info.kind, info.config_hash) == (2, 10.0, "frames", "h")
    X, present = load_video_features(ro, "d", info, ["b", "zz", "a"], "stat", chunk_videos=1)
    np.testing.assert_array_equal(present, [True, False, True])
    np.testing.assert_allclose(X[2], [2, 4, 1, 2, 1, 2, 3, 6])
    np.testing.assert_allclose(X[0], [5, 5, 0, 0, 5, 5, 5, 5])
    assert np.isnan(X[1]).all()
    with pytest.raises(TrainError, match="Feature 't' holds transcript segments"):
        feature_infos(ro, "d", ["t"])
    with pytest.raises(TrainError, match=r"Dataset 'emi' is not in store .* Datasets there: d\."):
        feature_infos(ro, "emi", ["f"])


@pytest.mark.parametrize("name", ["emi", "bah", "expr", "va", "clips", "clips-mlp"])
def test_recipes_in_train_folder_are_valid(name):
    from pathlib import Path

    rec = validate_recipe(load_recipe(Path(__file__).resolve().parents[2] / "train" / f"{name}.toml"))
    assert rec["features"] and rec["task"] in ("emi", "bah", "expr", "va", "clips")
    assert "dim" not in str(rec["params"])  # dims come from the store, never from a recipe
