"""Submissions list every frame of every test video, frames without a face crop included."""

from __future__ import annotations

import shutil

import numpy as np

from affectstore.store import FeatureStore
from affectstore.testing.datasets import make_affwild2_dataset, make_bah_dataset
from affectstore.testing.stores import Planted, planted_store
from affectstore.train.run import predict_run, train_task

FAST = {"max_epochs": 40, "patience": 6, "batch_size": 256, "hidden_sizes": [16], "learning_rate": 0.01}


def test_affwild2_test_video_every_frame_from_the_frame_count(tmp_path):
    built = make_affwild2_dataset(tmp_path / "data", n_train=3, n_val=2, duration=2.0, fps=30.0)
    store = planted_store(tmp_path / "store.zarr", "affwild2", built,
                          {"mobilevit": Planted(dim=8, rate=30.0, face=True, task="expr")}, duration=2.0, fps=30.0)
    # A test video: a copy of a validation video whose crops stop at frame 45 (15 tail frames and
    # frames 20-22 have no face).
    src, test = built.splits["val"][0], "77-30-64x48"
    shutil.copy(built.root / "videos" / f"{src}.mp4", built.root / "videos" / f"{test}.mp4")
    crops = [i for i in range(1, 46) if i not in (20, 21, 22)]
    (built.root / "cropped_aligned" / test).mkdir()
    for i in crops:
        shutil.copy(built.root / "cropped_aligned" / src / "00001.jpg", built.root / "cropped_aligned" / test / f"{i:05d}.jpg")
    (tmp_path / "test.txt").write_text(test + "\n")
    st = FeatureStore.open(store, mode="a")
    values = np.random.default_rng(0).normal(size=(len(crops), 8)).astype(np.float32)
    st.write_video("affwild2", "mobilevit", test, values, (np.asarray(crops) - 1) / 30.0, config_hash="hash-v1")

    res = train_task("expr", store, features="mobilevit", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": FAST, "smoothing": {"sizes": [1]}, "adapter": {"test_list": str(tmp_path / "test.txt")}})
    assert any(p.name == "submission.csv" for p in res.files)
    lines = (tmp_path / "run" / "submission.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines[1:]] == [f"{test}/{i:05d}.jpg" for i in range(1, 61)]
    pred = np.genfromtxt(tmp_path / "run" / "predictions-test.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    scores = np.stack([pred[f"score_{c}"] for c in ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness",
                                                     "Surprise", "Other")], axis=1)
    frames = pred["frame"]
    # Tail padded with the last covered frame's scores; a gap interpolated from its neighbours.
    np.testing.assert_allclose(scores[frames > 45], np.repeat(scores[frames == 45], 15, axis=0), atol=1e-6)
    np.testing.assert_allclose(scores[frames == 21][0], (scores[frames == 19][0] + scores[frames == 23][0]) / 2, atol=1e-5)


def test_bah_test_videos_every_frame_from_the_frame_count(tmp_path):
    built = make_bah_dataset(tmp_path / "train", n_train=4, n_val=3, duration=2.0)
    store = planted_store(tmp_path / "store.zarr", "bah", built,
                          {"mobilevit": Planted(dim=4, rate=24.0, face=True, task="bah")}, duration=2.0, fps=24.0)
    train_task("bah", store, features="mobilevit", out=tmp_path / "run", data_root=built.root,
               overrides={"params": FAST, "smoothing": {"sizes": [1]}})
    # The test-data layout: videos and crops, no split files or annotations; crops missing at the tail.
    test_root = tmp_path / "test"
    for vid in built.splits["val"]:
        (test_root / "videos" / vid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(built.root / "videos" / vid, test_root / "videos" / vid)
        shutil.copytree(built.root / "cropped-aligned-faces" / vid, test_root / "cropped-aligned-faces" / vid)
        for n in range(40, 48):
            (test_root / "cropped-aligned-faces" / vid / f"frame-{n}.jpg").unlink()
    predict_run(tmp_path / "run", store, split="test", data_root=test_root)
    lines = (tmp_path / "run" / "submission.txt").read_text().splitlines()
    assert len(lines) == 48 * len(built.splits["val"])
    want = {f"{vid}/frame-{n}.jpg" for vid in built.splits["val"] for n in range(48)}
    assert {ln.rsplit(",", 1)[0] for ln in lines} == want
