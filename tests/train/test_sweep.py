"""`affect sweep` on a generated store, and the pooled-feature cache behind it."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.testing.datasets import make_emi_dataset
from affectstore.testing.stores import Planted, planted_store
from affectstore.train import cache as cache_mod
from affectstore.train.errors import TrainError
from affectstore.train.run import train_task
from affectstore.train.sweep import feature_sets, sweep

FAST = {"max_epochs": 100, "patience": 10, "batch_size": 256, "hidden_sizes": [16], "learning_rate": 0.01}


@pytest.fixture(scope="module")
def emi(tmp_path_factory):
    base = tmp_path_factory.mktemp("emi-sweep")
    built = make_emi_dataset(base / "data", n_train=30, n_valid=20, n_test=0, n_faces=3)
    store = planted_store(base / "store.zarr", "emi", built, {
        "strong": Planted(dim=8, rate=25.0, noise=0.7),
        "weak": Planted(dim=8, rate=25.0, gain=0.6, noise=1.0, columns=3),
        "noise": Planted(dim=4, rate=25.0, gain=0.0),
    }, duration=1.0)
    return built, store


def test_feature_sets_are_every_subset_singles_once():
    sets = feature_sets(["a", "b", "c"])
    assert len({s for s, _ in sets}) == 7 and len(sets) == 3 + 4 * 2
    assert (("a",), "single") in sets and (("a", "b", "c"), "early") in sets and (("a", "c"), "late") in sets


def test_sweep_table_on_a_generated_store(emi, tmp_path):
    built, store = emi
    res = sweep("emi", store, "strong,weak,noise", out=tmp_path / "sw", data_root=built.root, overrides={"params": FAST})
    with open(res.table_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 11
    assert list(rows[0])[:7] == ["target", "features", "fusion", "metric", "report", "out_of_fold", "n"]
    assert "Admiration" in rows[0] and "Joy" in rows[0]  # one column per output
    by = {(r["features"], r["fusion"]): r for r in rows}
    assert float(by[("strong", "single")]["report"]) > 0.5 > float(by[("noise", "single")]["report"])
    assert {("strong+weak+noise", "early"), ("strong+weak+noise", "late")} <= set(by)
    best = [r for r in rows if r["best"] == "yes"]
    assert len(best) == 1 and float(best[0]["report"]) == max(float(r["report"]) for r in rows)
    assert all(r["out_of_fold"] == "" for r in rows)  # no cross-validation here
    md = res.table_md.read_text()
    assert "(best)" in md and md.count("\n| ") == 12  # header + 11 rows
    assert "| strong | single |" in md or "**strong** (best)" in md


def test_second_run_reads_pooled_features_from_the_cache(emi, tmp_path, monkeypatch):
    built, store = emi
    monkeypatch.setenv(cache_mod.ENV, str(tmp_path / "cache"))
    calls = []
    real = cache_mod.load_video_features
    monkeypatch.setattr(cache_mod, "load_video_features", lambda *a, **k: calls.append(a[2].name) or real(*a, **k))
    kw = dict(features="strong,weak", data_root=built.root, overrides={"params": FAST})
    first = train_task("emi", store, out=tmp_path / "r1", **kw)
    assert sorted(calls) == ["strong", "weak"]
    files = sorted((tmp_path / "cache" / "pooled").glob("*.npz"))
    assert len(files) == 2
    second = train_task("emi", store, out=tmp_path / "r2", **kw)
    assert sorted(calls) == ["strong", "weak"]  # nothing read from the store the second time
    assert second.metrics["results"]["emi"]["report"] == first.metrics["results"]["emi"]["report"]
    # Another pooling is another key: the store is read again, and a new file appears.
    train_task("emi", store, out=tmp_path / "r3", features="strong", data_root=built.root,
               overrides={"params": FAST, "pooling": {"strong": "stat"}})
    assert calls[-1] == "strong" and len(list((tmp_path / "cache" / "pooled").glob("*.npz"))) == 3


def test_cache_key_changes_with_config_hash_and_pooling(emi):
    from affectstore.store import FeatureStore
    from affectstore.train.data import feature_infos

    _, store = emi
    st = FeatureStore.open(store, mode="r")
    info = feature_infos(st, "emi", ["strong"])["strong"]
    ids = sorted(st.completed("emi", "strong"))
    base = cache_mod.cache_key(st, "emi", info, "mean", ids)
    other = type(info)(**{**info.as_dict(), "config_hash": "hash-v2"})
    assert cache_mod.cache_key(st, "emi", other, "mean", ids) != base
    assert cache_mod.cache_key(st, "emi", info, "stat", ids) != base
    assert cache_mod.cache_key(st, "emi", info, "mean", ids[:-1]) != base  # more videos completed later


def test_cache_off(monkeypatch, emi):
    monkeypatch.setenv(cache_mod.ENV, "off")
    assert cache_mod.cache_folder(None) is None


def test_sweep_cli_and_errors(emi, tmp_path):
    built, store = emi
    r = CliRunner().invoke(app, ["sweep", "emi", "--store", str(store), "--features", "strong,noise",
                                 "--data-root", str(built.root), "--out", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cli" / "table.md").is_file() and "(best)" in r.output
    with pytest.raises(TrainError, match="at most 6 features"):
        sweep("emi", store, "a,b,c,d,e,f,g", data_root=built.root)
