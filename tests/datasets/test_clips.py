"""Clips adapter on generated folders and on ../shared/data (RAVDESS dev, CREMA-D) as they are."""

import logging
import re

import numpy as np
import pytest

from affectstore.datasets import (
    AnnotationError,
    DatasetError,
    MissingFileError,
    get_adapter,
)
from affectstore.media import NotAFileError, load_audio
from affectstore.testing.datasets import make_clips_dataset, make_media


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


def _labels(root, rows, header="clip,emotion"):
    (root / "labels.csv").write_text(header + "\n" + "\n".join(rows) + "\n")


def test_paths_outside_the_root_are_refused_unless_allowed(tmp_path, caplog):
    root = tmp_path / "ds"
    make_media(root / "in.wav", duration=0.2)
    outside = make_media(tmp_path / "outside.wav", duration=0.2)
    _labels(root, ["in.wav,happy", "../outside.wav,sad", f"{outside},sad", "sub/../../outside.wav,happy"])
    ds = get_adapter("clips", root, targets="emotion")
    entries = {e.id: e for e in ds.manifest()}
    assert entries["in.wav"].audio == root / "in.wav" and entries["in.wav"].problem is None
    for vid in ("../outside.wav", str(outside), "sub/../../outside.wav"):
        assert entries[vid].audio is None
        assert re.search(r"(leaves the dataset root|is absolute); refusing to read outside .*allow_outside_root=true", entries[vid].problem)
    assert [(p.line, p.message.split(";")[0]) for p in ds.problems] == [
        (3, "path '../outside.wav' leaves the dataset root"),
        (4, f"path '{outside}' is absolute"),
        (5, "path 'sub/../../outside.wav' leaves the dataset root"),
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="affectstore.datasets.base"):
        allowed = get_adapter("clips", root, targets="emotion", allow_outside_root="true")
        entries = {e.id: e for e in allowed.manifest()}
    assert entries["../outside.wav"].audio.resolve() == outside and entries[str(outside)].audio == outside
    assert allowed.problems == []
    assert sum("outside the dataset root (allow_outside_root=true)" in r.getMessage() for r in caplog.records) == 3


def test_reasons_say_what_is_wrong(tmp_path, monkeypatch):
    root = tmp_path
    make_media(root / "good.wav", duration=0.2)
    (root / "x.wav").mkdir()
    (root / "loop1.wav").symlink_to(root / "loop2.wav")
    (root / "loop2.wav").symlink_to(root / "loop1.wav")
    (root / "notes.txt").write_text("not audio")
    locked = make_media(root / "locked.wav", duration=0.2)
    import builtins

    real_open = builtins.open

    def denying_open(file, *args, **kwargs):  # root reads every file: fail the way a user's open fails
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denying_open)
    _labels(root, ["good.wav,a", "x.wav,a", "loop1.wav,b", "notes.txt,b", "locked.wav,a", "gone.wav,b"])
    ds = get_adapter("clips", root, targets="emotion")
    entries = {e.id: e for e in ds.manifest()}
    messages = {p.video_id: p.message for p in ds.problems}
    assert messages["x.wav"].startswith("is a directory, not a media file (labels.csv line 3)")
    assert messages["loop1.wav"].startswith("symlink loop: the link never resolves to a file (labels.csv line 4)")
    assert messages["notes.txt"].startswith("extension '.txt' is not a supported media type (labels.csv line 5). Supported extensions:")
    assert messages["locked.wav"].startswith("permission denied: this user may not read the file (labels.csv line 6)")
    assert messages["gone.wav"] == "missing clip (labels.csv line 7)"
    assert "good.wav" not in messages and not any("corrupt" in m or "layout" in m for m in messages.values())
    assert entries["x.wav"].audio == root / "x.wav"  # kept: decoding names the same cause
    with pytest.raises(NotAFileError, match="x.wav: is a directory"):
        load_audio(entries["x.wav"].audio)
    assert entries["gone.wav"].audio is None and entries["gone.wav"].problem == "missing clip (labels.csv line 7)"


def _many_rows(n=54):
    return [f"spk/clip_{i}.wav,{'happy' if i % 2 else 'sad'}" for i in range(n)]


def test_an_unterminated_quote_is_reported_on_its_line_and_costs_one_row(tmp_path, caplog):
    rows = _many_rows()
    rows[2] = '"spk/clip_2.wav,happy'  # line 4 of the file
    _labels(tmp_path, rows)
    with pytest.raises(AnnotationError, match=r"labels.csv:4: unterminated quote: the quoted field that starts on line 4 never closes \(pass strict=False"):
        get_adapter("clips", tmp_path, targets="emotion")
    with caplog.at_level(logging.WARNING, logger="affectstore.datasets.base"):
        ds = get_adapter("clips", tmp_path, targets="emotion", strict=False)
        entries = ds.manifest()
    assert len(entries) == 53 and "spk/clip_3.wav" in {e.id for e in entries}
    assert [(p.line, p.message) for p in ds.problems if p.line is not None] == [
        (4, "unterminated quote: the quoted field that starts on line 4 never closes")
    ]
    warnings = [r.getMessage() for r in caplog.records]
    assert any(w.endswith("labels.csv:4: unterminated quote: the quoted field that starts on line 4 never closes (skipped: strict=false)") for w in warnings)
    assert any("labels.csv: skipped 1 bad line(s) (strict=false): lines 4; fix them" in w for w in warnings)


def test_a_quote_that_closes_lines_later_is_reported_where_it_opens(tmp_path):
    rows = _many_rows(10)
    rows[3] = '"spk/clip_3.wav,happy'
    rows[6] = 'spk/clip_6.wav",sad'
    _labels(tmp_path, rows)
    ds = get_adapter("clips", tmp_path, targets="emotion", strict=False)
    ds.manifest()
    bad = [(p.line, p.message) for p in ds.problems if p.line is not None]
    assert bad == [(5, "unbalanced quote: a quoted field runs from line 5 to line 8 (cells of this file cannot hold line breaks)")]
    assert len(ds.manifest()) == 9  # the rows it swallowed are read again
    assert any(p.message == "missing clip (labels.csv line 8)" for p in ds.problems)  # the stray closing quote's row


def test_strict_false_drops_nothing_silently(tmp_path, caplog):
    rows = _many_rows(6) + ["spk/x.wav", ",happy", "spk/y.wav,sad,extra"]
    _labels(tmp_path, rows)
    with caplog.at_level(logging.WARNING, logger="affectstore.datasets.base"):
        ds = get_adapter("clips", tmp_path, targets="emotion", strict=False)
        assert len(ds.manifest()) == 6
    assert sorted(p.line for p in ds.problems if p.line is not None) == [8, 9, 10]
    assert any("skipped 3 bad line(s) (strict=false): lines 8, 9, 10" in r.getMessage() for r in caplog.records)


def test_a_latin1_labels_file_names_the_file(tmp_path):
    (tmp_path / "labels.csv").write_bytes("clip,emotion\na.wav,happy\nb\xe9b\xe9.wav,sad\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"labels.csv:3: is not UTF-8 text: byte 0xe9 on line 3 cannot be decoded .*iconv -f latin1"):
        get_adapter("clips", tmp_path, targets="emotion")
