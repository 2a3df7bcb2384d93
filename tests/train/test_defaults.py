"""`affect train TASK` as typed in a project folder: store, recipe and data root found by default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import FeatureStore
from affectstore.testing.datasets import make_clips_dataset, make_emi_dataset
from affectstore.train.defaults import default_recipe, default_store, parse_recipe_settings, resolve_data_root
from affectstore.train.errors import TrainError

runner = CliRunner()


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A clips dataset extracted (eGeMAPS) with `affect extract`, which records the root it read."""
    base = tmp_path_factory.mktemp("defaults")
    built = make_clips_dataset(base / "data", classes=("a", "b"), n_per_class=6, n_speakers=3, extensions=(".wav",),
                               with_split=False, plant=True)
    store = base / "store.zarr"
    r = runner.invoke(app, ["extract", "clips", str(built.root), "--features", "egemaps", "--store", str(store),
                            "-o", "group_column=speaker", "-o", "targets=emotion", "--no-progress"])
    assert r.exit_code == 0, r.output
    return built, store


def test_extraction_records_the_dataset_root_and_options(extracted):
    built, store = extracted
    source = FeatureStore.open(store).provenance("clips", "egemaps")["dataset"]
    assert source["adapter"] == "clips" and source["root"] == str(built.root.resolve())
    assert source["options"] == {"group_column": "speaker", "targets": "emotion"}


