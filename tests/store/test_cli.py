"""`affect store info|ls|verify|pack|rm` through typer's CliRunner, and the checks behind verify."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import FeatureStore, encode_id
from affectstore.store.verify import verify_store

runner = CliRunner()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "team.zarr"
    store = FeatureStore.open(path, mode="a")
    prov = {"extractor": "hubert", "config_hash": "c0ffee", "dim": 4, "dtype": "float16", "kind": "frames",
            "rate": 50.0, "model": {"id": "facebook/hubert-large-ls960-ft"}}
    store.create_feature("bah", "hubert", prov)
    for i, vid in enumerate(["82557/Visite 1/q 1.mp4", "82557/Visite 1/q 2.mp4", "90001/Visite 2/q 1.mp4"]):
        store.write_video("bah", "hubert", vid, np.ones((i + 2, 4)), np.arange(i + 2) / 50, config_hash="c0ffee")
    store.record_failure("bah", "hubert", "bad/zero.mp4", "decode", "zero-byte file", config_hash="c0ffee")
    store.create_feature("emi", "vad", {"extractor": "vad", "config_hash": "v1", "dim": 3, "dtype": "float32",
                                         "kind": "video", "rate": None})
    return path


def test_info_shows_provenance_and_counts(store_path: Path) -> None:
    result = runner.invoke(app, ["store", "info", str(store_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "dataset bah" in out and "dataset emi" in out
    assert "hubert: 3 complete, 1 failed | frames, dim 4, 50 Hz, float16" in out
    assert "model facebook/hubert-large-ls960-ft, config c0ffee" in out
    assert "vad: 0 complete, 0 failed | video, dim 3, per video, float32" in out
    assert "on disk)" in out


def test_ls_lists_complete_and_failed(store_path: Path) -> None:
    result = runner.invoke(app, ["store", "ls", str(store_path), "bah", "hubert"])
    assert result.exit_code == 0
    assert "82557/Visite 1/q 2.mp4\t3 frames" in result.output
    failed = runner.invoke(app, ["store", "ls", str(store_path), "bah", "hubert", "--failed"])
    assert "bad/zero.mp4\tdecode\tzero-byte file" in failed.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["store", "ls", "{store}", "bahh", "hubert"], "Unknown dataset 'bahh'.*Valid datasets: bah, emi"),
        (["store", "ls", "{store}", "bah", "hubret"], "Unknown feature 'hubret'.*Valid features: hubert"),
        (["store", "info", "{missing}"], "No store at .*missing.zarr: the folder does not exist"),
        (["store", "verify", "{plain}"], "not an affectstore store"),
    ],
)
def test_bad_input_names_the_bad_value(store_path: Path, tmp_path: Path, args: list[str], message: str) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    filled = [a.format(store=store_path, missing=tmp_path / "missing.zarr", plain=plain) for a in args]
    result = runner.invoke(app, filled)
    assert result.exit_code == 2
    assert re.search(message, result.output.replace("\n", " ")), result.output


def test_verify_ok_then_finds_damage(store_path: Path) -> None:
    result = runner.invoke(app, ["store", "verify", str(store_path), "--no-progress"])
    assert result.exit_code == 0 and result.output.startswith("OK: checked 3 complete videos"), result.output

    videos = store_path / "bah" / "hubert" / "videos"
    shutil.rmtree(videos / encode_id("82557/Visite 1/q 1.mp4") / "times")
    # arrays without a mark: an interrupted writer, only a warning
    shutil.copytree(videos / encode_id("90001/Visite 2/q 1.mp4"), videos / encode_id("half"))
    report = verify_store(FeatureStore.open(store_path))
    assert report.errors == [
        "bah/hubert video '82557/Visite 1/q 1.mp4': bah/hubert/videos/82557%2FVisite%201%2Fq%201.mp4/times/c/0: file is missing",
        "bah/hubert video '82557/Visite 1/q 1.mp4': bah/hubert/videos/82557%2FVisite%201%2Fq%201.mp4/times/zarr.json: file is missing",
    ]
    assert any("1 videos have arrays but no completion mark" in w and "'half'" in w for w in report.warnings)
    result = runner.invoke(app, ["store", "verify", str(store_path), "--no-progress"])
    assert result.exit_code == 1 and "ERROR: checked 3 complete videos, 2 errors" in result.output


def test_pack_and_rm(store_path: Path) -> None:
    result = runner.invoke(app, ["store", "pack", str(store_path), "bah"])
    assert result.exit_code == 0 and "bah/hubert: packed as n3x" in result.output
    result = runner.invoke(app, ["store", "rm", str(store_path), "bah", "hubert", "--yes"])
    assert result.exit_code == 0 and "deleted bah/hubert (3 complete videos)" in result.output
    assert FeatureStore.open(store_path).features("bah") == []
    result = runner.invoke(app, ["store", "rm", str(store_path), "bah", "hubert", "--yes"])
    assert result.exit_code == 2 and "Unknown feature 'hubert'" in result.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["store", "--help"])
    assert result.exit_code == 0
    for name in ("info", "ls", "verify", "pack", "rm"):
        assert name in result.output
