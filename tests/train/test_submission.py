"""Submission files byte for byte against hand-written expected text."""

import numpy as np
import pytest

from affectstore.train.submission import (
    format_bah_submission,
    format_emi_submission,
    format_expr_submission,
    format_va_submission,
    write_bah_submission,
    write_emi_submission,
    write_expr_submission,
    write_va_submission,
)

EMI_EXPECTED = (
    b"Filename,Admiration,Amusement,Determination,Empathic Pain,Excitement,Joy\n"
    b"12660,0.333333,0.000000,1.000000,0.500000,0.123457,0.000000\n"
    b"12661,0.100000,0.200000,0.300000,0.400000,0.500000,0.600000\n"
)

BAH_EXPECTED = (
    b"82557/Visite 1/82557_Question_1_2024-08-22 14-46-11_Video.mp4/frame-0.jpg,0\n"
    b"82557/Visite 1/82557_Question_1_2024-08-22 14-46-11_Video.mp4/frame-1.jpg,1\n"
    b"82557/Visite 1/82557_Question_1_2024-08-22 14-46-11_Video.mp4/frame-10.jpg,1\n"
)

EXPR_EXPECTED = (
    b"image_location,Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n"
    b"2-30-640x360/00001.jpg,0\n"
    b"2-30-640x360/00002.jpg,4\n"
    b"video10_left/12345.jpg,7\n"
)

VA_EXPECTED = (
    b"image_location,valence,arousal\n"
    b"2-30-640x360/00001.jpg,0.250000,-0.125000\n"
    b"2-30-640x360/00002.jpg,0.000000,1.000000\n"
    b"2-30-640x360/00003.jpg,-0.333333,0.666667\n"
)

BAH_VIDEO = "82557/Visite 1/82557_Question_1_2024-08-22 14-46-11_Video.mp4"


def test_emi(tmp_path):
    preds = np.array([[1 / 3, -1e-9, 1.0, 0.5, 0.1234567, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    path = write_emi_submission(tmp_path / "sub" / "emi.csv", ["12660", "12661"], preds)
    assert path.read_bytes() == EMI_EXPECTED
    assert format_emi_submission(["12660", "12661"], preds).encode() == EMI_EXPECTED


def test_bah(tmp_path):
    path = write_bah_submission(tmp_path / "bah.txt", [BAH_VIDEO] * 3, np.array([0, 1, 10]), np.array([False, True, True]))
    assert path.read_bytes() == BAH_EXPECTED


def test_expr(tmp_path):
    path = write_expr_submission(
        tmp_path / "expr.csv", ["2-30-640x360", "2-30-640x360", "video10_left"], [1, 2, 12345], np.array([0, 4, 7])
    )
    assert path.read_bytes() == EXPR_EXPECTED


def test_va(tmp_path):
    va = np.array([[0.25, -0.125], [-0.0000001, 1.0], [-1 / 3, 2 / 3]])
    path = write_va_submission(tmp_path / "va.csv", ["2-30-640x360"] * 3, np.arange(1, 4), va)
    assert path.read_bytes() == VA_EXPECTED


def test_submission_errors():
    with pytest.raises(ValueError, match=r"EMI predictions must have shape \(N, 6\). Got \(1, 5\) instead"):
        format_emi_submission(["1"], np.zeros((1, 5)))
    with pytest.raises(ValueError, match="EMI predictions row 1 holds NaN"):
        format_emi_submission(["1", "2"], np.array([[0.0] * 6, [np.nan] * 6]))
    with pytest.raises(ValueError, match="Video ids must be strings. Got 12660 \\(int\\)"):
        format_emi_submission([12660], np.zeros((1, 6)))
    with pytest.raises(ValueError, match="one row per test video"):
        format_emi_submission(["1", "1"], np.zeros((2, 6)))
    with pytest.raises(ValueError, match=r"Video names 'a,b' contains a comma"):
        format_bah_submission(["a,b"], [0], [1])
    with pytest.raises(ValueError, match=r"BAH labels must be in \[0, 1\]. Got \[2\] instead"):
        format_bah_submission(["a"], [0], [2])
    with pytest.raises(ValueError, match="BAH labels must be integers .* threshold or argmax first"):
        format_bah_submission(["a"], [0], [0.7])
    with pytest.raises(ValueError, match="Aff-Wild2 frame numbers start at 1. Got 0"):
        format_expr_submission(["v"], [0], [1])
    with pytest.raises(ValueError, match=r"EXPR labels must be in \[0, 1, 2, 3, 4, 5, 6, 7\]. Got \[8\]"):
        format_expr_submission(["v"], [1], [8])
    with pytest.raises(ValueError, match="Got 1 frames but 2 prediction rows"):
        format_va_submission(["v"], [1], np.zeros((2, 2)))
