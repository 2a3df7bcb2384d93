"""BAH adapter on a generated layout: spaces in paths, commas in transcripts, timestamp resets."""

import shutil

import numpy as np
import pytest
import yaml

from affectstore.datasets import (
    AnnotationError,
    DatasetError,
    MissingFileError,
    NotProvidedError,
    get_adapter,
)
from affectstore.testing.datasets import make_bah_dataset


@pytest.fixture(scope="module")
def bah(tmp_path_factory):
    return make_bah_dataset(tmp_path_factory.mktemp("bah"), n_train=2, n_val=2)


def test_manifest_ids_are_paths_with_spaces(bah):
    ds = get_adapter("bah", bah.root)
    assert ds.splits == ("train", "val")
    ids = [e.id for e in ds.manifest()]
    assert ids == bah.splits["train"] + bah.splits["val"]
    spaced = ids[0]
    assert " " in spaced and spaced.count("/") == 2
    entry = ds.entry(spaced)
    assert entry.video == bah.root / "videos" / spaced and entry.video.is_file()
    assert entry.audio == entry.video
    assert entry.faces == bah.root / "cropped-aligned-faces" / spaced
    assert entry.n_label_frames == 48 and entry.group == spaced.split("/")[0]
    assert ds.problems == []


def test_split_lines_split_on_first_two_commas(bah):
    ds = get_adapter("bah", bah.root)
    vid = bah.splits["train"][0]
    assert ds.split_transcript(vid).startswith("Well, I guess, maybe")
    labels = ds.video_labels()
    assert labels.target_names == ("ah",)
    np.testing.assert_array_equal(labels.values[:, 0], [bah.video_labels[i][0] for i in labels.ids])


def test_frame_labels(bah):
    ds = get_adapter("bah", bah.root)
    for vid in bah.ids:
        labels = ds.frame_labels(vid)
        np.testing.assert_array_equal(labels.frames, np.arange(48))
        np.testing.assert_allclose(labels.times, np.arange(48) / 24.0)
        np.testing.assert_array_equal(labels.values, bah.frame_labels["bah"][vid])
        assert labels.valid.all()
    assert ds.task.level == "frame" and ds.task.targets[0].classes == ("0", "1")


def test_transcript_undoes_timestamp_resets(bah):
    ds = get_adapter("bah", bah.root)
    vid = bah.splits["val"][0]
    raw = yaml.safe_load(next((bah.root / "transcription" / vid).glob("*.yml")).read_text())
    starts = [c["timestamp"][0] for c in raw["chunks"]]
    assert starts.count(0.0) > 1  # the file really resets
    segments = ds.transcript(vid)
    expected = bah.transcripts[vid]
    assert [s.text for s in segments] == [e[2] for e in expected]
    np.testing.assert_allclose([(s.start, s.end) for s in segments], [e[:2] for e in expected], atol=1e-6)
    assert all(b.start >= a.start for a, b in zip(segments, segments[1:]))


def test_transcript_reset_period_and_missing_end(tmp_path):
    built = make_bah_dataset(tmp_path, n_train=1, n_val=0, duration=1.0)
    vid = built.ids[0]
    path = next((built.root / "transcription" / vid).glob("*.yml"))
    path.write_text(yaml.safe_dump({"text": "a b c", "chunks": [
        {"text": "a", "timestamp": [0.5, 20.0]},
        {"text": "b", "timestamp": [1.0, None]},  # restarts: a new 30 s window
        {"text": "c", "timestamp": [4.0, 6.0]},
    ]}))
    by_end = get_adapter("bah", built.root).transcript(vid)
    assert [(s.start, s.end) for s in by_end] == [(0.5, 20.0), (21.0, 24.0), (24.0, 26.0)]
    by_period = get_adapter("bah", built.root, reset_period=30).transcript(vid)
    assert [(s.start, s.end) for s in by_period] == [(0.5, 20.0), (31.0, 34.0), (34.0, 36.0)]


def test_face_crops_sorted_by_frame_number(bah):
    ds = get_adapter("bah", bah.root)
    crops = ds.face_crops(bah.ids[0])
    assert crops.frames.tolist() == list(range(48))
    assert crops.paths[10].name == "frame-10.jpg"
    np.testing.assert_allclose(crops.times, np.arange(48) / 24.0)


def test_bad_split_line_and_label(tmp_path):
    built = make_bah_dataset(tmp_path, n_train=1, n_val=1, duration=0.5)
    with (built.root / "default-split" / "val.txt").open("a") as f:
        f.write("99999/Visite 1/x_Video.mp4,maybe,some, text\n")
    with pytest.raises(AnnotationError, match=r"val.txt:2: label of '99999/Visite 1/x_Video.mp4' is 'maybe'; expected 0 or 1"):
        get_adapter("bah", built.root).manifest()
    lenient = get_adapter("bah", built.root, strict=False)
    assert len(lenient.manifest("val")) == 1 and lenient.problems[0].line == 2


def test_bad_frame_annotation_item(tmp_path):
    built = make_bah_dataset(tmp_path, n_train=1, n_val=0, duration=0.25)
    vid = built.ids[0]
    path = built.root / "annotation.yml"
    data = yaml.safe_load(path.read_text())
    data[vid]["frame_annotation"][2][1] = 7
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(AnnotationError, match=r"annotation.yml:\d+: label of '.*frame-2.jpg' is 7; expected 0 or 1"):
        get_adapter("bah", built.root).frame_labels(vid)
    lenient = get_adapter("bah", built.root, strict=False)
    labels = lenient.frame_labels(vid)
    assert 2 not in labels.frames.tolist() and len(labels) == 5
    assert lenient.problems[0].line is not None


