"""Alignment onto label frames and filling of missing frames."""

import numpy as np
import pytest

from affectstore.train.align import FrameAligner, align_to_frames, fill_missing


def test_interp1d_exact_on_linear_sequence_with_held_edges():
    times = np.arange(10) * 0.02 + 0.01  # 50 Hz samples from 10 ms
    values = np.stack([3 * times + 1, -times], axis=1)
    frames = np.array([0.0, 0.05, 0.1, 0.123, 0.19, 0.5])  # before, inside, after the samples
    out = align_to_frames(values, times, frames)
    inside = (frames >= times[0]) & (frames <= times[-1])
    np.testing.assert_allclose(out[inside], np.stack([3 * frames + 1, -frames], axis=1)[inside], atol=1e-12)
    np.testing.assert_allclose(out[0], values[0])  # held, not extrapolated
    np.testing.assert_allclose(out[-1], values[-1])


def test_position_maps_index_range_onto_frames():
    values = np.arange(5.0)[:, None] * 2  # 0, 2, 4, 6, 8
    out = align_to_frames(values, None, 9, method="position")
    np.testing.assert_allclose(out[:, 0], np.arange(9.0))
    # Timestamps are ignored by "position": the same with any times.
    np.testing.assert_allclose(align_to_frames(values, np.arange(5) * 7.0, np.zeros(9), method="position"), out)


def test_single_sample_and_1d():
    assert np.all(align_to_frames(np.array([[4.0, 5.0]]), [1.0], [0.0, 2.0]) == [[4, 5], [4, 5]])
    out = align_to_frames(np.array([0.0, 10.0]), [0.0, 1.0], [0.25, 0.5])
    assert out.shape == (2,)
    np.testing.assert_allclose(out, [2.5, 5.0])


def test_nearest_kind():
    out = align_to_frames(np.array([[0.0], [10.0]]), [0.0, 1.0], [0.2, 0.8], kind="nearest")
    np.testing.assert_array_equal(out[:, 0], [0.0, 10.0])


def test_fill_missing_interpolates_and_pads_tail():
    v = np.array([[np.nan], [np.nan], [2.0], [np.nan], [6.0], [np.nan], [np.nan]])
    out = fill_missing(v)
    np.testing.assert_allclose(out[:, 0], [2, 2, 2, 4, 6, 6, 6])
    mask = np.array([False, True, False])
    np.testing.assert_allclose(fill_missing(np.array([1.0, 99.0, 3.0]), mask), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(fill_missing(np.array([1.0, 2.0])), [1.0, 2.0])


def test_frame_aligner_transformer():
    items = [(np.arange(4.0)[:, None], np.arange(4.0), np.array([0.5, 2.5])), (np.ones((2, 1)), [0.0, 1.0], [9.0])]
    out = FrameAligner().fit_transform(items)
    np.testing.assert_allclose(out[0][:, 0], [0.5, 2.5])
    np.testing.assert_allclose(out[1], [[1.0]])


def test_alignment_errors():
    with pytest.raises(ValueError, match=r"times must be strictly increasing. Got times\[1\]=1.0 followed by 1.0"):
        align_to_frames(np.zeros((3, 1)), [0.0, 1.0, 1.0], [0.5])
    with pytest.raises(ValueError, match="empty sequence"):
        align_to_frames(np.zeros((0, 2)), [], [0.5])
    with pytest.raises(ValueError, match=r"method must be one of \('interp1d', 'position'\). Got 'spline'"):
        FrameAligner(method="spline").fit()
    with pytest.raises(ValueError, match="kind must be one of"):
        align_to_frames(np.zeros((2, 1)), [0, 1], [0.5], kind="bogus")
    with pytest.raises(ValueError, match="needs the sample times"):
        align_to_frames(np.zeros((2, 1)), None, [0.5])
    with pytest.raises(ValueError, match="All 2 rows are missing"):
        fill_missing(np.full((2, 1), np.nan))
