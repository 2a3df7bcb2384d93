"""The paper protocol (choose and report on the whole validation split, marked optimistic) and refit."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from affectstore.store import FeatureStore
from affectstore.testing.datasets import make_emi_dataset
from affectstore.testing.stores import Planted, planted_store
from affectstore.train.errors import RecipeError
from affectstore.train.row_estimators import MLPRegressor
from affectstore.train.run import train_task

QUIET_MLP = {"max_epochs": 60, "patience": 8, "batch_size": 256}


@pytest.fixture(scope="module")
def emi(tmp_path_factory):
    base = tmp_path_factory.mktemp("emi-protocol")
    built = make_emi_dataset(base / "data", n_train=30, n_valid=20, n_test=2, n_faces=3)
    store = planted_store(base / "store.zarr", "emi", built, {"hubert": Planted(dim=10, rate=50.0, noise=1.0)}, duration=1.0)
    return built, store


def test_paper_protocol_reports_on_the_whole_validation_split_marked_optimistic(emi, tmp_path, caplog):
    built, store = emi
    with caplog.at_level(logging.INFO, logger="affectstore.train"):
        res = train_task("emi", store, features="hubert", out=tmp_path / "run", data_root=built.root,
                         overrides={"protocol": "paper", "params": QUIET_MLP})
    m = res.metrics["results"]["emi"]
    assert m["report"]["n"] == len(built.splits["valid"])  # all validation videos, not a half
    assert m["report"]["mean_pearson_r"] > 0.5, m["report"]
    assert "tune" not in m  # the tuning items are the report items
    doc = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert doc["optimistic"] is True and doc["protocol_mode"] == "paper"
    assert doc["results"]["emi"]["optimistic"] is True and "OPTIMISTIC" in doc["results"]["emi"]["note"]
    assert "OPTIMISTIC" in doc["protocol"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "OPTIMISTIC" in report and "validation (optimistic)" in report
    assert any("OPTIMISTIC" in r.getMessage() and "mean_pearson_r" in r.getMessage() for r in caplog.records)
    rows = (tmp_path / "run" / "predictions.csv").read_text().splitlines()[1:]
    assert {r.split(",")[0] for r in rows} == set(built.splits["valid"])
    assert {r.split(",")[1] for r in rows} == {"validation"}


def test_refit_trains_the_saved_model_on_train_and_validation_with_the_chosen_epochs(emi, tmp_path):
    built, store = emi
    res = train_task("emi", store, features="hubert", out=tmp_path / "run", data_root=built.root,
                     overrides={"protocol": {"mode": "paper", "refit": True}, "params": QUIET_MLP})
    m = res.metrics["results"]["emi"]
    chosen = json.loads((tmp_path / "run" / "model" / "emi" / "model.json").read_text())
    assert m["refit"]["n_videos"] == len(built.splits["train"]) + len(built.splits["valid"])
    epochs = m["refit"]["epochs"]["hubert"]
    assert 1 <= epochs <= QUIET_MLP["max_epochs"]
    est = MLPRegressor.load(tmp_path / "run" / "model" / "emi" / chosen["estimators"]["hubert"]["folder"])
    assert est.n_epochs_ == epochs  # trained exactly the chosen epochs, no early stopping
    # Its input scaling comes from train + validation, not from train alone.
    table = FeatureStore.open(store, mode="r").load_feature("emi", "hubert", ids=built.splits["train"] + built.splits["valid"])
    pooled = np.stack([table[v].values.mean(axis=0) for v in built.splits["train"] + built.splits["valid"]])
    np.testing.assert_allclose(est.mean_, pooled.mean(axis=0), atol=1e-4)
    train_only = pooled[: len(built.splits["train"])].mean(axis=0)
    assert not np.allclose(est.mean_, train_only, atol=1e-4)
    assert "Refit:" in (tmp_path / "run" / "report.md").read_text()
    sub = (tmp_path / "run" / "submission.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in sub[1:]] == built.splits["test"]


def test_honest_emi_run_says_halves_are_split_by_video(emi, tmp_path):
    built, store = emi
    res = train_task("emi", store, features="hubert", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": QUIET_MLP})
    assert "no subject ids, so the parts are cut by video" in res.metrics["protocol"]
    assert res.metrics["optimistic"] is False
    assert res.metrics["results"]["emi"]["tune_label"] == "tune"


def test_linear_model_fitted_on_its_tuning_items_labels_that_row_fit_data(emi, tmp_path):
    built, store = emi
    res = train_task("emi", store, features="hubert", out=tmp_path / "run", data_root=built.root,
                     overrides={"estimator": "ridge", "params": {"alpha": 1.0}})
    assert res.metrics["results"]["emi"]["tune_label"] == "fit data"
    assert "| fit data |" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize(("protocol", "message"), [
    ({"mode": "papr"}, r"protocol.mode must be one of \('honest', 'paper'\). Got 'papr'"),
    ({"mode": "paper", "cv": 3}, r"does not combine with cv=3"),
    ({"refit": "yes"}, r"protocol.refit must be true or false. Got 'yes'"),
])
def test_protocol_settings_are_checked(emi, tmp_path, protocol, message):
    built, store = emi
    with pytest.raises(RecipeError, match=message):
        train_task("emi", store, features="hubert", out=tmp_path / "run", data_root=built.root,
                   overrides={"protocol": protocol})
