"""`affect extract` through typer's CliRunner, recipes, and eGeMAPS on the real RAVDESS sample."""

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("opensmile")

from affectstore.cli import app  # noqa: E402
from affectstore.extract.recipe import RecipeError, load_recipe  # noqa: E402
from affectstore.extract.runner import extract_command  # noqa: E402
from affectstore.store import FeatureStore  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, clip_tools):
    write_clips, _, _ = clip_tools
    root = tmp_path_factory.mktemp("cli-clips")
    return root, sorted(write_clips(root, (0.8, 1.2, 1.0)))


def test_extract_command_runs_and_reports(clips, tmp_path):
    root, ids = clips
    result = runner.invoke(app, ["extract", "clips", str(root), "--features", "egemaps", "--store", str(tmp_path / "s.zarr"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "done 3, skipped 0, failed 0 of 3 selected videos" in result.output
    assert "packed: egemaps, egemaps-lld" in result.output
    assert sorted(FeatureStore.open(tmp_path / "s.zarr").completed("clips", "egemaps")) == ids
    again = runner.invoke(app, ["extract", "clips", str(root), "-f", "egemaps", "--store", str(tmp_path / "s.zarr"), "--no-progress"])
    assert again.exit_code == 0 and "done 0, skipped 3, failed 0" in again.output


def test_failed_videos_give_exit_code_1(clips, tmp_path, clip_tools):
    from affectstore.testing.datasets import make_empty_file

    write_clips, add_rows, _ = clip_tools
    root = tmp_path / "clips"
    write_clips(root, (1.0,))
    make_empty_file(root / "empty.wav")
    add_rows(root, ["empty.wav"])
    result = runner.invoke(app, ["extract", "clips", str(root), "-f", "egemaps", "--store", str(tmp_path / "s.zarr"), "--no-progress"])
    assert result.exit_code == 1
    assert "done 1, skipped 0, failed 1" in result.output and "empty.wav [egemaps] decode: EmptyMediaError" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--features", "egemaps,wav2vec3"], "Unknown feature 'wav2vec3' (did you mean 'wav2vec2'?). Known extractors: "),
        (["--features", "egemaps", "--shard", "3/2"], "--shard I/N counts from 1: I must be in 1..2"),
        (["--features", "egemaps", "--shard", "0/4"], "--shard I/N counts from 1: I must be in 1..4 (e.g. 1/4 .. 4/4). Got '0/4' instead."),
        (["--features", "egemaps", "--device", "tpu"], "device must be cpu, cuda or cuda:K (e.g. cuda:0). Got 'tpu' instead."),
        (["--features", "egemaps", "--dtype", "int8"], "dtype must be one of float32, float16, bfloat16. Got 'int8' instead."),
        (["--features", "egemaps", "--set", "egemaps.feature_set=ComParE"], "feature_set must be one of eGeMAPSv02"),
        (["--features", "egemaps", "--set", "egemaps.colour=red"], "Unknown setting(s) 'colour' for EgemapsExtractorConfig"),
        (["--features", "egemaps", "--set", "wav2vec2.layer=2"], "--set names feature 'wav2vec2', which is not requested. Requested: egemaps."),
        (["--features", "egemaps", "--split", "dev"], "unknown split 'dev'"),
        (["--features", "egemaps", "--device", "cuda"], "--device cuda: none of the requested extractors (egemaps) can run on cuda; it would change nothing."),
        (["--features", "egemaps", "--dtype", "float16"], "--dtype float16: none of the requested extractors (egemaps) has a compute dtype"),
        (["--features", "egemaps", "--batch-size", "0"], "batch size must be an int >= 1. Got 0 instead."),
        (["--features", "egemaps", "--set", "egemaps.device=cuda"], "egemaps runs on cpu only; device 'cuda' is not possible"),
        (["--features", "egemaps", "-o", "colour=red"], "unknown option(s) 'colour' for dataset 'clips'"),
        ([], "No features given: pass --features a,b,c. Known extractors: "),
    ],
)
def test_bad_input_names_the_value_and_the_valid_ones(clips, tmp_path, args, message):
    root, _ = clips
    result = runner.invoke(app, ["extract", "clips", str(root), "--store", str(tmp_path / "s.zarr"), "--no-progress", *args])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ") or message in " ".join(result.output.split())


def test_unknown_dataset_lists_known_ones(clips, tmp_path):
    root, _ = clips
    result = runner.invoke(app, ["extract", "clipz", str(root), "-f", "egemaps", "--store", str(tmp_path / "s.zarr")])
    assert result.exit_code == 2
    assert "unknown dataset 'clipz'; known datasets: affwild2, bah, clips, emi" in result.output


def test_model_load_failure_exits_with_advice(clips, tmp_path):
    root, _ = clips
    result = runner.invoke(
        app, ["extract", "clips", str(root), "-f", "wav2vec2", "--set", "wav2vec2.model=nobody/nothing", "--store", str(tmp_path / "s.zarr")],
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "could not load model 'nobody/nothing'" in text and "--set wav2vec2.model=/path/to/model" in text


def test_recipe_supplies_root_store_and_features_and_data_root_wins(clips, tmp_path):
    root, ids = clips
    recipe = tmp_path / "clips.toml"
    recipe.write_text(
        f'dataset = "clips"\nroot = "{tmp_path / "nowhere"}"\nstore = "{tmp_path / "r.zarr"}"\nname = "mine"\n'
        '[run]\nbatch_size = 2\n[extractors.egemaps]\nfeature_set = "eGeMAPSv02"\n'
    )
    result = runner.invoke(app, ["extract", "clips", "--recipe", str(recipe), "--no-progress"], env={"DATA_ROOT": str(root)})
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(tmp_path / "r.zarr")
    assert store.datasets() == ["mine"] and sorted(store.completed("mine", "egemaps")) == ids
    assert store.provenance("mine", "egemaps")["config"]["batch_size"] == 2

    # without DATA_ROOT the recipe's root is used: here a folder that does not exist
    result = runner.invoke(app, ["extract", "clips", "--recipe", str(recipe)], env={"DATA_ROOT": ""})
    assert result.exit_code == 2 and "nowhere" in result.output
    result = runner.invoke(app, ["extract", "bah", "--recipe", str(recipe)])
    assert result.exit_code == 2 and "is for dataset 'clips', not 'bah'" in result.output


def test_recipe_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "clips"\nroots = "x"\n')
    with pytest.raises(RecipeError, match="unknown key\\(s\\) 'roots'. Valid keys: dataset, root"):
        load_recipe(bad)
    bad.write_text('[run]\nthreads = 4\n')
    with pytest.raises(RecipeError, match="unknown \\[run\\] setting\\(s\\) 'threads'"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="Recipe .*missing.toml' not found"):
        load_recipe(tmp_path / "missing.toml")


@pytest.mark.parametrize("name", ["emi", "bah", "affwild2", "clips"])
def test_shipped_recipes_parse_and_name_registered_extractors(name):
    from pathlib import Path

    from affectstore.extract import available_extractors, create_extractor

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "extract" / f"{name}.toml")
    assert recipe.dataset == name and recipe.store and recipe.root and recipe.extractors
    for spec in recipe.extractors:
        assert spec.extractor in available_extractors()
        create_extractor(spec.extractor, spec.settings)  # settings are valid for the config class


def test_ravdess_egemaps_through_the_runner(shared_data, tmp_path):
    root = shared_data / "ravdess-dev"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    summary = extract_command(
        "clips", str(root), features="egemaps", store=str(tmp_path / "r.zarr"), recipe=None,
        dataset_options=["targets=emotion,intensity"], limit=4, progress=False, environ={},
    )
    assert (summary.done, summary.failed, summary.left_by_limit) == (4, 0, summary.selected - 4)
    store = FeatureStore.open(tmp_path / "r.zarr")
    for vid in store.completed("clips", "egemaps"):
        functionals = store.read_video("clips", "egemaps", vid)
        lld = store.read_video("clips", "egemaps-lld", vid)
        assert functionals.values.shape == (1, 88) and np.isfinite(functionals.values).all()
        assert lld.values.shape[1] == 25 and 250 < lld.values.shape[0] < 600  # RAVDESS clips last 3-5 s
        np.testing.assert_allclose(np.diff(lld.times), 0.01)
        # loudness (first LLD) varies within speech
        assert lld.values[:, 0].std() > 0
