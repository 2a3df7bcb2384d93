"""Aff-Wild2 adapter: EXPR and VA txt files, invalid lines, _left/_right, missing crops."""

import numpy as np
import pytest

from affectstore.datasets import (
    AFFECTNET_TO_EXPR,
    EXPR_CLASSES,
    AnnotationError,
    DatasetError,
    NotProvidedError,
    get_adapter,
)
from affectstore.testing.datasets import make_affwild2_dataset


@pytest.fixture(scope="module")
def aw(tmp_path_factory):
    return make_affwild2_dataset(tmp_path_factory.mktemp("affwild2"))


def test_manifest_and_left_right_share_audio(aw):
    ds = get_adapter("affwild2", aw.root)
    assert ds.splits == ("train", "val")
    assert [e.id for e in ds.manifest("train")] == aw.splits["train"]
    left, right = ds.entry("99-60-64x48_left"), ds.entry("99-60-64x48_right")
    assert left.audio == right.audio == aw.root / "new_vids" / "99-60-64x48.mp4"
    assert left.video == right.video
    assert left.faces != right.faces and left.faces.name == "99-60-64x48_left"
    assert ds.entry("1-30-64x48").video == aw.root / "videos" / "1-30-64x48.mp4"
    assert ds.entry("1-30-64x48").n_label_frames == 30
    assert ds.problems == []


@pytest.mark.parametrize("task", ["expr", "va", "au"])
def test_frame_labels_and_invalid_codes(aw, task):
    ds = get_adapter("affwild2", aw.root, task=task)
    for vid in aw.ids:
        labels = ds.frame_labels(vid)
        np.testing.assert_array_equal(labels.frames, np.arange(1, 31))
        np.testing.assert_allclose(labels.times, np.arange(30) / 30.0, atol=1e-9)  # fps from the stream header
        np.testing.assert_allclose(labels.values, aw.frame_labels[task][vid], atol=1e-6)
        invalid = np.flatnonzero(~labels.valid) + 1
        assert invalid.tolist() == aw.invalid_frames[task][vid]
    assert ds.task.name == task
    if task == "expr":
        assert ds.task.targets[0].classes == EXPR_CLASSES and ds.task.metric == "macro_f1"
    elif task == "va":
        assert ds.task.target_names == ("valence", "arousal") and ds.task.metric == "mean_ccc"
    else:
        assert ds.task.target_names == ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24",
                                        "AU25", "AU26")
        assert ds.task.metric == "au_mean_f1" and labels.values.shape == (30, 12)


def test_face_crops_with_gaps(aw):
    ds = get_adapter("affwild2", aw.root)
    for vid in aw.ids:
        crops = ds.face_crops(vid)
        expected = [i for i in range(1, 31) if i not in aw.missing_crops[vid]]
        assert crops.frames.tolist() == expected
        assert [p.name for p in crops.paths][:2] == ["00001.jpg", f"{expected[1]:05d}.jpg"]
        np.testing.assert_allclose(crops.times, (np.asarray(expected) - 1) / 30.0)


def test_fps_option_and_no_video_labels(aw):
    ds = get_adapter("affwild2", aw.root, fps="25")
    assert ds.frame_labels("3-30-64x48").times[1] == pytest.approx(1 / 25)
    with pytest.raises(NotProvidedError, match="affwild2 has no video-level labels"):
        ds.video_labels()


def test_bad_lines(tmp_path):
    built = make_affwild2_dataset(tmp_path, n_train=1, n_val=0, left_right=False, n_invalid=0)
    path = built.root / "EXPR_Recognition_Challenge" / "Train_Set" / "1-30-64x48.txt"
    lines = path.read_text().split("\n")
    lines[5] = "9"
    lines[7] = "happy"
    path.write_text("\n".join(lines))
    with pytest.raises(AnnotationError, match=r"1-30-64x48.txt:6: frame 5 of '1-30-64x48' is '9'; expected an integer 0..7 or -1"):
        get_adapter("affwild2", built.root).frame_labels("1-30-64x48")
    lenient = get_adapter("affwild2", built.root, strict=False)
    labels = lenient.frame_labels("1-30-64x48")
    assert len(labels) == 30 and not labels.valid[4] and not labels.valid[6] and labels.valid.sum() == 28
    assert [p.line for p in lenient.problems if p.file == path] == [6, 8]

    va = built.root / "VA_Estimation_Challenge" / "Train_Set" / "1-30-64x48.txt"
    lines = va.read_text().split("\n")
    lines[3] = "1.5,0.2"
    va.write_text("\n".join(lines))
    with pytest.raises(AnnotationError, match=r":4: frame 3 of '1-30-64x48' is '1.5,0.2'; expected 'valence,arousal' in \[-1, 1\] or -5"):
        get_adapter("affwild2", built.root, task="va").frame_labels("1-30-64x48")


def test_task_option_errors(aw, tmp_path):
    with pytest.raises(DatasetError, match="task must be one of 'expr', 'va', 'au'. Got 'aus' instead"):
        get_adapter("affwild2", aw.root, task="aus")
    with pytest.raises(DatasetError, match="no EXPR_Recognition_Challenge or EXPR_Classification_Challenge folder"):
        get_adapter("affwild2", tmp_path)


def test_affectnet_mapping_is_a_permutation():
    assert sorted(AFFECTNET_TO_EXPR) == list(range(8))
