"""Sequence view, streams and the four sequence models on stores with planted temporal signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectstore.store import FeatureStore
from affectstore.testing.sequences import make_order_store, make_slope_store
from affectstore.train.align import align_to_frames
from affectstore.train.data import feature_infos, load_video_features
from affectstore.train.metrics import mean_ccc, mean_pearson_r, weighted_f1
from affectstore.train.recipe import load_recipe, validate_recipe
from affectstore.train.registry import BINARY, REGRESSION, SEQUENCES, get_entry
from affectstore.train.row_estimators import MLPRegressor
from affectstore.train.sequence import SequenceView, StreamSpec, VideoSource, collate
from affectstore.train.sequence.streams import parse_streams, stream_values

PAPERS = Path(__file__).resolve().parents[2] / "train" / "papers"
TINY = {"lstm-fusion": {"hidden": 16, "fusion_hidden": 16}, "tcn-qam": {"d_model": 16, "hidden": 16, "heads": 2},
        "tcn-xattn": {"hidden": 16, "head_hidden": 16, "heads": 2}, "bah-window": {"hidden": 16, "fusion_hidden": 16}}
FRAME_STREAMS = {"face": {"features": ["face"], "window": 8.0, "samples": 41},
                 "audio": {"features": ["audio"], "window": 8.0, "samples": 81}}


@pytest.fixture(scope="module")
def order(tmp_path_factory):
    """Video level: 240 videos, 2 outputs planted in the rank of the last frame; 3 videos without faces."""
    path = tmp_path_factory.mktemp("order") / "s.zarr"
    built = make_order_store(path, n_videos=240)
    st = FeatureStore.open(path, mode="r")
    view = SequenceView(VideoSource(st, "emi", feature_infos(st, "emi", ["audio", "face", "text"]), built.ids), built.ids)
    y = np.stack([built.labels[v] for v in built.ids])
    return st, built, view, y


@pytest.fixture(scope="module")
def slope(tmp_path_factory):
    """Frame level: 24 videos x 100 label frames; the label is the slope of the features around the frame."""
    out = {}
    for kind in ("binary", "continuous"):
        path = tmp_path_factory.mktemp(kind) / "s.zarr"
        built = make_slope_store(path, continuous=kind == "continuous", seed=3)
        st = FeatureStore.open(path, mode="r")
        vids = np.concatenate([[v] * len(built.frame_times[v]) for v in built.ids]).astype(object)
        times = np.concatenate([built.frame_times[v] for v in built.ids])
        y = np.concatenate([built.labels[v] for v in built.ids])
        view = SequenceView(VideoSource(st, "bah", feature_infos(st, "bah", ["audio", "face"]), built.ids), vids, times)
        out[kind] = (st, built, view, y)
    return out


def _splits(videos, ids):
    pos = {v: i for i, v in enumerate(ids)}
    k = np.array([pos[v] for v in videos])
    n = len(ids)
    return np.flatnonzero(k < 2 * n // 3), np.flatnonzero((k >= 2 * n // 3) & (k < 5 * n // 6)), np.flatnonzero(k >= 5 * n // 6)


def _build(name, problem, **params):
    base = {"learning_rate": 3e-3, "progress": False, "arch": TINY[name], "patience": None}
    return get_entry(name).build(problem, {**base, **params})


# --------------------------------------------------------------------------- the view


def test_view_gives_each_videos_ragged_arrays_unpooled(order):
    st, built, view, _ = order
    assert view.level == "video" and len(view) == 240 and view.features == ["audio", "face", "text"]
    a = view.item(5)
    ref = st.read_video("emi", "audio", built.ids[5])
    np.testing.assert_array_equal(a["audio"][0], ref.values)
    np.testing.assert_array_equal(a["audio"][1], ref.times)
    assert "face" not in view.item(0)  # the first 3 videos have no face
    assert view.has("face").sum() == 237 and view.covered.all()
    sub = view[np.array([3, 7])]
    assert list(sub.videos) == [built.ids[3], built.ids[7]] and sub.source is view.source


def test_view_streams_chunks_under_a_memory_budget(order):
    st, built, _, _ = order
    source = VideoSource(st, "emi", feature_infos(st, "emi", ["audio"]), built.ids, cache_bytes=20_000, chunk_videos=16)
    view = SequenceView(source, built.ids)
    seen = []
    for idx in view.batches(np.arange(len(view)), 8, np.random.default_rng(0)):
        seen += idx.tolist()
        collate(view, idx, {"audio": StreamSpec(("audio",))})
        assert sum(source._bytes.values()) <= 20_000 + max(source._bytes.values())
    assert source.fits is False
    assert sorted(seen) == list(range(240))
    assert source.reads == source.n_chunks  # each chunk read once per epoch, thanks to the chunk-wise order
    big = VideoSource(st, "emi", feature_infos(st, "emi", ["audio"]), built.ids, chunk_videos=16)
    SequenceView(big, built.ids).item(0)
    assert big.fits is True and len(big._cache) == big.n_chunks  # held whole after the first read


def test_stream_windows_samples_joins_and_markers():
    t = np.arange(0, 10, 0.5)
    arrays = {"a": (np.arange(20, dtype=np.float32)[:, None], t), "b": (np.full((5, 2), 7, np.float32), np.arange(5) * 2.0)}
    dims = {"a": 1, "b": 2}
    win = stream_values(StreamSpec(("a",), window=2.0), arrays, dims, target=5.0)
    np.testing.assert_array_equal(win[:, 0], [8, 9, 10, 11, 12])  # samples within +-1 s of 5 s
    grid = stream_values(StreamSpec(("a",), window=4.0, samples=3), arrays, dims, target=0.0)
    np.testing.assert_array_equal(grid[:, 0], [0, 0, 4])  # before the video: the edge sample
    joined = stream_values(StreamSpec(("a", "b"), max_frames=4), arrays, dims, target=None)
    assert joined.shape == (4, 3) and (joined[:, 1:] == 7).all()
    marked = stream_values(StreamSpec(("a",), window=2.0, marker=True), arrays, dims, target=5.0)
    assert marked.shape == (6, 3) and marked[:, 2].tolist() == [0, 0, 1, 0, 0, 0]
    np.testing.assert_allclose(marked[[0, 1, 3], 1], [-1.0, -0.5, 0.0])
    pooled = stream_values(StreamSpec(("a",), pooled=True), arrays, dims, None)
    assert pooled.shape == (1, 1) and pooled[0, 0] == pytest.approx(9.5)
    assert stream_values(StreamSpec(("c",)), arrays, {"c": 4}, None).shape == (0, 4)  # missing modality: length 0
    with pytest.raises(ValueError, match=r"stream 'x' names feature\(s\) \['zz'\] that are not among"):
        parse_streams({"x": {"features": ["zz"]}}, ["a"])
    with pytest.raises(ValueError, match=r"Unknown key\(s\) \['size'\] in stream 'x'"):
        parse_streams({"x": {"features": ["a"], "size": 3}}, ["a"])


# --------------------------------------------------------------------------- learning planted temporal signal


def _stat_mlp(st, built, tr, va, te, y):
    infos = feature_infos(st, "emi", ["audio"])
    X, _ = load_video_features(st, "emi", infos["audio"], built.ids, "stat")
    m = MLPRegressor(max_epochs=200).fit(X[tr], y[tr], eval_set=(X[va], y[va]))
    return mean_pearson_r(y[te], m.predict(X[te]))


@pytest.mark.slow
@pytest.mark.parametrize("name,epochs,floor", [("lstm-fusion", 30, 0.7), ("tcn-qam", 25, 0.4)])
def test_video_models_learn_order_signal_that_stat_pooling_misses(order, name, epochs, floor):
    st, built, view, y = order
    tr, va, te = _splits(view.videos, built.ids)
    est = _build(name, REGRESSION, max_epochs=epochs, batch_size=8, ema=None, clip=[0.0, 1.0])
    est.fit(view[tr], y[tr], eval_set=(view[va], y[va]))
    seq = mean_pearson_r(y[te], est.predict_scores(view[te]))
    base = _stat_mlp(st, built, tr, va, te, y)
    assert base < 0.35  # the multiset of each column does not depend on the label
    assert seq > floor and seq > base + 0.2
    assert len(est.history_) == epochs and {"train_loss", "val_score", "lr"} <= set(est.history_[0])


def _frame_rows(st, built, view):
    X = np.zeros((len(view), 8), np.float32)
    for v in built.ids:
        r = np.flatnonzero(view.videos == v)
        for j, f in enumerate(["audio", "face"]):
            a = st.read_video("bah", f, v)
            X[r, 4 * j:4 * j + 4] = align_to_frames(a.values, a.times, view.times[r])
    return X


@pytest.mark.slow
def test_bah_window_learns_slope_that_aligned_rows_miss(slope):
    st, built, view, y = slope["binary"]
    tr, va, te = _splits(view.videos, built.ids)
    est = _build("bah-window", BINARY, max_epochs=6, batch_size=32, epoch_size=800, streams=FRAME_STREAMS, eval_stride=3)
    est.fit(view[tr], y[tr], eval_set=(view[va], y[va]))
    p = est.predict_scores(view[te])
    assert p.shape == (len(te),) and ((p >= 0) & (p <= 1)).all()
    seq = weighted_f1(y[te].astype(int), (p >= 0.5).astype(int))
    X = _frame_rows(st, built, view)
    m = MLPRegressor(head="sigmoid", loss="bce", max_epochs=100).fit(X[tr], y[tr], eval_set=(X[va], y[va]))
    base = weighted_f1(y[te].astype(int), (m.predict(X[te]) >= 0.5).astype(int))
    assert seq > 0.65 and seq > base + 0.05
    assert est.homogeneous_rows_ is not None and len(est.homogeneous_rows_) < len(tr)  # boundaries left out


@pytest.mark.slow
def test_tcn_xattn_learns_slope_valence_that_aligned_rows_miss(slope):
    st, built, view, y = slope["continuous"]
    tr, va, te = _splits(view.videos, built.ids)
    Y = y[:, None]
    est = _build("tcn-xattn", REGRESSION, max_epochs=12, batch_size=32, epoch_size=800, streams=FRAME_STREAMS)
    est.fit(view[tr], Y[tr], eval_set=(view[va], Y[va]))
    assert est.resolved_arch_ == {"query": "face"}
    seq = mean_ccc(Y[te], est.predict_scores(view[te]))
    X = _frame_rows(st, built, view)
    m = MLPRegressor(max_epochs=100).fit(X[tr], Y[tr], eval_set=(X[va], Y[va]))
    base = mean_ccc(Y[te], m.predict(X[te]))
    assert seq > 0.5 and seq > base + 0.2


# --------------------------------------------------------------------------- reproducible, saved without pickle


def _case(name, order, slope):
    if name in ("lstm-fusion", "tcn-qam"):
        _, built, view, y = order
        return view[np.arange(40)], y[:40], view[np.arange(40, 60)], y[40:60], REGRESSION, {}
    kind = "binary" if name == "bah-window" else "continuous"
    _, built, view, y = slope[kind]
    rows = np.flatnonzero(np.isin(view.videos, built.ids[:3]))
    Y = y if kind == "binary" else y[:, None]
    problem = BINARY if kind == "binary" else REGRESSION
    return view[rows[:150]], Y[rows[:150]], view[rows[150:]], Y[rows[150:]], problem, {"streams": FRAME_STREAMS}


@pytest.mark.parametrize("name", ["lstm-fusion", "tcn-qam", "tcn-xattn", "bah-window"])
def test_same_seed_same_result_and_save_load_round_trip(order, slope, tmp_path, name):
    Xtr, ytr, Xv, yv, problem, extra = _case(name, order, slope)
    assert get_entry(name).consumes == SEQUENCES
    runs = []
    for seed in (7, 7, 8):
        est = _build(name, problem, max_epochs=2, batch_size=16, random_state=seed, dropout=0.2, **extra)
        runs.append((est.fit(Xtr, ytr, eval_set=(Xv, yv)), est.predict_scores(Xv)))
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.allclose(runs[0][1], runs[2][1])
    est, pred = runs[0]
    assert np.isfinite(pred).all()  # videos without faces included: the missing token stands in
    folder = est.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    back = type(est).load(folder)
    np.testing.assert_array_equal(back.predict_scores(Xv), pred)
    assert back.history_ == est.history_ and back.best_epoch_ == est.best_epoch_


def test_bad_arch_and_device_are_clear_errors(order):
    _, _, view, y = order
    with pytest.raises(ValueError, match=r"Unknown arch key\(s\) \['width'\] for LSTMFusion. Valid keys:"):
        get_entry("lstm-fusion").build(REGRESSION, {"arch": {"width": 3}, "max_epochs": 1, "progress": False}).fit(view, y)
    with pytest.raises(ValueError, match="The 'schedule' parameter of TCNQAM must be a str among"):
        get_entry("tcn-qam").build(REGRESSION, {"schedule": "linear"})


@pytest.mark.parametrize("recipe", sorted(p.name for p in PAPERS.glob("*.toml") if not p.name.startswith("savchenko")))
def test_paper_recipes_validate_and_build(recipe):
    rec = validate_recipe(load_recipe(PAPERS / recipe))
    text = (PAPERS / recipe).read_text(encoding="utf-8")
    assert text.startswith("# ") and "affect train" in text  # header comment: the paper and how to run it
    entry = get_entry(rec["estimator"])
    assert entry.consumes == SEQUENCES
    from affectstore.train.tasks import get_task

    est = entry.build(get_task(rec["task"]).problem, rec["params"])
    specs = parse_streams(est.streams, rec["features"])
    assert {f for s in specs.values() for f in s.features} == set(rec["features"])


# --------------------------------------------------------------------------- through affect train


@pytest.mark.slow
def test_train_emi_with_the_paper_recipe_beats_stat_mlp(tmp_path):
    from affectstore.testing.sequences import write_emi_labels
    from affectstore.train.run import predict_run, train_task

    y = write_emi_labels(tmp_path / "root", 120, 60)
    make_order_store(tmp_path / "s.zarr", n_outputs=6, dim=8, labels=y)
    small = {"learning_rate": 5e-3, "max_epochs": 25, "batch_size": 8, "progress": False, "patience": None,
             "arch": {"hidden": 16, "fusion_hidden": 16},
             "streams": {"audio": {"features": ["audio"]}, "vision": {"features": ["face"], "max_frames": 400},
                         "text": {"features": ["text"], "pooled": True}}}
    feats = ["audio", "face", "text"]
    seq = train_task("emi", tmp_path / "s.zarr", recipe=PAPERS / "hallmen2025-emi.toml", data_root=tmp_path / "root",
                     out=tmp_path / "seq", overrides={"features": feats, "params": small})
    stat = train_task("emi", tmp_path / "s.zarr", features=feats, data_root=tmp_path / "root", out=tmp_path / "stat",
                      overrides={"estimator": "mlp", "pooling": {"default": "stat", "text": "mean"},
                                 "params": {"max_epochs": 100, "patience": 10}})
    r_seq = seq.metrics["results"]["emi"]["report"]["mean_pearson_r"]
    r_stat = stat.metrics["results"]["emi"]["report"]["mean_pearson_r"]
    assert r_seq > 0.45 and r_seq > r_stat + 0.2
    choices = seq.metrics["results"]["emi"]["choices"]
    assert len(choices["learning_curves"]["sequence"]) == 25  # one entry per epoch, for the report
    again = predict_run(tmp_path / "seq", tmp_path / "s.zarr", "valid", out=tmp_path / "again")
    assert again.metrics["emi"]["n"] == 60


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_encoder_on_padded_batches_matches_each_item_alone(bidirectional):
    import torch

    from affectstore.train.sequence.layers import LSTMEncoder

    torch.manual_seed(0)
    enc = LSTMEncoder(3, 5, layers=2, bidirectional=bidirectional).eval()
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(3, 6, 3)
    x[1, 2:] = 99.0  # padding must not leak into real steps
    x[2, 4:] = -99.0
    steps, last = enc(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        s1, l1 = enc(x[i:i + 1, :n], lengths[i:i + 1])
        torch.testing.assert_close(last[i], l1[0])
        torch.testing.assert_close(steps[i, :n], s1[0])
        assert (steps[i, n:] == 0).all()
