"""affect train / predict end to end on generated datasets with planted-signal feature stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from affectstore.datasets import AFFECTNET_TO_EXPR
from affectstore.store import FeatureStore
from affectstore.testing.datasets import (
    make_affwild2_dataset,
    make_bah_dataset,
    make_clips_dataset,
    make_emi_dataset,
)
from affectstore.train.errors import LineageError, RecipeError, TrainError
from affectstore.train.run import grouped_split, predict_run, train_task

RECIPES = Path(__file__).resolve().parents[2] / "train"
QUIET_MLP = {"max_epochs": 60, "patience": 8, "batch_size": 256}


# --------------------------------------------------------------------------- synthetic stores


def provenance(dim: int, rate, kind: str = "frames", config: str = "v1") -> dict:
    """Provenance of a made-up feature set (the hash changes with ``config``)."""
    return {"extractor": "synthetic", "config_hash": f"hash-{config}", "dim": dim, "dtype": "float32",
            "kind": kind, "rate": rate, "config": {"name": config}}


def write_feature(store, dataset: str, name: str, videos: dict, rate, kind: str = "frames", config: str = "v1") -> None:
    """Write ``videos``: id -> (values (T, D), times (T,)) as one feature set."""
    dim = next(iter(videos.values()))[0].shape[1]
    prov = provenance(dim, rate, kind, config)
    store.create_feature(dataset, name, prov)
    for vid, (values, times) in videos.items():
        store.write_video(dataset, name, vid, values, times, config_hash=prov["config_hash"])


def carrying(target, times, dim: int, rng, noise: float = 0.5, gain: float = 2.0):
    """Values at ``times`` whose first columns are ``gain * target(t)`` plus Gaussian noise."""
    values = rng.normal(0, noise, size=(len(times), dim)).astype(np.float32)
    for i, t in enumerate(times):
        y = np.atleast_1d(target(t))
        values[i, : len(y)] += gain * y
    return values, np.asarray(times, dtype=np.float64)


@pytest.fixture(scope="module")
def emi(tmp_path_factory):
    """EMI root (40 train, 30 valid, 2 test) and a store: hubert 50 Hz and faces 6 fps carry the labels."""
    base = tmp_path_factory.mktemp("emi")
    built = make_emi_dataset(base / "data", n_train=40, n_valid=30, n_test=2, n_faces=3)
    rng = np.random.default_rng(1)
    labels = {**built.video_labels}
    st = FeatureStore.open(base / "store.zarr", mode="a")
    ids = built.ids
    y = {v: labels.get(v, rng.uniform(0, 1, 6)) for v in ids}
    write_feature(st, "emi", "hubert", {v: carrying(lambda t, v=v: y[v], np.arange(50) / 50, 12, rng, 1.0) for v in ids}, 50)
    write_feature(st, "emi", "mobilevit", {v: carrying(lambda t, v=v: y[v][:3], np.arange(6) / 6, 8, rng, 1.0) for v in ids}, 6)
    write_feature(st, "emi", "egemaps", {v: (rng.normal(size=(1, 5)).astype(np.float32), np.zeros(1)) for v in ids}, None, "video")
    return built, base / "store.zarr"


@pytest.fixture(scope="module")
def bah(tmp_path_factory):
    """BAH root (8 train, 6 val videos); store features named as in train/bah.toml.

    wav2vec2 (50 Hz) carries the frame label, mobilevit (24 fps at the crops) carries it more
    weakly, gigachat (one vector per transcript segment) carries the video label.
    """
    base = tmp_path_factory.mktemp("bah")
    built = make_bah_dataset(base / "data", n_train=8, n_val=6, duration=2.0)
    rng = np.random.default_rng(2)
    st = FeatureStore.open(base / "store.zarr", mode="a")
    frames = built.frame_labels["bah"]

    def at(v):
        return lambda t: frames[v][min(int(t * 24), len(frames[v]) - 1), 0]

    write_feature(st, "bah", "wav2vec2", {v: carrying(at(v), np.arange(100) / 50, 6, rng, 0.6) for v in built.ids}, 50)
    write_feature(st, "bah", "mobilevit", {v: carrying(at(v), np.arange(48) / 24, 3, rng, 3.0) for v in built.ids}, 24)
    segments = {v: [s[0] for s in built.transcripts[v]] for v in built.ids}
    write_feature(st, "bah", "gigachat", {v: carrying(lambda t, v=v: built.video_labels[v], segments[v], 4, rng, 0.3)
                                          for v in built.ids}, None)
    return built, base / "store.zarr"


@pytest.fixture(scope="module")
def affwild2(tmp_path_factory):
    """Aff-Wild2 root (EXPR + VA); store features named as in train/expr.toml.

    mobilevit (at the crop frames, 30 fps) carries the expression and valence/arousal,
    wav2vec2 (50 Hz) is noise, mobilevit-logits (10 = 8 AffectNet-order logits + V + A)
    is a pretrained head that is sure (and right) on the frames of class 4 (Happiness), which
    mobilevit cannot tell from class 7 (Other): only the override can fix those frames.
    """
    base = tmp_path_factory.mktemp("aw")
    built = make_affwild2_dataset(base / "data", n_train=6, n_val=6, duration=2.0, fps=30.0)
    rng = np.random.default_rng(3)
    st = FeatureStore.open(base / "store.zarr", mode="a")
    faces, audio, logits = {}, {}, {}
    for v in built.ids:
        expr = built.frame_labels["expr"][v][:, 0]
        va = built.frame_labels["va"][v]
        crops = [i for i in range(1, len(expr) + 1) if i not in built.missing_crops[v]]
        t = (np.asarray(crops) - 1) / 30.0
        vals = rng.normal(0, 0.3, size=(len(crops), 12)).astype(np.float32)
        head = np.zeros((len(crops), 10), np.float32)
        for j, i in enumerate(crops):
            if expr[i - 1] >= 0 and expr[i - 1] not in (4, 7):  # Happiness and Other look alike
                vals[j, int(expr[i - 1])] += 2.0
            if expr[i - 1] == 4:
                head[j, AFFECTNET_TO_EXPR[4]] = 10.0
            if va[i - 1, 0] > -5:
                vals[j, 8:10] += va[i - 1]
        faces[v] = (vals, t)
        logits[v] = (head, t)
        audio[v] = (rng.normal(size=(100, 4)).astype(np.float32), np.arange(100) / 50)
    write_feature(st, "affwild2", "mobilevit", faces, 30.0)
    write_feature(st, "affwild2", "mobilevit-logits", logits, 30.0)
    write_feature(st, "affwild2", "wav2vec2", audio, 50.0)
    return built, base / "store.zarr"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Clips (3 classes x 12, 4 speakers, no split column) with an egemaps-like vector carrying the class."""
    base = tmp_path_factory.mktemp("clips")
    built = make_clips_dataset(base / "data", classes=("angry", "happy", "sad"), n_per_class=12, n_speakers=4,
                               extensions=(".wav",), with_split=False)
    rng = np.random.default_rng(4)
    st = FeatureStore.open(base / "store.zarr", mode="a")
    vecs = {}
    for v, (c, arousal) in built.video_labels.items():
        x = rng.normal(0, 0.5, size=(1, 10)).astype(np.float32)
        x[0, int(c)] += 2.0
        x[0, 5] += 3.0 * arousal
        vecs[v] = (x, np.zeros(1))
    write_feature(st, "clips", "egemaps", vecs, None, "video")
    return built, base / "store.zarr"


