"""Confidence override and the video-level filter."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from affectstore.train.filters import ConfidenceOverride, VideoFilter, confidence_override, zero_negative_videos
from affectstore.train.metrics import expr_macro_f1


def test_confidence_override_basic_and_class_map():
    pred = np.array([0, 1, 2, 3])
    head = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.05, 0.05, 0.9], [0.1, 0.85, 0.05]])
    np.testing.assert_array_equal(confidence_override(pred, head, 0.8), [0, 1, 2, 1])
    # Head columns map onto task labels 5, 6, 7.
    np.testing.assert_array_equal(confidence_override(pred, head, 0.8, head_classes=[5, 6, 7]), [5, 1, 7, 6])
    np.testing.assert_array_equal(confidence_override(pred, head, 1.0), pred)  # 1.0 never fires
    with pytest.raises(ValueError, match="apply a softmax to logits first"):
        confidence_override(pred, head * 3, 0.5)
    with pytest.raises(ValueError, match="head_classes must name 3 classes, one per head column. Got 2"):
        confidence_override(pred, head, 0.5, head_classes=[1, 2])


def test_override_threshold_tuned_on_validation():
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 8, n)
    # A weak model: right 40 % of the time.
    model = np.where(rng.random(n) < 0.4, y, rng.integers(0, 8, n))
    # A head that is right and very confident on 30 % of frames, vague elsewhere.
    head = np.full((n, 8), 1 / 8)
    sure = rng.random(n) < 0.3
    head[sure] = 0.02
    head[sure, y[sure]] = 0.86
    f = ConfidenceOverride(metric="expr_macro_f1").fit(model[:1000], head[:1000], y[:1000])
    assert 0.125 <= f.threshold_ < 0.86
    assert f.score_ > expr_macro_f1(y[:1000], model[:1000])
    assert expr_macro_f1(y[1000:], f.predict(model[1000:], head[1000:])) > expr_macro_f1(y[1000:], model[1000:]) + 0.1
    # A useless head: the search declines (highest threshold among ties, 1.0 never fires).
    f2 = ConfidenceOverride().fit(model, np.full((n, 8), 1 / 8), y)
    assert f2.threshold_ == 1.0


def test_video_filter_zeroes_negative_videos():
    rng = np.random.default_rng(0)
    n_videos = 60
    y_video = np.arange(n_videos) % 2
    emb = rng.normal(size=(n_videos, 16))
    emb[:, 0] += 3 * (2 * y_video - 1)  # the transcript embedding carries the video label
    ids = np.array([f"s{i}/Visite 1/q.mp4" for i in range(n_videos)])
    f = VideoFilter().fit(emb[:40], y_video[:40])
    np.testing.assert_array_equal(f.predict(emb[40:]), y_video[40:])
    frame_videos = np.repeat(ids[40:], 5)
    frame_pred = np.ones(frame_videos.size)
    out = f.apply(frame_pred, frame_videos, ids[40:], emb[40:])
    np.testing.assert_array_equal(out, np.repeat(y_video[40:], 5))
    assert frame_pred.sum() == frame_videos.size  # input untouched
    f_lr = VideoFilter(LogisticRegression()).fit(emb, y_video)
    assert isinstance(f_lr.estimator_, LogisticRegression) and f_lr.estimator is not f_lr.estimator_
    with pytest.raises(ValueError, match=r"y_video must hold 0/1 video labels. Got values \[0, 2\]"):
        VideoFilter().fit(emb[:2], [0, 2])


def test_zero_negative_videos():
    out = zero_negative_videos(np.array([0.3, 0.8, 0.9]), ["a", "b", "a"], {"a"})
    np.testing.assert_array_equal(out, [0.0, 0.8, 0.0])
