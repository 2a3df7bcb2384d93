"""Early fusion, late blending and threshold search on planted signal."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from affectstore.train.estimators import predict_scores
from affectstore.train.fusion import BlendSearch, ConcatFeatures, ThresholdSearch, apply_decision, simplex_grid
from affectstore.train.metrics import expr_macro_f1, mean_pearson_r, pearson_r, weighted_f1


def test_simplex_grid():
    g = simplex_grid(3, 0.05)
    assert g.shape == (231, 3)
    np.testing.assert_allclose(g.sum(axis=1), 1.0)
    assert len({tuple(r) for r in np.round(g, 9)}) == 231
    np.testing.assert_array_equal(simplex_grid(1, 0.5), [[1.0]])
    with pytest.raises(ValueError, match=r"step must divide 1 into a whole number of steps .* Got 0.3 instead"):
        simplex_grid(2, 0.3)


def test_blend_finds_informative_modality():
    rng = np.random.default_rng(0)
    y = rng.random((500, 2))
    good = y + 0.1 * rng.normal(size=y.shape)
    weak = y + 1.0 * rng.normal(size=y.shape)
    noise = rng.random(y.shape)
    b = BlendSearch(metric="mean_pearson_r", step=0.1).fit([noise, good, weak], y)
    assert b.weights_.shape == (3,)
    assert b.weights_[1] >= 0.7 and b.weights_[0] <= 0.1
    assert b.score_ == pytest.approx(mean_pearson_r(y, b.transform([noise, good, weak])))
    assert b.score_ >= mean_pearson_r(y, good) - 1e-12  # weight (0, 1, 0) is on the grid
    assert b.grid_scores_.shape == (len(b.grid_),)


def test_blend_per_output_picks_a_modality_per_column():
    rng = np.random.default_rng(1)
    y = rng.random((400, 2))
    a = np.stack([y[:, 0], rng.random(400)], axis=1) + 0.05 * rng.normal(size=(400, 2))  # knows column 0
    b = np.stack([rng.random(400), y[:, 1]], axis=1) + 0.05 * rng.normal(size=(400, 2))  # knows column 1
    blend = BlendSearch(metric="pearson_r", step=0.05, per_output=True).fit([a, b], y)
    assert blend.weights_.shape == (2, 2)
    assert blend.weights_[0, 0] > 0.8 and blend.weights_[1, 1] > 0.8
    out = blend.transform([a, b])
    np.testing.assert_allclose(out[:, 0], blend.weights_[0, 0] * a[:, 0] + blend.weights_[0, 1] * b[:, 0])
    assert mean_pearson_r(y, out) > 0.95
    glob = BlendSearch(metric="mean_pearson_r", step=0.05).fit([a, b], y)
    assert blend.score_ > glob.score_


def test_blend_classification_with_argmax_and_sklearn_models():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 8, 800)
    X1 = rng.normal(size=(800, 8)) + 2 * np.eye(8)[y]  # informative
    X2 = rng.normal(size=(800, 8))  # noise
    m1 = LogisticRegression(max_iter=300).fit(X1[:400], y[:400])
    m2 = LogisticRegression(max_iter=300).fit(X2[:400], y[:400])
    p = [predict_scores(m1, X1[400:]), predict_scores(m2, X2[400:])]
    b = BlendSearch(metric="expr_macro_f1", step=0.25, decision="argmax").fit(p, y[400:])
    assert b.weights_[0] >= 0.75
    assert b.predict(p).shape == (400,)
    assert b.score_ == pytest.approx(expr_macro_f1(y[400:], b.predict(p)))


def test_blend_binary_svc_decision_values():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    X = rng.normal(size=(600, 4)) + y[:, None]
    s1 = predict_scores(SVC().fit(X[:300], y[:300]), X[300:])
    s2 = rng.normal(size=300)
    b = BlendSearch(metric="weighted_f1", step=0.5, decision=0.0).fit([s1, s2], y[300:])
    np.testing.assert_array_equal(b.weights_, [1.0, 0.0])
    assert b.transform([s1, s2]).shape == (300,)


def test_threshold_search_beats_half_on_imbalanced_data():
    rng = np.random.default_rng(4)
    y = (rng.random(3000) < 0.1).astype(int)
    # A calibrated-looking but shy score: positives sit around 0.35, negatives around 0.1.
    scores = np.clip(np.where(y == 1, 0.35, 0.1) + 0.08 * rng.normal(size=3000), 0, 1)
    t = ThresholdSearch(metric="weighted_f1").fit(scores[:1500], y[:1500])
    assert 0.1 < t.threshold_ < 0.5
    test_at_t = weighted_f1(y[1500:], t.predict(scores[1500:]))
    test_at_half = weighted_f1(y[1500:], (scores[1500:] >= 0.5).astype(int))
    assert test_at_t > test_at_half + 0.02
    assert t.scores_.shape == t.thresholds_.shape == (99,)
    with pytest.raises(ValueError, match=r"y must have shape \(10,\) like scores. Got \(9,\) instead"):
        ThresholdSearch().fit(np.zeros(10), np.zeros(9))


def test_concat_features_standardises_blocks():
    rng = np.random.default_rng(5)
    a = rng.normal(100, 10, size=(50, 3))
    b = rng.normal(0, 0.01, size=(50, 2))
    f = ConcatFeatures().fit([a, b])
    out = f.transform([a, b])
    assert out.shape == (50, 5)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-9)
    raw = ConcatFeatures(standardize=False).fit_transform([a, b])
    np.testing.assert_array_equal(raw, np.concatenate([a, b], axis=1))
    with pytest.raises(ValueError, match=r"Blocks have dimensions \[3, 3\], but ConcatFeatures was fitted with \[3, 2\]"):
        f.transform([a, a])
    with pytest.raises(ValueError, match=r"same number of rows. Got \[10, 50\]"):
        f.transform([a, b[:10]])


def test_blend_and_decision_errors():
    with pytest.raises(ValueError, match=r"same shape. Got \[\(3,\), \(4,\)\]"):
        BlendSearch().fit([np.zeros(3), np.zeros(4)], np.zeros(3))
    with pytest.raises(ValueError, match="cannot use decision='argmax'"):
        BlendSearch(per_output=True, decision="argmax").fit([np.zeros((3, 2))], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="decision must be None, 'argmax' or a float threshold. Got 'max'"):
        apply_decision(np.zeros((2, 2)), "max")
    b = BlendSearch(metric=pearson_r, step=0.5).fit([np.arange(5.0), np.arange(5.0) ** 2], np.arange(5.0))
    with pytest.raises(ValueError, match="Got predictions of 1 modalities; the blend was fitted on 2"):
        b.transform([np.arange(5.0)])
