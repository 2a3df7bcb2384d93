"""Every recipe under train/papers/ runs end to end on a generated dataset with a tiny planted store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from affectstore.datasets import AFFECTNET_TO_EXPR
from affectstore.testing.datasets import make_affwild2_dataset, make_bah_dataset, make_emi_dataset
from affectstore.testing.stores import Planted, planted_store
from affectstore.train.errors import RecipeError
from affectstore.train.recipe import load_recipe, validate_recipe
from affectstore.train.run import train_task

PAPERS = Path(__file__).resolve().parents[2] / "train" / "papers"
FAST = {"max_epochs": 30, "patience": 5, "batch_size": 256, "hidden_sizes": [16]}


def _header(name: str) -> str:
    return "".join(line for line in (PAPERS / name).read_text().splitlines(keepends=True) if line.startswith("#"))


def test_savchenko2025_emi(tmp_path):
    built = make_emi_dataset(tmp_path / "data", n_train=24, n_valid=16, n_test=1, n_faces=3)
    store = planted_store(tmp_path / "store.zarr", "emi", built, {
        "mobilevit-logits": Planted(dim=10, rate=6.0, face=True, noise=1.0),
        "hubert": Planted(dim=12, rate=50.0, noise=1.0),
        "gigachat": Planted(dim=6, rate=None, kind="video", noise=1.0),
    }, duration=1.0)
    res = train_task("emi", store, recipe=PAPERS / "savchenko2025-emi.toml", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": FAST})
    m = res.metrics["results"]["emi"]
    assert m["optimistic"] and m["report"]["n"] == 16
    assert m["report"]["mean_pearson_r"] > 0.4, m["report"]
    assert np.asarray(m["choices"]["blend_weights"]).shape == (6, 3)
    model = json.loads((tmp_path / "run" / "model" / "emi" / "model.json").read_text())
    cfg = json.loads((tmp_path / "run" / "model" / "emi" / model["estimators"]["hubert"]["folder"] / "config.json").read_text())
    np.testing.assert_allclose(cfg["state"]["output_weights_"], [0.471, 0.059, 0.118, 0.235, 0.059, 0.059], atol=5e-4)
    assert "0.4460" in _header("savchenko2025-emi.toml")


def test_savchenko2025_bah(tmp_path):
    built = make_bah_dataset(tmp_path / "data", n_train=6, n_val=4, duration=2.0)
    # One split-file label contradicts the frame annotations: the filter must learn from the frames.
    split = built.root / "default-split" / "train.txt"
    lines = split.read_text().splitlines()
    vid, label, text = lines[0].split(",", 2)
    lines[0] = f"{vid},{1 - int(label)},{text}"
    split.write_text("\n".join(lines) + "\n")
    store = planted_store(tmp_path / "store.zarr", "bah", built, {
        "mobilefacenet-logits": Planted(dim=10, rate=24.0, face=True, task="bah", noise=0.6),
        "roberta-goemotions": Planted(dim=8, rate=None, noise=0.3),  # carries the video label
    }, duration=2.0, fps=24.0)
    res = train_task("bah", store, recipe=PAPERS / "savchenko2025-bah.toml", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": {**FAST, "learning_rate": 0.01}})
    m = res.metrics["results"]["bah"]
    assert m["optimistic"] and m["report"]["weighted_f1"] > 0.8, m["report"]
    ch = m["choices"]
    assert ch["smoothing"]["edge"] == "truncate" and "threshold" in ch and "video_filter" in ch
    assert res.metrics["results"]["bah"]["choices"]["blend_features"] == ["early"]
    check = m["video_filter_labels"]
    assert check["n_disagree"] == 1 and check["n_compared"] == 10
    assert check["disagreements"] == [{"video": vid, "from_frames": int(label), "split_file": 1 - int(label)}]
    assert "73.73" in _header("savchenko2025-bah.toml")


def test_savchenko2025_expr(tmp_path):
    built = make_affwild2_dataset(tmp_path / "data", n_train=4, n_val=3, duration=2.0, fps=30.0)
    store = planted_store(tmp_path / "store.zarr", "affwild2", built, {
        "enet-b0": Planted(dim=8, rate=30.0, face=True, task="expr", noise=0.5),
        "wav2vec2": Planted(dim=4, rate=50.0, gain=0.0),
        "enet-b0-logits": Planted(dim=8, rate=30.0, face=True, task="expr", gain=6.0, noise=0.5, order=AFFECTNET_TO_EXPR),
    }, duration=2.0, fps=30.0)
    res = train_task("expr", store, recipe=PAPERS / "savchenko2025-expr.toml", out=tmp_path / "run", data_root=built.root,
                     overrides={"params": FAST, "smoothing": {"sizes": [1, 3]}})
    m = res.metrics["results"]["expr"]
    assert m["optimistic"] and m["report"]["expr_macro_f1"] > 0.6, m["report"]  # chance about 1/8
    assert "override" in m["choices"]
    rec = load_recipe(PAPERS / "savchenko2025-expr.toml")
    assert rec["override"]["order"] == list(AFFECTNET_TO_EXPR) == [5, 0, 2, 3, 4, 6, 7, 1]
    assert "44.59" in _header("savchenko2025-expr.toml")


def test_every_paper_recipe_validates_and_loads_by_bare_name():
    names = sorted(p.name for p in PAPERS.glob("*.toml"))
    assert names == ["hallmen2024-emi.toml", "hallmen2025-bah.toml", "hallmen2025-emi.toml", "savchenko2025-bah.toml",
                     "savchenko2025-emi.toml", "savchenko2025-expr.toml", "yu2025-emi.toml", "yu2025-va.toml"]
    for name in names:
        rec = validate_recipe(load_recipe(PAPERS / name))
        assert load_recipe(name.removesuffix(".toml")) == rec  # found in train/papers by bare name
        if name.startswith("savchenko"):
            assert rec["name"] == name.removesuffix(".toml")
            assert rec["protocol"]["mode"] == "paper" and "table" in _header(name).lower()