# --------------------------------------------------------------------------- tasks learn


def test_emi_learns_and_writes_run_folder(emi, tmp_path):
    built, store = emi
    res = train_task("emi", store, features="hubert,mobilevit,egemaps", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": QUIET_MLP, "pooling": {"mobilevit": "stat"}, "blend": {"per_output": True, "step": 0.1}})
    m = res.metrics["results"]["emi"]
    assert m["report"]["mean_pearson_r"] > 0.6, m["report"]
    run = tmp_path / "run"
    for name in ("metrics.json", "predictions.csv", "features.json", "run.json", "report.md", "scores.png", "blend.png",
                 "model/emi/model.json", "submission.csv"):
        assert (run / name).is_file(), name
    feats = json.loads((run / "features.json").read_text())
    assert [f["name"] for f in feats] == ["hubert", "mobilevit", "egemaps"]
    assert feats[0]["config_hash"] == "hash-v1" and feats[0]["dim"] == 12 and feats[0]["rate"] == 50
    weights = np.asarray(m["choices"]["blend_weights"])
    assert weights.shape == (6, 3) and np.allclose(weights.sum(axis=1), 1.0)
    # egemaps is noise: it should get little weight on average.
    assert weights[:, 2].mean() < 0.5
    sub = (run / "submission.csv").read_text().splitlines()
    assert sub[0] == "Filename,Admiration,Amusement,Determination,Empathic Pain,Excitement,Joy"
    assert [line.split(",")[0] for line in sub[1:]] == built.splits["test"]
    report = (run / "report.md").read_text()
    assert "![blend weights](blend.png)" in report and "report items" in report


def test_emi_report_and_tune_items_are_disjoint_groups(emi, tmp_path):
    built, store = emi
    train_task("emi", store, features="hubert", out=tmp_path / "r", data_root=built.root, overrides={"params": QUIET_MLP})
    rows = (tmp_path / "r" / "predictions.csv").read_text().splitlines()[1:]
    sets = {}
    for line in rows:
        vid, which = line.split(",")[:2]
        sets.setdefault(which, set()).add(vid)
    assert set(sets) == {"tune", "report"}
    assert not sets["tune"] & sets["report"]
    assert sets["tune"] | sets["report"] == set(built.splits["valid"])


def test_bah_recipe_learns_with_fixed_blend_smoothing_threshold_and_video_filter(bah, tmp_path):
    built, store = bah
    res = train_task("bah", store, recipe=RECIPES / "bah.toml", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": QUIET_MLP})
    m = res.metrics["results"]["bah"]
    # Chance (all-majority) weighted F1 here is about 0.5.
    assert m["report"]["weighted_f1"] > 0.85, m["report"]
    ch = m["choices"]
    assert ch["blend_weights"] == pytest.approx([0.6, 0.15, 0.25]) and ch["blend_fixed"]
    assert "smoothing" in ch and "threshold" in ch and "video_filter" in ch
    for png in ("smoothing.png", "threshold.png", "blend.png"):
        assert (tmp_path / "run" / png).is_file()
    out = predict_run(tmp_path / "run", store, split="val")
    lines = (tmp_path / "run" / "submission-val.txt").read_text().splitlines()
    n_frames = sum(len(built.frame_labels["bah"][v]) for v in built.splits["val"])
    assert len(lines) == n_frames
    assert lines[0].startswith(built.splits["val"][0] + "/frame-0.jpg,")
    assert out.metrics["bah"]["weighted_f1"] > 0.85


def test_expr_recipe_learns_with_missing_crops_interpolated_and_override(affwild2, tmp_path):
    built, store = affwild2
    res = train_task("expr", store, recipe=RECIPES / "expr.toml", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": {**QUIET_MLP, "hidden_sizes": [32]}, "smoothing": {"sizes": [1, 3]}})
    m = res.metrics["results"]["expr"]
    assert m["report"]["expr_macro_f1"] > 0.6, m["report"]  # chance: about 1/8
    # The head is right whenever it fires and the model confuses 4 with 7: the override must be used.
    ov = m["choices"]["override"]
    assert ov["threshold"] < 1.0 and max(ov["scores"]) > ov["scores"][-1]
    rows = (tmp_path / "run" / "predictions.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:5] == ["id", "frame", "set", "true", "pred"]
    # every labelled frame has a prediction, frames without a crop included
    val = built.splits["val"]
    missing = {(v, f) for v in val for f in built.missing_crops[v]}
    got = {(r.split(",")[0], int(r.split(",")[1])) for r in rows[1:]}
    assert missing <= got
    feats = json.loads((tmp_path / "run" / "features.json").read_text())
    assert [f["name"] for f in feats] == ["mobilevit", "wav2vec2", "mobilevit-logits"]


def test_va_learns_ccc(affwild2, tmp_path):
    built, store = affwild2
    res = train_task("va", store, recipe=RECIPES / "va.toml", features="mobilevit", out=tmp_path / "run",
                     data_root=built.root, overrides={"params": QUIET_MLP, "smoothing": {"sizes": [1, 3]}})
    m = res.metrics["results"]["va"]
    assert m["report"]["mean_ccc"] > 0.5, m["report"]


def test_clips_cv_by_speaker_learns_class_and_regression(clips, tmp_path):
    built, store = clips
    res = train_task("clips", store, features="egemaps", out=tmp_path / "run", data_root=built.root, cv=4,
                     overrides={"estimator": "mlp", "params": {**QUIET_MLP, "learning_rate": 0.01},
                                "adapter": {"group_column": "speaker"}})
    r = res.metrics["results"]
    assert r["emotion"]["out_of_fold"]["macro_f1"] > 0.8  # chance 1/3
    assert r["emotion"]["out_of_fold"]["accuracy"] > 0.8
    assert r["arousal"]["out_of_fold"]["pearson_r"] > 0.5
    assert len(r["emotion"]["folds"]) == 4 and r["emotion"]["out_of_fold"]["n"] == 36
    assert (tmp_path / "run" / "predictions-emotion.csv").is_file()
    assert (tmp_path / "run" / "model" / "arousal" / "model.json").is_file()


def test_clips_logreg_saved_without_pickle_predicts_the_same(clips, tmp_path):
    built, store = clips
    train_task("clips", store, features="egemaps", out=tmp_path / "run", data_root=built.root,
               overrides={"estimator": "logreg", "targets": ["emotion"], "adapter": {"group_column": "speaker"}})
    files = {p.suffix for p in (tmp_path / "run" / "model").rglob("*") if p.is_file()}
    assert files <= {".json", ".safetensors"}
    first = (tmp_path / "run" / "predictions-emotion.csv").read_text()
    res = predict_run(tmp_path / "run", store, split="all")
    assert res.metrics["emotion"]["macro_f1"] > 0.8
    # The same items predicted by the reloaded model agree with the run's own predictions.
    again = {ln.split(",")[0]: ln.split(",")[3] for ln in (tmp_path / "run" / "predictions-all-emotion.csv").read_text().splitlines()[1:]}
    for ln in first.splitlines()[1:]:
        vid, _, _, pred = ln.split(",")[:4]
        assert again[vid] == pred


# --------------------------------------------------------------------------- refusals


def test_predict_refuses_features_with_another_config_hash(emi, tmp_path):
    built, store = emi
    train_task("emi", store, features="egemaps", out=tmp_path / "run", data_root=built.root, overrides={"params": QUIET_MLP})
    other = tmp_path / "other.zarr"
    st = FeatureStore.open(other, mode="a")
    write_feature(st, "emi", "egemaps", {v: (np.zeros((1, 5), np.float32), np.zeros(1)) for v in built.ids}, None, "video",
                  config="v2")
    with pytest.raises(LineageError, match=r"Feature 'egemaps' .* config hash hash-v2, but run .* config hash hash-v1.*Fix"):
        predict_run(tmp_path / "run", other, split="test")


def test_unknown_feature_lists_available(emi, tmp_path):
    built, store = emi
    with pytest.raises(TrainError, match=r"Unknown feature\(s\) 'wav2vec3'.*Available features: egemaps, hubert, mobilevit"):
        train_task("emi", store, features="hubert,wav2vec3", out=tmp_path / "r", data_root=built.root)


def test_missing_data_root_and_bad_recipe_keys(emi, tmp_path):
    _, store = emi
    with pytest.raises(TrainError, match="No dataset root for task 'emi'.*--data-root"):
        train_task("emi", store, features="hubert", out=tmp_path / "r")
    bad = tmp_path / "bad.toml"
    bad.write_text('task = "emi"\n[blend]\nstpe = 0.1\n')
    with pytest.raises(RecipeError, match=r"Unknown key\(s\) \['stpe'\] in \[blend\].*Valid keys: per_output, step, weights"):
        train_task(None, store, recipe=bad)
    good = tmp_path / "good.toml"
    good.write_text('task = "emi"\nfeatures = ["hubert"]\n')
    with pytest.raises(RecipeError, match="is for task 'emi', not 'bah'"):
        train_task("bah", store, recipe=good)


def test_grouped_split_keeps_groups_apart():
    ids = [f"v{i}" for i in range(20)]
    group_of = {v: f"g{i % 5}" for i, v in enumerate(ids)}
    a, b = grouped_split(ids, group_of, 0.4, seed=0)
    assert set(a) | set(b) == set(ids)
    assert not {group_of[v] for v in a} & {group_of[v] for v in b}
    assert 0.3 <= len(b) / 20 <= 0.6
    with pytest.raises(TrainError, match="1 group"):
        grouped_split(ids[:3], {v: "same" for v in ids}, 0.5, seed=0)


def test_unlabelled_affwild2_frames_include_those_without_a_crop(affwild2):
    """Test videos list the frames to predict from their crops; frames with no crop must be predicted too."""
    from affectstore.datasets import get_adapter
    from affectstore.train.data import feature_infos
    from affectstore.train.recipe import load_recipe
    from affectstore.train.run import build_batch
    from affectstore.train.tasks import get_task

    built, store = affwild2
    st = FeatureStore.open(store, mode="r")
    adapter = get_adapter("affwild2", built.root, task="expr")
    rec = load_recipe(None)
    rec["features"] = ["mobilevit"]
    infos = feature_infos(st, "affwild2", ["mobilevit"])
    val = built.splits["val"]
    batch = build_batch(st, "affwild2", adapter, get_task("expr"), rec, infos, val, labelled=False)
    n_missing = 0
    for v in val:
        rows = batch.groups == v
        crops = adapter.face_crops(v)
        missing = built.missing_crops[v]
        n_missing += len(missing)
        # Every frame of the video (2 s at 30 fps), from the container's frame count, not only up to the last crop.
        assert adapter.frame_count(v) == 60
        np.testing.assert_array_equal(batch.frames[rows], np.arange(1, 61))
        cov = batch.covered["mobilevit"][rows]
        assert cov.sum() == len(crops) and not cov[np.asarray(missing, dtype=int) - 1].any()
    assert n_missing > 0


def test_emi_recipe_is_the_seed_configuration():
    """train/emi.toml: STAT on the face logits, mean on the rest, MLP 64 + sigmoid, weighted Pearson, per-class blend."""
    from affectstore.train.recipe import load_recipe, validate_recipe

    rec = validate_recipe(load_recipe(RECIPES / "emi.toml"))
    stat = [f for f in rec["features"] if rec["pooling"].get(f, rec["pooling"]["default"]) == "stat"]
    assert stat == ["mobilevit-logits"]  # the face model's logits, not its embeddings
    assert rec["pooling"]["default"] == "mean" and set(rec["pooling"]) <= {"default", *rec["features"]}
    p = rec["params"]
    assert (p["hidden_sizes"], p["head"], p["loss"], p["class_counts"]) == ([64], "sigmoid", "pearson", [1, 8, 4, 2, 8, 8])
    assert "output_weights" not in p and p["scoring"] == "mean_pearson_r"  # counts are inverted in code; epochs on the metric
    assert rec["fusion"] == "late" and rec["blend"]["per_output"] and rec["blend"]["weights"] is None
