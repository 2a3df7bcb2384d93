"""The built-in demo (README's first command) runs end to end and learns its planted label."""

from pathlib import Path

from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import FeatureStore


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--clips-per-class", "8"])
    assert result.exit_code == 0, result.output
    assert "done 16, skipped 0, failed 0" in result.output
    assert "egemaps: 16 complete, 0 failed | video, dim 88" in result.output
    store = FeatureStore.open(out / "store.zarr")
    assert len(store.completed("clips", "egemaps")) == 16
    assert (out / "run" / "metrics.json").is_file() and (out / "run" / "report.md").is_file()
    f1 = float(result.output.split("macro F1 ")[1].split(",")[0])
    assert f1 > 0.6  # loudness carries the label: chance is 0.5
