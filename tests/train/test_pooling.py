"""Mean and STAT pooling over ragged sequences; empty sequences are an explicit choice."""

import numpy as np
import pytest
from sklearn.base import clone

from affectstore.train.pooling import SequencePooler, pool_sequences


def _seqs():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(t, 3)) for t in (5, 1, 12)]


def test_stat_pooling_matches_numpy_per_sequence():
    seqs = _seqs()
    out = SequencePooler("stat").fit_transform(seqs)
    assert out.shape == (3, 12)
    for i, s in enumerate(seqs):
        expected = np.concatenate([s.mean(0), s.std(0), s.min(0), s.max(0)])
        np.testing.assert_allclose(out[i], expected, atol=1e-12)


def test_mean_pooling_and_3d_input():
    arr = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    out = pool_sequences(arr, "mean")
    np.testing.assert_allclose(out, arr.mean(axis=1))
    assert out.dtype == np.float32


def test_empty_sequence_error_names_the_video():
    seqs = _seqs() + [np.zeros((0, 3))]
    with pytest.raises(ValueError, match=r"1 sequence\(s\) have no time steps, e.g. \['vid_d'\]"):
        pool_sequences(seqs, ids=["vid_a", "vid_b", "vid_c", "vid_d"])
    with pytest.raises(ValueError, match=r"e.g. \[3\]"):
        SequencePooler().fit(seqs).transform(seqs)


def test_empty_sequence_zeros_and_flag():
    seqs = [np.zeros((0, 2)), np.array([[1.0, 3.0], [3.0, 5.0]])]
    z = pool_sequences(seqs, "mean", on_empty="zeros")
    np.testing.assert_array_equal(z, [[0, 0], [2, 4]])
    f = SequencePooler("stat", on_empty="flag").fit(seqs)
    out = f.transform(seqs)
    assert out.shape == (2, 9)
    np.testing.assert_array_equal(out[:, -1], [1, 0])
    np.testing.assert_array_equal(out[0, :-1], 0)
    names = f.get_feature_names_out(["a", "b"])
    assert list(names) == ["mean_a", "mean_b", "std_a", "std_b", "min_a", "min_b", "max_a", "max_b", "is_empty"]


def test_pooling_validation():
    with pytest.raises(ValueError, match=r"method must be one of \('mean', 'meanstd', 'stat'\). Got 'median' instead"):
        SequencePooler("median").fit(_seqs())
    with pytest.raises(ValueError, match="same feature dimension. Got dimensions \\[2, 3\\]"):
        pool_sequences([np.zeros((2, 3)), np.zeros((2, 2))])
    with pytest.raises(ValueError, match="fitted with 3"):
        SequencePooler().fit(_seqs()).transform([np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"Sequence 'x' must be a 2-D \(T, D\) array. Got shape \(4,\)"):
        pool_sequences([np.zeros(4)], ids=["x"])
    p = SequencePooler("mean", on_empty="zeros")
    assert clone(p).get_params() == {"method": "mean", "on_empty": "zeros"}



def test_meanstd_is_mean_then_population_std():
    rng = np.random.default_rng(3)
    seqs = [rng.normal(size=(n, 4)).astype(np.float32) for n in (1, 5, 40)]
    out = pool_sequences(seqs, method="meanstd")
    assert out.shape == (3, 8)
    for row, x in zip(out, seqs, strict=True):
        np.testing.assert_allclose(row[:4], x.astype(np.float64).mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(row[4:], x.astype(np.float64).std(axis=0, ddof=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out, pool_sequences(seqs, method="stat")[:, :8])
