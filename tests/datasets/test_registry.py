"""The adapter registry."""

import pytest

from affectstore.datasets import (
    DatasetAdapter,
    DatasetError,
    available_adapters,
    get_adapter,
    register_adapter,
)
from affectstore.testing.datasets import make_clips_dataset


def test_known_adapters():
    assert available_adapters() == ["affwild2", "bah", "clips", "emi"]


def test_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'mosei'; known datasets: affwild2, bah, clips, emi"):
        get_adapter("mosei", tmp_path)


def test_unknown_option_lists_accepted(tmp_path):
    with pytest.raises(DatasetError, match=r"unknown option\(s\) 'fsp' for dataset 'bah'; accepted options: strict, fps, reset_period"):
        get_adapter("bah", tmp_path, fsp=25)


def test_root_must_exist(tmp_path):
    with pytest.raises(DatasetError, match="dataset root '.*nowhere' is not a folder"):
        get_adapter("emi", tmp_path / "nowhere")


def test_registering_twice_is_an_error():
    with pytest.raises(ValueError, match="dataset adapter 'emi' is already registered"):

        @register_adapter("emi")
        class Other(DatasetAdapter):
            pass


def test_unknown_split_and_id(tmp_path):
    built = make_clips_dataset(tmp_path, n_per_class=2, extensions=(".wav",))
    ds = get_adapter("clips", built.root, targets="emotion")
    with pytest.raises(DatasetError, match="unknown split 'val' for clips at .*; known splits: train, test"):
        ds.manifest("val")
    with pytest.raises(DatasetError, match=r"no video 'spk1/clip_0.mp3' in clips at .*; did you mean 'spk1/clip_0.wav'"):
        ds.entry("spk1/clip_0.mp3")
