"""The built-in demo (README's first command) runs end to end on the twelve CREMA-D sample clips."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import FeatureStore

CREMA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crema-d"


@pytest.fixture(scope="module")
def crema() -> Path:
    if not any(CREMA.glob("*_DFA_*")):
        pytest.skip(f"the CREMA-D sample clips are not at {CREMA} (../shared/data/crema-d)")
    return CREMA


@pytest.mark.slow
def test_demo_runs_end_to_end_on_the_twelve_clips(crema: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--data", str(crema)])
    assert result.exit_code == 0, result.output
    assert "done 12, skipped 0, failed 0 of 12 selected videos" in result.output
    assert "not applicable: 6 video(s) have no frames or faces (audio only) for fer" in result.output
    store = FeatureStore.open(out / "store.zarr")
    for feature in ("egemaps", "compare", "whisper", "whisper-encoder"):
        assert len(store.completed("clips", feature)) == 12, feature
    assert sorted(store.completed("clips", "fer")) == sorted(p.name for p in crema.glob("*_DFA_*.flv"))
    lines = [line for line in result.output.splitlines() if "_DFA_" in line and ": \"" in line]
    assert len(lines) == 12 and all("\"Don't forget" in line for line in lines)
    assert sum("face: none (audio only)" in line for line in lines) == 6
    assert "show the plumbing, not a score" in result.output
    assert (out / "run" / "metrics.json").is_file() and (out / "run" / "report.md").is_file()


def test_demo_refuses_a_folder_it_did_not_create(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code != 0
    assert "already holds files the demo did not write" in result.output
    assert (out / "thesis.tex").read_text() == "precious"


def test_demo_refuses_an_out_that_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code != 0 and "is a file" in result.output


def test_demo_data_without_the_clips_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "o"), "--data", str(tmp_path)])
    assert result.exit_code != 0 and "holds no CREMA-D clips" in result.output
