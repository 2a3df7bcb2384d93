"""`affect train` and `affect predict` through typer's CliRunner."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import FeatureStore
from affectstore.testing.datasets import make_clips_dataset, make_emi_dataset

runner = CliRunner()


@pytest.fixture(autouse=True)
def _outside_the_repo(tmp_path, monkeypatch):
    """These tests give every option: keep the repo's train/<task>.toml defaults out of them."""
    monkeypatch.chdir(tmp_path)


def _write(store, dataset, name, vectors, config="v1"):
    dim = next(iter(vectors.values())).shape[-1]
    prov = {"extractor": "synthetic", "config_hash": f"hash-{config}", "dim": dim, "dtype": "float32",
            "kind": "video", "rate": None}
    store.create_feature(dataset, name, prov)
    for vid, x in vectors.items():
        store.write_video(dataset, name, vid, x.reshape(1, -1), np.zeros(1), config_hash=prov["config_hash"])


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    built = make_clips_dataset(base / "data", classes=("a", "b"), n_per_class=8, n_speakers=4, extensions=(".wav",),
                               with_split=False)
    rng = np.random.default_rng(0)
    st = FeatureStore.open(base / "store.zarr", mode="a")
    vecs = {}
    for v, (c, _) in built.video_labels.items():
        x = rng.normal(0, 0.3, 6).astype(np.float32)
        x[0] += 2.0 * c
        vecs[v] = x
    _write(st, "clips", "egemaps", vecs)
    return built, base


def test_cli_train_then_predict(clips, tmp_path):
    built, base = clips
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "clips", "--store", str(base / "store.zarr"), "--features", "egemaps",
                            "--data-root", str(built.root), "--out", str(run), "--cv", "4", "-o", "group_column=speaker",
                            "-o", "targets=emotion"])
    assert r.exit_code == 0, r.output
    assert "emotion: macro_f1" in r.output and "out-of-fold" in r.output
    f1 = float(r.output.split("emotion: macro_f1 ")[1].split()[0])
    assert f1 > 0.8
    r = runner.invoke(app, ["predict", str(run), "--store", str(base / "store.zarr"), "--split", "all"])
    assert r.exit_code == 0, r.output
    assert "predictions-all-emotion.csv" in r.output


def test_cli_unknown_feature_lists_available(clips, tmp_path):
    built, base = clips
    r = runner.invoke(app, ["train", "clips", "--store", str(base / "store.zarr"), "--features", "hubert",
                            "--data-root", str(built.root), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2
    assert "Unknown feature(s) 'hubert'" in r.output and "Available features: egemaps" in r.output


def test_cli_bad_task_and_bad_option(clips, tmp_path):
    built, base = clips
    r = runner.invoke(app, ["train", "emo", "--store", str(base / "store.zarr"), "--features", "egemaps"])
    assert r.exit_code == 2
    assert "Unknown task 'emo'. Valid tasks: emi, bah, expr, va, au, bah-video, clips." in r.output
    r = runner.invoke(app, ["train", "clips", "--store", str(base / "store.zarr"), "--features", "egemaps",
                            "--data-root", str(built.root), "-o", "group_column"])
    assert r.exit_code == 2 and "must look like key=value. Got 'group_column' instead" in r.output
    r = runner.invoke(app, ["train", "clips", "--store", str(base / "store.zarr"), "--features", "egemaps",
                            "--data-root", str(built.root), "--cv", "1"])
    assert r.exit_code == 2 and "cv must be 0 (no cross-validation) or an int >= 2. Got 1" in r.output


def test_cli_predict_refuses_changed_features(tmp_path):
    built = make_emi_dataset(tmp_path / "data", n_train=8, n_valid=8, n_test=1, n_faces=1)
    rng = np.random.default_rng(0)
    st = FeatureStore.open(tmp_path / "a.zarr", mode="a")
    _write(st, "emi", "gigachat", {v: rng.normal(size=4).astype(np.float32) for v in built.ids})
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "emi", "--store", str(tmp_path / "a.zarr"), "--features", "gigachat",
                            "--data-root", str(built.root), "--out", str(run)])
    assert r.exit_code == 0, r.output
    other = FeatureStore.open(tmp_path / "b.zarr", mode="a")
    _write(other, "emi", "gigachat", {v: rng.normal(size=4).astype(np.float32) for v in built.ids}, config="v2")
    r = runner.invoke(app, ["predict", str(run), "--store", str(tmp_path / "b.zarr")])
    assert r.exit_code == 2
    assert "Feature 'gigachat'" in r.output and "hash-v2" in r.output and "hash-v1" in r.output
    r = runner.invoke(app, ["predict", str(tmp_path / "nope"), "--store", str(tmp_path / "a.zarr")])
    assert r.exit_code == 2 and "not a run folder" in r.output


def test_predict_refuses_a_split_whose_videos_lack_features(clips, tmp_path):
    built, base = clips
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "clips", "--store", str(base / "store.zarr"), "--features", "egemaps",
                            "--data-root", str(built.root), "--out", str(run), "--cv", "4", "-o", "group_column=speaker",
                            "-o", "targets=emotion", "--set", "estimator=logreg"])
    assert r.exit_code == 0, r.output
    partial = FeatureStore.open(tmp_path / "partial.zarr", mode="a")
    src = FeatureStore.open(base / "store.zarr")
    prov = src.provenance("clips", "egemaps")
    partial.create_feature("clips", "egemaps", prov)
    kept = sorted(built.video_labels)[:1]
    for vid in kept:
        v = src.read_video("clips", "egemaps", vid)
        partial.write_video("clips", "egemaps", vid, v.values, v.times, config_hash=prov["config_hash"])
    r = runner.invoke(app, ["predict", str(run), "--store", str(tmp_path / "partial.zarr"), "--split", "all"])
    n = len(built.video_labels)
    assert r.exit_code == 2
    assert f"{n - 1} of {n} 'all' videos lack features in store" in r.output and "(egemaps)" in r.output
    assert "--allow-missing" in r.output
    r = runner.invoke(app, ["predict", str(run), "--store", str(tmp_path / "partial.zarr"), "--split", "all",
                            "--allow-missing", "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    import csv

    rows = list(csv.DictReader(open(tmp_path / "p" / "predictions-all-emotion.csv")))
    assert len(rows) == n
    assert {row["id"] for row in rows if row["missing_features"] == "egemaps"} == set(built.video_labels) - set(kept)
    assert [row["missing_features"] for row in rows if row["id"] == kept[0]] == [""]
