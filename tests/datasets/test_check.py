"""`affect data check`: the plain function and the CLI command."""

import shutil

import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.datasets.check import check_dataset, parse_options
from affectstore.testing.datasets import (
    make_affwild2_dataset,
    make_bah_dataset,
    make_emi_dataset,
)

runner = CliRunner()


def test_clean_dataset_reports_counts_and_stats(tmp_path):
    built = make_bah_dataset(tmp_path, n_train=2, n_val=1, duration=0.5)
    report = check_dataset("bah", built.root)
    assert report.ok and report.counts == {"train": 2, "val": 1}
    frame = report.label_stats["train"]["frame"]
    assert frame["_all"] == {"videos": 2, "frames": 24, "valid": 24}
    assert sum(frame["ah"]["counts"].values()) == 24
    assert "No problems found." in report.text()


def test_every_problem_with_file_and_line(tmp_path):
    built = make_affwild2_dataset(tmp_path, n_train=2, n_val=1, left_right=False)
    expr = built.root / "EXPR_Recognition_Challenge" / "Train_Set" / "2-30-64x48.txt"
    lines = expr.read_text().split("\n")
    lines[3] = "eight"
    expr.write_text("\n".join(lines))
    (built.root / "videos" / "1-30-64x48.mp4").unlink()
    shutil.rmtree(built.root / "cropped_aligned" / "3-30-64x48")
    (built.root / "cropped_aligned" / "3-30-64x48").mkdir()
    report = check_dataset("affwild2", built.root)
    text = report.text()
    assert not report.ok
    assert f"{expr}:4: frame 3 of '2-30-64x48' is 'eight'; expected an integer 0..7 or -1" in text
    assert "missing video for train id 1-30-64x48 (looked in videos, new_vids for 1-30-64x48.*)" in text
    assert "no face crops in the folder of 3-30-64x48" in text
    assert "valid labelled frames have no face crop" in text  # a note, not a problem
    assert len(report.problems) == 3


def test_probe_finds_broken_media(tmp_path):
    built = make_emi_dataset(tmp_path, n_train=1, n_valid=1, n_test=0, n_faces=2)
    (built.root / "audio" / "00001.mp3").write_bytes(b"")
    report = check_dataset("emi", built.root, probe_media=True)
    assert [str(p) for p in report.problems] == [
        f"{built.root / 'audio' / '00001.mp3'}: file is empty (0 bytes) (EmptyMediaError). The file is empty (0 bytes): copy or download it again."
    ]


def test_cli_check_ok_and_problems(tmp_path):
    built = make_bah_dataset(tmp_path, n_train=1, n_val=1, duration=0.5)
    result = runner.invoke(app, ["data", "check", "bah", str(built.root)])
    assert result.exit_code == 0, result.output
    assert "Videos per split:" in result.output and "train  1" in result.output and "total  2" in result.output
    assert "train frame-level (1 videos, 12 frames, 12 valid)" in result.output

    with (built.root / "default-split" / "train.txt").open("a") as f:
        f.write("no-label-here\n")
    result = runner.invoke(app, ["data", "check", "bah", str(built.root)])
    assert result.exit_code == 1
    assert f"{built.root / 'default-split' / 'train.txt'}:2: expected 'video_path,label,transcript', got 'no-label-here'" in result.output


def test_cli_options_and_errors(tmp_path):
    built = make_affwild2_dataset(tmp_path, n_train=1, n_val=1, left_right=False)
    result = runner.invoke(app, ["data", "check", "affwild2", str(built.root), "-o", "task=va"])
    assert result.exit_code == 0, result.output
    assert "valence: n=" in result.output and "arousal: n=" in result.output

    result = runner.invoke(app, ["data", "check", "mosei", str(tmp_path)])
    assert result.exit_code == 2
    assert "Error: unknown dataset 'mosei'; known datasets: affwild2, bah, clips, emi" in result.output
    result = runner.invoke(app, ["data", "check", "affwild2", str(built.root), "-o", "task"])
    assert result.exit_code == 2 and "options must look like key=value. Got 'task' instead." in result.output
    result = runner.invoke(app, ["data", "check", "clips", str(tmp_path / "none")])
    assert result.exit_code == 2 and "is not a folder" in result.output


def test_cli_on_ravdess(shared_data):
    result = runner.invoke(app, ["data", "check", "clips", str(shared_data / "ravdess-dev"), "-o", "targets=emotion,intensity", "-o", "group_column=actor"])
    assert result.exit_code == 0, result.output
    assert "all    720" in result.output
    assert "emotion: angry=96 calm=96 disgust=96 fearful=96 happy=96 neutral=48 sad=96 surprised=96" in result.output


def test_parse_options():
    assert parse_options(["task=va", "targets=a,b:regression"]) == {"task": "va", "targets": "a,b:regression"}
    with pytest.raises(ValueError, match="key=value"):
        parse_options(["=x"])


def test_probe_decodes_through_the_isolated_path_with_accurate_reasons(tmp_path):
    import numpy as np
    from scipy.io import wavfile

    from affectstore.testing.datasets import make_media

    rng = np.random.default_rng(0)
    for channels in (8, 16):  # used to segfault the whole process
        wavfile.write(tmp_path / f"ch{channels}.wav", 48_000, (0.1 * rng.standard_normal((24_000, channels))).astype(np.float32))
    make_media(tmp_path / "good.flac", duration=0.3)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
    (tmp_path / "dir.wav").mkdir()
    (tmp_path / "labels.csv").write_text("clip,emotion\nch8.wav,a\nch16.wav,b\ngood.flac,a\ngarbage.wav,b\ndir.wav,a\n")
    report = check_dataset("clips", tmp_path, probe_media=True, targets="emotion")
    by_file = {p.file.name: p.message for p in report.problems}
    assert set(by_file) == {"garbage.wav", "dir.wav"}
    assert by_file["garbage.wav"].startswith("cannot open the container") and "(CorruptMediaError)" in by_file["garbage.wav"]
    assert by_file["dir.wav"].startswith("is a directory, not a media file (labels.csv line 6)")
    result = runner.invoke(app, ["data", "check", "clips", str(tmp_path), "-o", "targets=emotion", "--probe", "--no-progress"])
    assert result.exit_code == 1 and "Problems (2):" in result.output and "Traceback" not in result.output
