"""Per-video temporal smoothing and the kernel-size sweep."""

import numpy as np
import pytest

from affectstore.train.metrics import mean_ccc
from affectstore.train.smoothing import TemporalSmoother, smooth_by_group, smoothing_curve


def _noisy_smooth(seed=0, n_videos=6, length=300):
    rng = np.random.default_rng(seed)
    ys, ps, gs = [], [], []
    for v in range(n_videos):
        t = np.linspace(0, 4 * np.pi, length)
        y = np.stack([np.sin(t + v), 0.5 * np.cos(0.5 * t + v)], axis=1)
        ys.append(y)
        ps.append(y + 0.4 * rng.normal(size=y.shape))
        gs.append(np.full(length, f"video {v}"))
    return np.concatenate(ys), np.concatenate(ps), np.concatenate(gs)


@pytest.mark.parametrize("method", ["box", "median", "gaussian"])
def test_smoothing_helps_on_noisy_smooth_labels(method):
    y, p, g = _noisy_smooth()
    s = TemporalSmoother(method=method, sizes=(1, 5, 15, 31), metric="mean_ccc").fit(p, y, g)
    assert s.size_ > 1
    assert list(s.curve_) == [1, 5, 15, 31]
    assert s.curve_[1] == pytest.approx(mean_ccc(y, p))
    y2, p2, g2 = _noisy_smooth(seed=1)  # held-out videos
    assert mean_ccc(y2, s.transform(p2, g2)) > mean_ccc(y2, p2) + 0.1


def test_filters_do_not_cross_videos_and_handle_interleaving():
    values = np.array([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    np.testing.assert_array_equal(smooth_by_group(values, groups, "box", 3), values)
    # Interleaved rows: each video's rows keep their relative (time) order.
    inter = np.array([1.0, 100.0, 2.0, 200.0, 3.0, 300.0])
    gi = np.array([0, 1, 0, 1, 0, 1])
    out = smooth_by_group(inter, gi, "box", 3)
    np.testing.assert_allclose(out[gi == 0], [4 / 3, 2.0, 8 / 3])  # edges held ("nearest")
    np.testing.assert_allclose(out[gi == 1], [400 / 3, 200.0, 800 / 3])


def test_known_kernels():
    x = np.zeros(11)
    x[5] = 1.0
    g = np.zeros(11, int)
    np.testing.assert_allclose(smooth_by_group(x, g, "box", 5)[3:8], 0.2)
    assert smooth_by_group(x, g, "median", 3).sum() == 0.0  # a single spike is removed
    gauss = smooth_by_group(x, g, "gaussian", 7)
    assert np.count_nonzero(gauss) == 7 and gauss.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(smooth_by_group(x, g, "gaussian", 1), x)


def test_curve_with_threshold_decision():
    rng = np.random.default_rng(0)
    y = np.repeat(rng.integers(0, 2, 40), 25)  # 25-frame runs
    p = np.clip(y + 0.6 * rng.normal(size=y.size), 0, 1)
    curve = smoothing_curve(y, p, np.zeros(y.size), "weighted_f1", "box", (1, 9), decision=0.5)
    assert curve[9] > curve[1]


def test_smoothing_errors():
    with pytest.raises(ValueError, match=r"method must be one of \('box', 'median', 'gaussian'\). Got 'mean'"):
        smooth_by_group(np.zeros(3), np.zeros(3), "mean")
    with pytest.raises(ValueError, match="size must be a positive int .* Got 0 instead"):
        smooth_by_group(np.zeros(3), np.zeros(3), "box", 0)
    with pytest.raises(ValueError, match=r"one group id per row. Got values \(3,\) and groups \(2,\)"):
        smooth_by_group(np.zeros(3), np.zeros(2))


@pytest.mark.parametrize("size", [3, 5, 7])
def test_truncate_edge_is_the_mean_over_the_window_cut_at_the_ends(size):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 2))
    groups = np.array(["a"] * 25 + ["b"] * 15)
    out = smooth_by_group(x, groups, "box", size, edge="truncate")
    r = (size - 1) // 2
    for g in ("a", "b"):
        xs = x[groups == g]
        want = np.stack([xs[max(0, i - r): i + r + 1].mean(axis=0) for i in range(len(xs))])
        np.testing.assert_allclose(out[groups == g], want, rtol=1e-12, atol=1e-12)
    # Inside the video both edge modes agree; at the first frame they differ.
    near = smooth_by_group(x, groups, "box", size)
    np.testing.assert_allclose(out[r:25 - r], near[r:25 - r], atol=1e-12)
    assert not np.allclose(out[0], near[0])


def test_truncate_edge_gaussian_and_median():
    rng = np.random.default_rng(6)
    x = rng.normal(size=30)
    g = np.zeros(30)
    from scipy import ndimage

    gauss = smooth_by_group(x, g, "gaussian", 7, edge="truncate")
    ref = ndimage.gaussian_filter1d(x, 7 / 6.0, mode="nearest", radius=3)
    np.testing.assert_allclose(gauss[3:-3], ref[3:-3], atol=1e-12)  # same kernel inside
    w = np.exp(-0.5 * (np.arange(0, 4) / (7 / 6.0)) ** 2)
    assert gauss[0] == pytest.approx((w * x[:4]).sum() / w.sum())  # renormalised weights at the edge
    med = smooth_by_group(x, g, "median", 5, edge="truncate")
    assert med[0] == pytest.approx(np.median(x[:3])) and med[10] == pytest.approx(np.median(x[8:13]))
    with pytest.raises(ValueError, match=r"edge must be one of \('nearest', 'truncate'\). Got 'wrap'"):
        smooth_by_group(x, g, "box", 3, edge="wrap")
