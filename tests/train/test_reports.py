"""What a run folder tells a researcher: class statistics that equal sklearn, chance, single features,
learning curves, choices per fold, run.json provenance, warnings once, per-model lines at debug."""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

from affectstore.store import FeatureStore
from affectstore.testing.datasets import make_clips_dataset, make_emi_dataset
from affectstore.testing.stores import Planted, planted_store, write_feature
from affectstore.train.run import train_task

FAST = {"max_epochs": 40, "patience": 6, "batch_size": 256, "hidden_sizes": [16], "learning_rate": 0.01}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """3 classes x 10 clips, 5 speakers; egemaps carries the class, but 2 clips were never extracted."""
    base = tmp_path_factory.mktemp("clips-report")
    built = make_clips_dataset(base / "data", classes=("angry", "happy", "sad"), n_per_class=10, n_speakers=5,
                               extensions=(".wav",), with_split=False)
    rng = np.random.default_rng(4)
    st = FeatureStore.open(base / "store.zarr", mode="a")
    vecs = {}
    for v, (c, arousal) in list(built.video_labels.items())[2:]:
        x = rng.normal(0, 0.8, size=(1, 6)).astype(np.float32)
        x[0, int(c)] += 2.0
        x[0, 4] += 3.0 * arousal
        vecs[v] = (x, np.zeros(1))
    write_feature(st, "clips", "egemaps", vecs, None, "video")
    return built, base / "store.zarr"


def test_class_statistics_equal_sklearn_and_the_report_shows_them(clips, tmp_path, caplog):
    built, store = clips
    with caplog.at_level(logging.INFO, logger="affectstore"):
        train_task("clips", store, features="egemaps", out=tmp_path / "run", data_root=built.root, cv=5,
                   overrides={"estimator": "mlp", "params": FAST, "adapter": {"group_column": "speaker"}})
    doc = json.loads((tmp_path / "run" / "metrics.json").read_text())
    m = doc["results"]["emotion"]
    oof = m["out_of_fold"]
    rows = [ln.split(",") for ln in (tmp_path / "run" / "predictions-emotion.csv").read_text().splitlines()[1:]]
    classes = ["angry", "happy", "sad"]
    t = np.array([classes.index(r[2]) for r in rows if r[2]])
    p = np.array([classes.index(r[3]) for r in rows if r[2]])
    assert oof["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(t, p), abs=1e-12)
    prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels=[0, 1, 2], zero_division=0)
    for k, c in enumerate(classes):
        got = oof["per_output"][c]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx((prec[k], rec[k], f1[k], sup[k]))
    assert oof["confusion_matrix"]["rows_true_cols_pred"] == confusion_matrix(t, p, labels=[0, 1, 2]).tolist()
    assert 0.0 < m["chance"]["value"] < oof["macro_f1"] and "most frequent" in m["chance"]["how"]
    report = (tmp_path / "run" / "report.md").read_text()
    for text in ("Balanced accuracy (UAR)", "| class | precision | recall | F1 | support |", "![confusion matrix]",
                 "| true \\ predicted | angry | happy | sad |", "| fold 0 |", "| saved model |", "chance"):
        assert text in report, text
    assert (tmp_path / "run" / "confusion-emotion.png").is_file()
    # The 2 clips without features are warned about once, though both targets load the feature.
    missing = [r for r in caplog.records if "have no features" in r.getMessage()]
    assert len(missing) == 1, [r.getMessage() for r in missing]
    # run.json: versions, time, absolute store location.
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["affectstore_version"] and info["libraries"]["numpy"] == np.__version__
    assert info["libraries"]["scikit-learn"] and info["libraries"]["torch"]
    assert datetime.datetime.fromisoformat(info["timestamp"]).tzinfo is not None
    assert Path(info["store_url"]).is_absolute() and Path(info["store_url"]) == Path(store).resolve()


def test_late_fusion_reports_each_single_feature_and_learning_curves(tmp_path, caplog):
    built = make_emi_dataset(tmp_path / "data", n_train=24, n_valid=16, n_test=0, n_faces=3)
    store = planted_store(tmp_path / "store.zarr", "emi", built, {
        "strong": Planted(dim=8, rate=25.0, noise=0.7), "noise": Planted(dim=4, rate=25.0, gain=0.0)}, duration=1.0)
    with caplog.at_level(logging.INFO, logger="affectstore"):
        res = train_task("emi", store, features="strong,noise", out=tmp_path / "run", data_root=built.root, cv=3,
                         overrides={"params": FAST})
    m = res.metrics["results"]["emi"]
    assert set(m["single_features"]) == {"strong", "noise"}
    assert m["single_features"]["strong"] > m["single_features"]["noise"]
    curves = m["learning_curves"]
    assert set(curves) == {"fold0", "fold1", "fold2", "final"} and set(curves["fold0"]) == {"strong", "noise"}
    c = curves["fold0"]["strong"]
    assert c["watched"] == "mean_pearson_r" and 1 <= c["best_epoch"] <= len(c["history"])
    assert m["folds"][0]["epochs"] == {"strong": c["best_epoch"], "noise": curves["fold0"]["noise"]["best_epoch"]}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| strong alone |" in report and "**fused (strong + noise)**" in report and "![learning curves]" in report
    assert (tmp_path / "run" / "learning.png").is_file()
    # Per-model lines are debug: none at INFO.
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and ("MLP fitted" in r.getMessage()
                                                                             or "Fitted " in r.getMessage())]
