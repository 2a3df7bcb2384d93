"""The torch MLP behind the scikit-learn interface: learns planted signal, is reproducible,
saves without pickle, validates its parameters."""

import json
import struct

import numpy as np
import pytest
import torch
from sklearn.base import clone

from affectstore.train.estimators import make_estimator, predict_scores
from affectstore.train.metrics import accuracy, mean_ccc, mean_pearson_r
from affectstore.train.mlp import MLPEstimator


def _regression(n=1200, d=20, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, k)) / np.sqrt(d)
    y = 1 / (1 + np.exp(-2 * X @ W)) + 0.05 * rng.normal(size=(n, k))
    return X, np.clip(y, 0, 1)


def _classes(n=1200, d=10, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, :4] += 2.5 * np.eye(4)[y]  # class c is planted in column c
    return X, y


def test_sigmoid_mse_learns_intensities():
    X, y = _regression()
    m = MLPEstimator(hidden_sizes=(32,), head="sigmoid", loss="mse", max_epochs=200, learning_rate=3e-3)
    m.fit(X[:800], y[:800], eval_set=(X[800:1000], y[800:1000]))
    pred = m.predict(X[1000:])
    assert pred.shape == (200, 3)
    assert pred.min() >= 0 and pred.max() <= 1
    assert mean_pearson_r(y[1000:], pred) > 0.85
    assert 1 <= m.best_epoch_ <= m.n_epochs_ <= 200
    assert len(m.history_) == m.n_epochs_


def test_weighted_pearson_loss_weights_are_inverse_class_counts():
    """Savchenko 2025 sec. 3.2: the rarest emotion (count 1, Admiration) gets the largest weight."""
    X, y = _regression(k=6)
    m = MLPEstimator(head="sigmoid", loss="pearson", class_counts=[1, 8, 4, 2, 8, 8], scoring="mean_pearson_r",
                     max_epochs=100, learning_rate=3e-3)
    m.fit(X[:1000], y[:1000])
    np.testing.assert_allclose(m.output_weights_, [0.471, 0.059, 0.118, 0.235, 0.059, 0.059], atol=5e-4)
    assert np.argmax(m.output_weights_) == 0 and sum(m.output_weights_) == pytest.approx(1.0)
    assert mean_pearson_r(y[1000:], m.predict(X[1000:])) > 0.85
    assert m.best_score_ == max(m.history_)


def test_tanh_ccc_learns_valence_arousal():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 8)).astype(np.float32)
    y = np.tanh(np.stack([X[:, 0] - 0.5 * X[:, 1], 0.8 * X[:, 2]], axis=1))
    m = MLPEstimator(hidden_sizes=(32, 16), head="tanh", loss="ccc", max_epochs=150, learning_rate=3e-3,
                     batch_size=256).fit(X[:1200], y[:1200])
    pred = m.predict(X[1200:])
    assert pred.min() >= -1 and pred.max() <= 1
    assert mean_ccc(y[1200:], pred) > 0.85


def test_softmax_classes_with_absent_class_and_weights():
    X, y = _classes()
    m = MLPEstimator(head="softmax", loss="cross_entropy", classes=range(5), class_weight="balanced",
                     max_epochs=100, learning_rate=3e-3, dropout=0.1)
    m.fit(X[:900], y[:900])
    proba = m.predict_proba(X[900:])
    assert proba.shape == (300, 5)  # class 4 never occurs but still has an output
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert m.class_weight_[4] == 0.0
    assert accuracy(y[900:], m.predict(X[900:])) > 0.9
    np.testing.assert_array_equal(m.classes_, np.arange(5))


def test_bce_binary_1d():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 5)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=1000) > 0).astype(int)
    m = MLPEstimator(head="sigmoid", loss="bce", validation_fraction=None, max_epochs=40).fit(X[:800], y[:800])
    p = m.predict(X[800:])
    assert p.shape == (200,)
    assert accuracy(y[800:], (p >= 0.5).astype(int)) > 0.85
    assert not hasattr(m, "predict_proba")  # only the softmax head has class probabilities
    assert m.best_score_ is None and m.n_epochs_ == 40


def test_early_stopping_on_noise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 30)).astype(np.float32)
    y = rng.normal(size=600)
    m = MLPEstimator(hidden_sizes=(128,), max_epochs=500, patience=5, learning_rate=1e-2).fit(X, y)
    assert m.n_epochs_ < 500
    assert m.n_epochs_ - m.best_epoch_ == 5


def test_reproducible_with_seed_and_leaves_global_rng_alone():
    X, y = _regression(n=400)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = MLPEstimator(dropout=0.2, max_epochs=10, random_state=7).fit(X, y).predict(X)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = MLPEstimator(dropout=0.2, max_epochs=10, random_state=7).fit(X, y).predict(X)
    c = MLPEstimator(dropout=0.2, max_epochs=10, random_state=8).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def _safetensors_header(path):
    """Parse a safetensors file by hand: 8-byte length, JSON header, then raw tensor bytes only."""
    raw = path.read_bytes()
    assert not raw.startswith(b"PK")  # not a torch.save zip archive (which holds a pickle)
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + header_len])
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    # The tensors' byte ranges account for the whole rest of the file: no room for anything else.
    assert max(ends) == len(raw) - 8 - header_len
    return header


