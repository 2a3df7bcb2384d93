"""Video frames at a rate with exact stream timestamps; face crops."""

import numpy as np
import pytest

from affectstore.media import (
    frame_times,
    iter_frames,
    load_face_crops,
    probe,
    sample_frames,
    video_duration,
)
from affectstore.media.errors import CorruptMediaError, UnsupportedMediaError
from affectstore.testing.datasets import make_face_crop, make_media


def test_all_frames_with_stream_timestamps(tmp_path):
    path = make_media(tmp_path / "v.mp4", duration=1.0, fps=25.0, size=(64, 48))
    frames = sample_frames(path)
    assert frames.images.shape == (25, 48, 64, 3) and frames.images.dtype == np.uint8
    np.testing.assert_allclose(frames.times, np.arange(25) / 25.0, atol=1e-6)
    # The square moves left to right: its column of maximum brightness increases.
    columns = [int(np.argmax(img[24, :, 0])) for img in frames.images]
    assert columns[0] < columns[12] < columns[-1]


@pytest.mark.parametrize("rate,expected", [(5.0, 5), (10.0, 10), (25.0, 25), (100.0, 25)])
def test_sample_at_rate(tmp_path, rate, expected):
    path = make_media(tmp_path / "v.mp4", duration=1.0, fps=25.0, audio=False)
    times = sample_frames(path, rate=rate).times
    assert len(times) == expected
    # Each sampled time is a real frame time (a multiple of 1/25), never interpolated.
    np.testing.assert_allclose(times * 25, np.round(times * 25), atol=1e-6)
    if rate <= 25:
        np.testing.assert_allclose(np.diff(times), 1.0 / rate, atol=1 / 25 + 1e-6)


def test_timing_ignores_container_fps_metadata(tmp_path):
    # 29.97 fps FLV: timestamps come from the stream (ms resolution), not 1/fps arithmetic.
    path = make_media(tmp_path / "v.flv", duration=1.0, fps=30000 / 1001, sample_rate=44_100)
    times = frame_times(path)
    assert len(times) == 30
    # The FLV muxer starts the stream at a small offset; times keep it, as the stream says.
    assert 0.0 <= times[0] < 0.05
    np.testing.assert_allclose(times - times[0], np.arange(30) * 1001 / 30000, atol=2e-3)
    assert video_duration(path) == pytest.approx(times[0] + 30 * 1001 / 30000, abs=5e-3)


def test_resize(tmp_path):
    path = make_media(tmp_path / "v.mp4", duration=0.2, fps=10.0)
    time, image = next(iter_frames(path, size=(32, 24)))
    assert time == 0.0 and image.shape == (24, 32, 3)


def test_bad_arguments(tmp_path):
    path = make_media(tmp_path / "v.mp4", duration=0.2)
    with pytest.raises(ValueError, match="rate must be a positive number of frames per second or None. Got 0 instead"):
        sample_frames(path, rate=0)


def test_crema_d_frames(shared_data):
    path = shared_data / "crema-d" / "1001_DFA_ANG_XX.flv"
    info = probe(path)
    assert info.fps == pytest.approx(29.97, abs=0.01) and (info.width, info.height) == (480, 360)
    times = frame_times(path)
    assert len(times) == 67 and times[0] == pytest.approx(0.027)
    assert np.median(np.diff(times)) == pytest.approx(1001 / 30000, abs=1e-3)
    sampled = sample_frames(path, rate=6.0, size=(96, 72))
    assert sampled.images.shape[1:] == (72, 96, 3)
    assert len(sampled) == pytest.approx(6 * (times[-1] - times[0]), abs=1.5)
    assert set(sampled.times) <= set(times)


def test_load_face_crops(tmp_path):
    paths = [make_face_crop(tmp_path / f"{i}.jpg", level=i / 4) for i in range(5)]
    times, images = load_face_crops(paths, [0.0, 0.1, 0.2, 0.3, 0.4])
    assert images.shape == (5, 16, 16, 3) and images.dtype == np.uint8 and times.dtype == np.float64
    assert images[0, 0, 0, 0] < 10 and images[4, 0, 0, 0] > 245
    _, resized = load_face_crops(paths[:2], size=(8, 8))
    assert resized.shape == (2, 8, 8, 3)


def test_face_crops_errors(tmp_path):
    a = make_face_crop(tmp_path / "a.jpg", size=(16, 16))
    b = make_face_crop(tmp_path / "b.jpg", size=(20, 16))
    with pytest.raises(ValueError, match=r"b.jpg: face crop is 20x16, the first one is 16x16; pass size="):
        load_face_crops([a, b])
    bad = tmp_path / "c.jpg"
    bad.write_text("not an image")
    with pytest.raises(CorruptMediaError, match="c.jpg: cannot decode the image"):
        load_face_crops([bad])
    with pytest.raises(UnsupportedMediaError, match="not a face-crop image type"):
        load_face_crops([tmp_path / "x.gif"])
