"""The Aff-Wild2 AU task and the BAH video-level task end to end on generated layouts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from affectstore.testing.datasets import make_affwild2_dataset, make_bah_dataset
from affectstore.testing.stores import Planted, planted_store
from affectstore.train.metrics import AU_NAMES, au_mean_f1
from affectstore.train.run import predict_run, train_task

FAST = {"max_epochs": 80, "patience": 10, "batch_size": 256, "hidden_sizes": [32], "learning_rate": 0.01}


def test_au_mean_f1_equals_sklearn():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, size=(200, 12))
    p = np.where(rng.random((200, 12)) < 0.8, t, 1 - t)
    p[:, 3] = 0  # a label never predicted counts with F1 0
    want = np.mean([f1_score(t[:, k], p[:, k], zero_division=0) for k in range(12)])
    assert au_mean_f1(t, p) == pytest.approx(want, abs=1e-12)
    assert au_mean_f1(t, p) == pytest.approx(f1_score(t, p, average="macro", zero_division=0), abs=1e-12)


def test_au_task_end_to_end_with_per_au_thresholds(tmp_path):
    built = make_affwild2_dataset(tmp_path / "data", n_train=5, n_val=4, duration=2.0, fps=30.0)
    store = planted_store(tmp_path / "store.zarr", "affwild2", built, {
        "mobilevit": Planted(dim=14, rate=30.0, face=True, task="au", gain=2.0, noise=0.5),
        "wav2vec2": Planted(dim=4, rate=50.0, gain=0.0),
    }, duration=2.0, fps=30.0)
    res = train_task("au", store, features="mobilevit,wav2vec2", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": FAST, "smoothing": {"sizes": [1, 3]}})
    m = res.metrics["results"]["au"]
    assert m["metric"] == "au_mean_f1" and m["report"]["au_mean_f1"] > 0.7, m["report"]
    assert list(m["report"]["per_output"]) == list(AU_NAMES)
    th = m["choices"]["thresholds"]
    assert len(th) == 12 and all(0 < t < 1 for t in th)
    # The run's own predictions score exactly what sklearn says.
    rows = (tmp_path / "run" / "predictions.csv").read_text().splitlines()
    header = rows[0].split(",")
    rep = [r.split(",") for r in rows[1:] if r.split(",")[2] == "report" and r.split(",")[3] != ""]
    t = np.array([[int(r[header.index(f"true_{a}")]) for a in AU_NAMES] for r in rep])
    p = np.array([[int(r[header.index(f"pred_{a}")]) for a in AU_NAMES] for r in rep])
    assert f1_score(t, p, average="macro", zero_division=0) == pytest.approx(m["report"]["au_mean_f1"], abs=1e-9)
    predict_run(tmp_path / "run", store, split="val")
    sub = (tmp_path / "run" / "submission-val.csv").read_text().splitlines()
    assert sub[0] == "image_location,AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"
    first = sub[1].split(",")
    assert first[0] == f"{built.splits['val'][0]}/00001.jpg" and len(first) == 13 and set(first[1:]) <= {"0", "1"}
    assert len(sub) - 1 == sum(len(built.frame_labels["au"][v]) for v in built.splits["val"])


def test_bah_video_task_scores_the_split_file_label_by_macro_f1(tmp_path):
    built = make_bah_dataset(tmp_path / "data", n_train=12, n_val=10, duration=1.0, seed=3)
    store = planted_store(tmp_path / "store.zarr", "bah", built, {
        "gigachat": Planted(dim=6, rate=None, gain=2.0, noise=0.3),  # one vector per segment, carries the video label
    }, duration=1.0, fps=24.0)
    res = train_task("bah-video", store, features="gigachat", out=tmp_path / "run", data_root=built.root,
                     overrides={"estimator": "logreg", "params": {"C": 1.0}})
    m = res.metrics["results"]["bah-video"]
    assert m["metric"] == "binary_macro_f1"
    assert m["report"]["binary_macro_f1"] > 0.8, m["report"]
    assert m["report"]["binary_macro_f1"] == pytest.approx(m["report"]["macro_f1"])
    rows = (tmp_path / "run" / "predictions.csv").read_text().splitlines()[1:]
    assert {r.split(",")[0] for r in rows} == set(built.splits["val"])  # one row per video