def test_test_root_without_splits(tmp_path):
    built = make_bah_dataset(tmp_path, n_train=2, n_val=0, duration=0.25)
    shutil.rmtree(built.root / "default-split")
    (built.root / "annotation.yml").unlink()
    ds = get_adapter("bah", built.root)
    assert ds.splits == ("test",) and sorted(e.id for e in ds.manifest()) == sorted(built.ids)
    with pytest.raises(NotProvidedError, match="annotation.yml has no frame labels"):
        ds.frame_labels(built.ids[0])


def test_missing_transcript_and_not_a_root(tmp_path):
    built = make_bah_dataset(tmp_path / "bah", n_train=1, n_val=0, duration=0.25)
    vid = built.ids[0]
    next((built.root / "transcription" / vid).glob("*.yml")).unlink()
    with pytest.raises(MissingFileError, match="no transcript for"):
        get_adapter("bah", built.root).transcript(vid)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="not a BAH root"):
        get_adapter("bah", tmp_path / "empty")


def test_transcript_with_python_tuple_timestamps(tmp_path):
    # The Hugging Face whisper pipeline returns timestamp tuples; yaml.dump tags them
    # !!python/tuple, which a plain safe loader rejects.
    built = make_bah_dataset(tmp_path, n_train=1, n_val=0, duration=1.0)
    vid = built.ids[0]
    path = next((built.root / "transcription" / vid).glob("*.yml"))
    path.write_text(yaml.dump({"text": "a b", "chunks": [
        {"language": "english", "text": "a", "timestamp": (0.0, 0.4)},
        {"language": "english", "text": "b", "timestamp": (0.4, 0.9)},
    ]}))
    assert "!!python/tuple" in path.read_text()
    segments = get_adapter("bah", built.root).transcript(vid)
    assert [(s.start, s.end, s.text) for s in segments] == [(0.0, 0.4, "a"), (0.4, 0.9, "b")]
    # Only that tag is accepted: other Python tags still fail, as not valid YAML.
    path.write_text("text: x\nchunks: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(DatasetError, match="not valid YAML"):
        get_adapter("bah", built.root).transcript(vid)


def test_last_chunk_without_end_runs_to_the_end_of_the_video(tmp_path):
    built = make_bah_dataset(tmp_path, n_train=1, n_val=0, duration=2.0)
    vid = built.ids[0]
    path = next((built.root / "transcription" / vid).glob("*.yml"))
    path.write_text(yaml.safe_dump({"text": "a b c", "chunks": [
        {"text": "a", "timestamp": [0.0, 0.8]},
        {"text": "b", "timestamp": [0.0, 0.5]},  # a reset: starts at 0.8
        {"text": "c", "timestamp": [0.5, None]},  # the last chunk, to the end of the audio
    ]}))
    segments = get_adapter("bah", built.root).transcript(vid)
    assert [(s.start, s.end) for s in segments[:2]] == [(0.0, 0.8), (0.8, 1.3)]
    assert segments[2].start == pytest.approx(1.3)
    assert segments[2].end == pytest.approx(2.0, abs=0.05)


def _to_videos_prefixed_layout(root):
    """Rewrite a generated root into the later BAH layout: Videos/, split/, "Videos/" paths."""
    (root / "videos").rename(root / "Videos")
    for folder in ("cropped-aligned-faces", "transcription"):
        inner = root / folder
        moved = root / f"{folder}.tmp"
        inner.rename(moved)
        inner.mkdir()
        moved.rename(inner / "Videos")
    (root / "default-split").rename(root / "split")
    for txt in (root / "split").glob("*.txt"):
        txt.write_text("".join(f"Videos/{line}\n" for line in txt.read_text().splitlines() if line))
    data = yaml.safe_load((root / "annotation.yml").read_text())
    (root / "annotation.yml").write_text(yaml.safe_dump({f"Videos/{k}": v for k, v in data.items()}, sort_keys=False))


def test_videos_prefixed_layout(tmp_path):
    built = make_bah_dataset(tmp_path, n_train=2, n_val=1, duration=0.5)
    _to_videos_prefixed_layout(built.root)
    ds = get_adapter("bah", built.root)
    assert ds.splits == ("train", "val")
    for vid in built.ids:
        entry = ds.entry(f"Videos/{vid}")
        assert entry.video == built.root / "Videos" / vid and entry.video.is_file()
        assert entry.faces == built.root / "cropped-aligned-faces" / "Videos" / vid and entry.n_label_frames == 12
        np.testing.assert_array_equal(ds.frame_labels(entry.id).values, built.frame_labels["bah"][vid])
        assert [s.text for s in ds.transcript(entry.id)] == [t[2] for t in built.transcripts[vid]]
    assert ds.problems == []
    # A test root: no split files, every video under Videos/ listed with that prefix.
    shutil.rmtree(built.root / "split")
    test = get_adapter("bah", built.root)
    assert sorted(e.id for e in test.manifest("test")) == sorted(f"Videos/{v}" for v in built.ids)
    assert all(e.video is not None and e.faces is not None for e in test.manifest())