@pytest.mark.parametrize("kind", ["regression", "softmax"])
def test_save_load_round_trip_without_pickle(tmp_path, kind):
    if kind == "regression":
        X, y = _regression(n=300)
        m = MLPEstimator(hidden_sizes=(16, 8), head="sigmoid", max_epochs=5).fit(X, y)
    else:
        X, y = _classes(n=300)
        m = MLPEstimator(head="softmax", loss="cross_entropy", classes=["a", "b", "c", "d"], max_epochs=5)
        m.fit(X, np.array(list("abcd"))[y])
    folder = m.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))  # plain JSON
    assert cfg["params"]["hidden_sizes"] == list(m.hidden_sizes)
    header = _safetensors_header(folder / "model.safetensors")
    assert "input.mean" in header and "net.body.0.weight" in header
    loaded = MLPEstimator.load(folder)
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
    if kind == "softmax":
        np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))
        assert loaded.predict(X[:3]).tolist() == m.predict(X[:3]).tolist()
    assert loaded.get_params() == m.get_params()


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder written by MLPEstimator.save"):
        MLPEstimator.load(tmp_path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hidden_sizes": (0,)}, r"hidden_sizes must be a tuple of positive ints. Got \(0,\) instead."),
        ({"hidden_sizes": 64}, r"The 'hidden_sizes' parameter of MLPEstimator must be an instance of 'tuple' or an "
                               r"instance of 'list'. Got 64 instead."),
        ({"dropout": 1.0}, r"The 'dropout' parameter of MLPEstimator must be a float in the range \[0.0, 1.0\). Got 1.0"),
        ({"head": "relu"}, r"The 'head' parameter of MLPEstimator must be a str among .*'softmax'.*. Got 'relu' instead."),
        ({"loss": "mae"}, r"The 'loss' parameter of MLPEstimator must be a str among .* Got 'mae' instead."),
        ({"head": "softmax"}, r"head='softmax' and loss='cross_entropy' go together"),
        ({"loss": "bce"}, r"loss='bce' needs head='sigmoid'. Got head='plain'"),
        ({"batch_size": 0}, r"The 'batch_size' parameter of MLPEstimator must be None or an int in the range \[1, inf\)"),
        ({"max_epochs": 0}, r"The 'max_epochs' parameter of MLPEstimator must be an int in the range \[1, inf\). Got 0"),
        ({"validation_fraction": 1.5}, r"The 'validation_fraction' parameter .* must be None or a float in the range \(0.0, 1.0\)"),
        ({"scoring": "r2"}, r"The 'scoring' parameter of MLPEstimator must be None or a str among .* Got 'r2'"),
        ({"class_weight": "balanced"}, r"class_weight only applies to loss='cross_entropy'. Got loss='mse'"),
        ({"loss": "pearson", "output_weights": [1, 2]}, r"output_weights must hold 3 positive numbers"),
        ({"loss": "pearson", "class_counts": [1, 0, 2]}, r"class_counts must hold 3 positive numbers"),
        ({"loss": "pearson", "class_counts": [1, 2, 3], "output_weights": [1, 1, 1]}, r"either output_weights .* or class_counts"),
        ({"loss": "mse", "class_counts": [1, 2, 3]}, r"class_counts only applies to loss='pearson' or 'ccc'"),
    ],
)
def test_parameter_validation(params, message):
    X, y = _regression(n=50)
    with pytest.raises(ValueError, match=message):
        MLPEstimator(**params).fit(X, y)


def test_data_validation():
    X, y = _regression(n=50)
    m = MLPEstimator(max_epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPEstimator is expecting 20 features as input"):
        m.predict(X[:, :3])
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        MLPEstimator().fit(Xn, y)
    with pytest.raises(ValueError, match=r"labels \[9\] that are not in classes \[0, 1, 2, 3\]"):
        MLPEstimator(head="softmax", loss="cross_entropy", classes=[0, 1, 2, 3]).fit(X[:3], [0, 1, 9])


def test_sklearn_contract_and_registry():
    m = MLPEstimator(hidden_sizes=(8,))
    assert clone(m).get_params() == m.get_params()
    assert m.set_params(dropout=0.3) is m and m.dropout == 0.3
    assert not hasattr(m, "net_")  # __init__ stores hyper-parameters only
    X, y = _classes(n=400)
    yb = (y == 0).astype(int)
    for name, params in [("logreg", {"max_iter": 500}), ("svc", {}), ("mlp", {"max_epochs": 20})]:
        est = make_estimator(name, "binary", **params).fit(X, yb)
        s = predict_scores(est, X)
        assert s.shape == (400,)
        assert np.corrcoef(s, yb)[0, 1] > 0.5
    est = make_estimator("ridge", alpha=3.0).fit(X, yb)
    assert predict_scores(est, X).shape == (400,)
    est = make_estimator("mlp", "multiclass", max_epochs=3).fit(X, y)
    assert type(est).__name__ == "MLPClassifier"
    assert predict_scores(est, X).shape == (400, 4)
    with pytest.raises(ValueError, match=r"Unknown estimator 'xgb'. Use one of \[.*'logreg', 'lstm-fusion', 'mlp', 'ridge', 'svc', 'tcn-qam'"):
        make_estimator("xgb")
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\) \['depth'\] for estimator 'svc' \(LinearClassifier\)"):
        make_estimator("svc", depth=3)
    with pytest.raises(ValueError, match="Estimator 'ridge' does not handle binary problems; it handles regression"):
        make_estimator("ridge", "binary")