def test_train_after_extract_needs_no_data_root(extracted, tmp_path, monkeypatch):
    built, store = extracted
    monkeypatch.chdir(tmp_path)  # a folder without train/clips.toml: the built-in defaults
    monkeypatch.delenv("DATA_ROOT", raising=False)
    r = runner.invoke(app, ["train", "clips", "--store", str(store), "--features", "egemaps", "--cv", "3",
                            "--set", "estimator=logreg", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["data_root"] == str(built.root.resolve())
    assert info["recipe"]["adapter"] == {"group_column": "speaker", "targets": "emotion"}
    assert info["recipe"]["estimator"] == "logreg"
    # predict finds the run's store without --store
    r = runner.invoke(app, ["predict", str(tmp_path / "run"), "--split", "all"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "predictions-all-emotion.csv").is_file()


def test_the_project_folder_line_as_typed(extracted, tmp_path, monkeypatch):
    """extract/<dataset>.toml names the store, train/<task>.toml the recipe: `affect train clips` alone runs."""
    built, store = extracted
    (tmp_path / "extract").mkdir()
    (tmp_path / "extract" / "clips.toml").write_text(f'dataset = "clips"\nstore = "{store}"\n')
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "clips.toml").write_text(
        'task = "clips"\nname = "mine"\nfeatures = ["egemaps"]\nestimator = "logreg"\n[protocol]\ncv = 3\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AFFECT_STORE", raising=False)
    monkeypatch.delenv("DATA_ROOT", raising=False)
    r = runner.invoke(app, ["train", "clips"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs" / "mine" / "metrics.json").is_file()
    f1 = float(r.output.split("emotion: macro_f1 ")[1].split()[0])
    assert f1 > 0.8  # the planted loudness carries the label


def test_store_precedence_and_errors(tmp_path):
    assert default_store("emi", "given", environ={"AFFECT_STORE": "env"}, cwd=tmp_path) == "given"
    assert default_store("emi", None, environ={"AFFECT_STORE": "env"}, cwd=tmp_path) == "env"
    with pytest.raises(TrainError, match=r"No store given: pass --store PATH_OR_URL or set AFFECT_STORE and there is no extraction recipe .*emi.toml"):
        default_store("emi", None, environ={}, cwd=tmp_path)
    (tmp_path / "extract").mkdir()
    (tmp_path / "extract" / "affwild2.toml").write_text('dataset = "affwild2"\nstore = "runs/aw.zarr"\n')
    assert default_store("expr", None, environ={}, cwd=tmp_path) == "runs/aw.zarr"
    (tmp_path / "extract" / "emi.toml").write_text('dataset = "emi"\nbogus = 1\n')
    with pytest.raises(TrainError, match="unreadable.*unknown key"):
        default_store("emi", None, environ={}, cwd=tmp_path)


def test_recipe_default_only_when_the_file_exists(tmp_path):
    assert default_recipe("emi", None, cwd=tmp_path) is None
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "emi.toml").write_text('task = "emi"\n')
    assert default_recipe("emi", None, cwd=tmp_path) == tmp_path / "train" / "emi.toml"
    assert default_recipe("emi", "other.toml", cwd=tmp_path) == "other.toml"


def test_data_root_precedence(tmp_path):
    recorded = {"adapter": "clips", "root": str(tmp_path), "options": {"group_column": "actor"}}
    missing = str(tmp_path / "nope")
    assert resolve_data_root("cli", missing, recorded, environ={"DATA_ROOT": "env"})[:2] == ("cli", "--data-root")
    assert resolve_data_root(None, missing, recorded, environ={"DATA_ROOT": "env"})[:2] == ("env", "DATA_ROOT")
    # the recipe's folder does not exist here: the recorded root (with its options) wins
    assert resolve_data_root(None, missing, recorded, environ={}) == (
        str(tmp_path), "the root recorded in the store at extraction", {"group_column": "actor"})
    # the recipe's folder exists: it wins; recorded options only apply to the same folder
    assert resolve_data_root(None, str(tmp_path), recorded, environ={})[2] == {"group_column": "actor"}
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_data_root(None, str(other), recorded, environ={}) == (str(other), "the recipe's data_root", {})
    assert resolve_data_root(None, None, None, environ={}) == (None, "", {})


def test_set_parses_recipe_overrides():
    assert parse_recipe_settings(["params.learning_rate=0.01", "fusion=early", "params.hidden_sizes=[32, 8]"]) == {
        "params": {"learning_rate": 0.01, "hidden_sizes": [32, 8]}, "fusion": "early"}
    for bad in ("fusion", "a.b.c=1", "=3"):
        with pytest.raises(TrainError, match="--set must look like KEY=VALUE"):
            parse_recipe_settings([bad])


def test_cli_set_unknown_key_is_named(extracted, tmp_path, monkeypatch):
    built, store = extracted
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["train", "clips", "--store", str(store), "--set", "fuson=early"])
    assert r.exit_code == 2 and "Unknown key 'fuson' in --set" in r.output


def test_emi_line_as_typed_with_the_repo_recipe(tmp_path, monkeypatch):
    """`affect train emi --features gigachat,hubert,mobilevit` from the project folder, store from AFFECT_STORE."""
    repo = Path(__file__).resolve().parents[2]
    built = make_emi_dataset(tmp_path / "data", n_train=10, n_valid=8, n_test=1, n_faces=1, plant=True)
    st = FeatureStore.open(tmp_path / "emi.zarr", mode="a")
    rng = np.random.default_rng(0)
    for name, dim, frames in (("gigachat", 8, 1), ("hubert", 6, 5), ("mobilevit", 5, 4)):
        prov = {"extractor": "synthetic", "config_hash": f"h-{name}", "dim": dim, "dtype": "float32",
                "kind": "video" if frames == 1 else "frames", "rate": None if frames == 1 else 5.0,
                "dataset": {"adapter": "emi", "root": str(built.root.resolve()), "options": {}}}
        st.create_feature("emi", name, prov)
        for vid in built.ids:
            x = rng.normal(size=(frames, dim)).astype(np.float32)
            st.write_video("emi", name, vid, x, np.arange(frames) / 5.0, config_hash=prov["config_hash"])
    monkeypatch.chdir(repo)  # train/emi.toml is the default recipe; its data_root does not exist here
    monkeypatch.setenv("AFFECT_STORE", str(tmp_path / "emi.zarr"))
    monkeypatch.delenv("DATA_ROOT", raising=False)
    r = runner.invoke(app, ["train", "emi", "--features", "gigachat,hubert,mobilevit", "--out", str(tmp_path / "run"),
                            "--set", "params.max_epochs=3"])
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["recipe"]["name"] == "emi-emotiefflib" and info["recipe"]["features"] == ["gigachat", "hubert", "mobilevit"]
    assert info["data_root"] == str(built.root.resolve())
    assert "emi: mean_pearson_r" in r.output
