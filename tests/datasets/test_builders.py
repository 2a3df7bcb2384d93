"""The test-data builders: planted signal and argument checks."""

import numpy as np
import pytest

from affectstore.datasets import get_adapter
from affectstore.media import load_audio, sample_frames
from affectstore.testing.datasets import make_clips_dataset, make_emi_dataset, make_media


def test_plant_makes_loudness_and_brightness_follow_the_label(tmp_path):
    labels = np.zeros((4, 6))
    labels[:, 0] = [0.1, 0.9, 0.4, 0.7]
    built = make_emi_dataset(tmp_path, n_train=4, n_valid=0, n_test=0, n_faces=2, labels=labels, plant=True)
    ds = get_adapter("emi", built.root)
    y = ds.video_labels().values[:, 0]
    loudness = [np.abs(load_audio(e.audio)).max() for e in ds.manifest()]
    brightness = [sample_frames(e.video, rate=2).images[:, :4, :4].mean() for e in ds.manifest()]
    faces = [ds.face_crops(e.id).load()[1][:, 0, 0].mean() for e in ds.manifest()]
    for feature in (loudness, brightness, faces):
        assert np.corrcoef(feature, y)[0, 1] > 0.99


def test_clips_plant_by_class(tmp_path):
    built = make_clips_dataset(tmp_path, classes=("calm", "angry"), n_per_class=2, extensions=(".wav",), plant=True)
    ds = get_adapter("clips", built.root, targets="emotion")
    labels = ds.video_labels()
    loud = np.array([np.abs(load_audio(ds.entry(i).audio)).max() for i in labels.ids])
    # Planted level = class index / (n_classes - 1) over the sorted classes (angry=0, calm=1).
    calm = labels.values[:, 0] == ds.task.targets[0].classes.index("calm")
    assert loud[calm].min() > loud[~calm].max()


def test_make_media_argument_errors(tmp_path):
    with pytest.raises(ValueError, match=r"MP3 in FLV needs sample_rate in \(11025, 22050, 44100\). Got 16000 instead"):
        make_media(tmp_path / "a.flv", sample_rate=16_000)
    with pytest.raises(ValueError, match="cannot generate '.ogg' files"):
        make_media(tmp_path / "a.ogg")
    with pytest.raises(ValueError, match="nothing to write"):
        make_media(tmp_path / "a.wav", audio=False)
