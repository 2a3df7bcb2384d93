"""Metrics agree with scipy / sklearn to 1e-9 and handle degenerate inputs explicitly."""

import logging

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score

from affectstore.train import metrics as M


def _ccc_direct(t, p):
    t, p = np.asarray(t, float), np.asarray(p, float)
    cov = np.mean((t - t.mean()) * (p - p.mean()))
    return 2 * cov / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)


@pytest.mark.parametrize("seed", range(5))
def test_pearson_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    t = rng.random((200, 6))
    p = 0.3 * t + rng.normal(size=(200, 6))
    per = M.pearson_r_per_output(t, p)
    expected = np.array([pearsonr(t[:, j], p[:, j])[0] for j in range(6)])
    np.testing.assert_allclose(per, expected, rtol=0, atol=1e-9)
    assert abs(M.mean_pearson_r(t, p) - expected.mean()) < 1e-9
    assert abs(M.pearson_r(t[:, 2], p[:, 2]) - expected[2]) < 1e-9


@pytest.mark.parametrize("seed", range(5))
def test_ccc_matches_direct_formula(seed):
    rng = np.random.default_rng(seed)
    t = rng.uniform(-1, 1, (300, 2))
    p = 0.5 * t + 0.2 + 0.3 * rng.normal(size=(300, 2))
    expected = [_ccc_direct(t[:, j], p[:, j]) for j in range(2)]
    np.testing.assert_allclose(M.ccc_per_output(t, p), expected, rtol=0, atol=1e-9)
    assert abs(M.mean_ccc(t, p) - np.mean(expected)) < 1e-9
    assert abs(M.ccc(t[:, 0], p[:, 0]) - expected[0]) < 1e-9
    # CCC is penalised by a shift where Pearson is not.
    assert M.ccc(t[:, 0], t[:, 0] + 1) < 1.0 - 1e-3
    assert abs(M.ccc(t[:, 0], t[:, 0]) - 1.0) < 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_f1_and_accuracy_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, 500)
    p = np.where(rng.random(500) < 0.7, t, 1 - t)
    assert abs(M.weighted_f1(t, p) - f1_score(t, p, average="weighted")) < 1e-9
    t8 = rng.integers(0, 7, 400)  # class 7 never occurs in truth
    p8 = rng.integers(0, 6, 400)  # classes 6 and 7 never predicted
    expected = f1_score(t8, p8, labels=list(range(8)), average="macro", zero_division=0)
    assert abs(M.expr_macro_f1(t8, p8) - expected) < 1e-9
    # Absent classes count (as 0) in the EXPR average, unlike the default macro average.
    assert M.expr_macro_f1(t8, p8) < M.macro_f1(t8, p8)
    assert abs(M.macro_f1(t8, p8) - f1_score(t8, p8, average="macro")) < 1e-9
    assert abs(M.accuracy(t8, p8) - accuracy_score(t8, p8)) < 1e-9
    scores = M.clips_classification_scores(t8, p8)
    assert scores == {"macro_f1": M.macro_f1(t8, p8), "accuracy": M.accuracy(t8, p8)}
    np.testing.assert_allclose(
        M.per_class_f1(t8, p8, range(8)), f1_score(t8, p8, labels=list(range(8)), average=None, zero_division=0)
    )


def test_clips_regression_scores():
    rng = np.random.default_rng(1)
    t = rng.normal(size=100)
    p = t + rng.normal(size=100)
    s = M.clips_regression_scores(t, p)
    assert abs(s["pearson_r"] - pearsonr(t, p)[0]) < 1e-9
    assert abs(s["ccc"] - _ccc_direct(t, p)) < 1e-9


def test_constant_prediction_is_zero_with_warning(caplog):
    t = np.array([[0.1, 0.2], [0.5, 0.1], [0.9, 0.7]])
    p = np.array([[0.3, 0.1], [0.3, 0.5], [0.3, 0.9]])  # first column constant
    with caplog.at_level(logging.WARNING, logger="affectstore.train.metrics"):
        r = M.pearson_r_per_output(t, p)
    assert r[0] == 0.0
    assert abs(r[1] - pearsonr(t[:, 1], p[:, 1])[0]) < 1e-9
    assert "undefined for constant inputs" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="affectstore.train.metrics"):
        assert M.ccc(np.full(4, 0.5), np.full(4, 0.5)) == 0.0
    assert "CCC is undefined" in caplog.text
    # Constant prediction against varying truth: CCC is defined and exactly 0.
    assert M.ccc([0.0, 1.0, 2.0], [1.0, 1.0, 1.0]) == 0.0


def test_metric_input_errors():
    with pytest.raises(ValueError, match=r"same shape .* Got \(3,\) and \(4,\) instead"):
        M.pearson_r([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="at least 2 samples. Got 1"):
        M.ccc([1.0], [1.0])
    with pytest.raises(ValueError, match="pass class labels, not probabilities"):
        M.weighted_f1([0, 1], [[0.2, 0.8], [0.6, 0.4]])
    with pytest.raises(ValueError, match=r"Unknown metric 'f2'. Use one of \["):
        M.get_metric("f2")
    assert M.get_metric("mean_ccc") is M.mean_ccc
    assert all(name in M.METRICS for name in M.TASK_METRICS.values())
