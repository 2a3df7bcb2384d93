"""EMI adapter on a generated Hume-Vidmimic2 layout."""

import numpy as np
import pytest

from affectstore.datasets import (
    EMI_TARGETS,
    AnnotationError,
    NotProvidedError,
    get_adapter,
)
from affectstore.testing.datasets import make_emi_dataset


@pytest.fixture(scope="module")
def emi(tmp_path_factory):
    labels = np.round(np.linspace(0, 1, 30).reshape(5, 6), 6)
    return make_emi_dataset(tmp_path_factory.mktemp("emi"), labels=labels)


def test_manifest_splits_and_media(emi):
    ds = get_adapter("emi", emi.root)
    assert ds.splits == ("train", "valid", "test")
    assert [e.id for e in ds.manifest("train")] == ["00000", "00001", "00002"]
    assert [e.id for e in ds.manifest("test")] == ["12660"]
    entry = ds.entry("00003")
    assert entry.split == "valid"
    assert entry.video == emi.root / "raw" / "00003.mp4"
    assert entry.audio == emi.root / "audio" / "00003.mp3"
    assert entry.faces == emi.root / "face_images" / "00003"
    assert ds.entry("12660").video == emi.root / "test_data" / "raw" / "12660.mp4"
    assert ds.problems == []


def test_video_labels(emi):
    ds = get_adapter("emi", emi.root)
    labels = ds.video_labels()
    assert labels.target_names == EMI_TARGETS
    assert labels.ids == ("00000", "00001", "00002", "00003", "00004")
    np.testing.assert_allclose(labels.values, np.stack([emi.video_labels[i] for i in labels.ids]))
    assert ds.video_labels("valid").ids == ("00003", "00004")
    assert len(ds.video_labels("test")) == 0
    assert ds.task.level == "video" and ds.task.kind == "regression" and ds.task.metric == "mean_pearson"
    with pytest.raises(NotProvidedError, match="emi ships no transcripts"):
        ds.transcript("00000")


def test_face_crops_sorted_numerically_and_spread_over_duration(emi):
    ds = get_adapter("emi", emi.root)
    crops = ds.face_crops("00001")
    assert crops.frames.tolist() == list(range(11))
    assert [p.name for p in crops.paths][-3:] == ["8.jpg", "9.jpg", "10.jpg"]
    np.testing.assert_allclose(crops.times, np.arange(11) * 1.0 / 11, atol=1e-3)  # 1 s of audio
    times, images = crops.load()
    assert images.shape == (11, 16, 16, 3) and images.dtype == np.uint8
    fixed = get_adapter("emi", emi.root, face_rate="6").face_crops("00001")
    np.testing.assert_allclose(fixed.times, np.arange(11) / 6.0)


def test_bad_csv_lines(tmp_path):
    built = make_emi_dataset(tmp_path, n_train=2, n_valid=1, n_test=0, n_faces=1)
    with (built.root / "train_split.csv").open("a") as f:
        f.write("00009,0.1,0.2,abc,0.4,0.5,0.6\n")
    with pytest.raises(AnnotationError, match=r"train_split.csv:4: Determination intensity of 00009 is 'abc'; expected a number in \[0, 1\]"):
        get_adapter("emi", built.root).manifest()
    lenient = get_adapter("emi", built.root, strict=False)
    assert [e.id for e in lenient.manifest("train")] == ["00000", "00001"]
    assert [(p.line, p.file.name) for p in lenient.problems] == [(4, "train_split.csv")]


def test_ids_without_leading_zeros_and_missing_media(tmp_path):
    built = make_emi_dataset(tmp_path, n_train=2, n_valid=1, n_test=0, n_faces=1)
    text = (built.root / "valid_split.csv").read_text().replace("\n00002,", "\n2,")
    (built.root / "valid_split.csv").write_text(text)
    (built.root / "audio" / "00002.mp3").unlink()
    ds = get_adapter("emi", built.root)
    entry = ds.entry("00002")
    assert entry.audio == entry.video  # falls back to the video's audio track
    assert any("missing audio copy for valid id 00002" in str(p) for p in ds.problems)


def test_header_error(tmp_path):
    built = make_emi_dataset(tmp_path, n_train=1, n_valid=1, n_test=0, n_faces=1)
    path = built.root / "train_split.csv"
    path.write_text(path.read_text().replace("Empathic Pain", "EmpathicPain"))
    with pytest.raises(Exception, match=r"train_split.csv:1: header lacks column\(s\) 'Empathic Pain'"):
        get_adapter("emi", built.root).manifest()
