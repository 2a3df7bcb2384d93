"""Clips adapter on generated folders and on ../shared/data (RAVDESS dev, CREMA-D) as they are."""

import numpy as np
import pytest

from affectstore.datasets import (
    AnnotationError,
    DatasetError,
    MissingFileError,
    get_adapter,
)
from affectstore.media import load_audio
from affectstore.testing.datasets import make_clips_dataset


def test_generated_clips(tmp_path):
    built = make_clips_dataset(tmp_path, classes=("happy", "sad"), n_per_class=3)
    ds = get_adapter("clips", built.root, targets="emotion,arousal", group_column="speaker")
    assert ds.task.kind == "mixed"
    assert [(t.name, t.kind, t.classes) for t in ds.task.targets] == [
        ("emotion", "classification", ("happy", "sad")),
        ("arousal", "regression", None),
    ]
    assert set(ds.splits) == {"train", "test"}
    assert [e.id for e in ds.manifest("train")] == built.splits["train"]
    labels = ds.video_labels()
    np.testing.assert_allclose(labels.values, np.stack([built.video_labels[i] for i in labels.ids]))
    for entry in ds.manifest():
        assert entry.group == entry.id.split("/")[0]
        assert entry.audio is not None
        assert (entry.video is not None) == entry.id.endswith(".mp4")
        assert len(load_audio(entry.audio)) > 15_000
    assert ds.problems == []


def test_declared_kinds_and_errors(tmp_path):
    built = make_clips_dataset(tmp_path, n_per_class=1, with_split=False, extensions=(".wav",))
    ds = get_adapter("clips", built.root, targets={"arousal": "classification"})
    assert ds.task.targets[0].kind == "classification" and ds.splits == ("all",)
    with pytest.raises(DatasetError, match=r"target 'valence' is not a column of the labels CSV; columns: clip, speaker, emotion, arousal"):
        get_adapter("clips", built.root, targets="valence")
    with pytest.raises(DatasetError, match="target 'emotion' has kind 'ordinal'; expected 'classification' or 'regression'"):
        get_adapter("clips", built.root, targets="emotion:ordinal")
    with pytest.raises(MissingFileError, match="no labels.csv in"):
        get_adapter("clips", tmp_path / "spk1")


def test_bad_regression_value_and_missing_clip(tmp_path):
    built = make_clips_dataset(tmp_path, n_per_class=1, extensions=(".wav",))
    with (built.root / "labels.csv").open("a") as f:
        f.write("spk1/gone.wav,train,spk1,happy,0.5\n")
        f.write("spk1/clip_0.wav,train,spk1,happy,loud\n")
    with pytest.raises(AnnotationError, match=r"labels.csv:5: arousal of 'spk1/clip_0.wav' is 'loud'; expected a number"):
        get_adapter("clips", built.root, targets="emotion,arousal:regression").manifest()
    ds = get_adapter("clips", built.root, targets="emotion,arousal:regression", strict=False)
    assert ds.entry("spk1/gone.wav").audio is None
    messages = [str(p) for p in ds.problems]
    assert any("gone.wav: missing clip (labels.csv line 4)" in m for m in messages)
    assert any(m.endswith("labels.csv:5: arousal of 'spk1/clip_0.wav' is 'loud'; expected a number (regression target)") for m in messages)


def test_ravdess_dev_emotion_intensity_grouped_by_actor(shared_data):
    ds = get_adapter("clips", shared_data / "ravdess-dev", targets="emotion,intensity", group_column="actor")
    entries = ds.manifest()
    assert len(entries) == 720 and ds.problems == []
    assert {e.group for e in entries} == {str(a) for a in range(1, 13)}
    assert all(e.video is None and e.audio.suffix == ".flac" for e in entries)
    emotion, intensity = ds.task.targets
    assert emotion.classes == ("angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
    assert intensity.classes == ("normal", "strong")
    labels = ds.video_labels()
    counts = np.bincount(labels.values[:, 0].astype(int))
    assert counts.tolist() == [96, 96, 96, 96, 96, 48, 96, 96]  # neutral has no strong takes
    neutral = labels.values[:, 0] == emotion.classes.index("neutral")
    assert (labels.values[neutral, 1] == intensity.classes.index("normal")).all()
    # Every actor has all 60 takes: a split by actor keeps the classes balanced.
    per_actor = {g: sum(1 for e in entries if e.group == g) for g in {e.group for e in entries}}
    assert set(per_actor.values()) == {60}


def test_crema_d_as_it_is(shared_data):
    ds = get_adapter("clips", shared_data / "crema-d", targets="emotion", group_column="actor")
    entries = ds.manifest()
    assert len(entries) == 12 and ds.problems == []
    videos = [e for e in entries if e.video is not None]
    assert [e.id for e in videos] == [f"1001_DFA_{c}_XX.flv" for c in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")]
    assert all(e.audio == e.video for e in videos)
    assert {e.group for e in entries} == {"1001", "1002"}
    assert ds.task.targets[0].classes == ("anger", "disgust", "fear", "happy", "neutral", "sad")
    assert np.bincount(ds.video_labels().values[:, 0].astype(int)).tolist() == [2] * 6


def test_crema_d_ratings_csv_is_not_one_row_per_clip(shared_data):
    # ratings.csv names clips without extension (resolved to the .flv/.mp3) but has one row
    # per rating mode, so it cannot serve as a clip list: the error says why.
    ds = get_adapter("clips", shared_data / "crema-d", labels="ratings.csv", path_column="fileName", targets="emoVote")
    with pytest.raises(DatasetError, match=r"video id '1001_DFA_\w+_XX' appears twice \(splits 'all' and 'all'\); ids must be unique"):
        ds.manifest()


def test_clip_paths_without_extension(tmp_path):
    built = make_clips_dataset(tmp_path, n_per_class=1, extensions=(".flac",))
    path = built.root / "labels.csv"
    path.write_text(path.read_text().replace(".flac", ""))
    ds = get_adapter("clips", built.root, targets="emotion")
    assert [e.audio.name for e in ds.manifest()] == ["clip_0.flac", "clip_1.flac"]
    assert ds.problems == []
