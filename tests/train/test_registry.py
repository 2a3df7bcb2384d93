"""The estimator registry and protocol; scikit-learn's own estimator checks on the row estimators."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from affectstore.train.registry import (
    BINARY,
    MULTICLASS,
    REGISTRY,
    REGRESSION,
    EstimatorEntry,
    get_entry,
    names_for,
    register,
)
from affectstore.train.row_estimators import LinearClassifier, LinearRegressor, MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPRegressor(), MLPClassifier(), LinearClassifier(), LinearRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_entries_build_per_problem_with_defaults():
    mlp = get_entry("mlp")
    assert type(mlp.build(BINARY)).__name__ == "MLPRegressor" and mlp.build(BINARY).loss == "bce"
    clf = mlp.build(MULTICLASS, {"hidden_sizes": [16], "head": "softmax"}, task_defaults={"loss": "cross_entropy"})
    assert isinstance(clf, MLPClassifier) and clf.hidden_sizes == (16,) and clf.class_weight == "balanced"
    assert mlp.takes_eval_set and mlp.consumes == "rows"
    assert "ridge" in names_for(REGRESSION) and "ridge" not in names_for(BINARY)
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\) \['head'\] for estimator 'mlp' \(MLPClassifier\)"):
        mlp.build(MULTICLASS, {"head": "sigmoid"})


def test_register_twice_and_bad_entries_are_errors():
    with pytest.raises(ValueError, match="Estimator 'mlp' is already registered"):
        register(EstimatorEntry("mlp", {REGRESSION: ("x:Y", {})}))
    with pytest.raises(ValueError, match="problem types must be some of"):
        EstimatorEntry("x", {"ranking": ("x:Y", {})})
    with pytest.raises(ValueError, match="consumes must be 'rows' or 'sequences'"):
        EstimatorEntry("x", {REGRESSION: ("x:Y", {})}, consumes="images")
    assert "x" not in REGISTRY


@pytest.mark.parametrize("name,problem,y", [
    ("mlp", REGRESSION, lambda X: np.stack([X[:, 0], -X[:, 1]], 1)),
    ("mlp", BINARY, lambda X: (X[:, 0] > 0).astype(np.float32)),
    ("mlp", MULTICLASS, lambda X: (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)),
    ("logreg", BINARY, lambda X: (X[:, 0] > 0).astype(int)),
    ("logreg", MULTICLASS, lambda X: (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)),
    ("svc", BINARY, lambda X: (X[:, 0] > 0).astype(int)),
    ("ridge", REGRESSION, lambda X: np.stack([X[:, 0], -X[:, 1]], 1)),
])
def test_protocol_fit_scores_save_load(tmp_path, name, problem, y):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    Y = y(X)
    entry = get_entry(name)
    est = entry.build(problem, {"max_epochs": 30} if name == "mlp" else {})
    assert est.fit(X[:200], Y[:200], eval_set=(X[200:250], Y[200:250])) is est
    s = est.predict_scores(X[250:])
    want = {REGRESSION: (50, 2), BINARY: (50,), MULTICLASS: (50, 3)}[problem]
    assert s.shape == want
    est.save(tmp_path / "m")
    assert not any(p.suffix in (".pkl", ".pt", ".joblib") for p in (tmp_path / "m").iterdir())
    back = entry.estimator_class(problem).load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict_scores(X[250:]), s)


def test_readme_example_estimator(tmp_path):
    """The README's "one file plus one registry line" example, run as written."""
    import re
    import sys
    import types
    from pathlib import Path

    from affectstore.train.pipeline import Batch, TaskModel
    from affectstore.train.tasks import get_task

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("### A new estimator is one file plus one registry line", 1)[1]
    module_src, line = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:2]
    mod = types.ModuleType("affectstore.train.knn")
    exec(compile(module_src, "knn.py", "exec"), mod.__dict__)
    sys.modules["affectstore.train.knn"] = mod
    try:
        exec(line, {"register": register, "EstimatorEntry": EstimatorEntry, "REGRESSION": REGRESSION})
        rng = np.random.default_rng(0)
        ids = [f"v{i}" for i in range(60)]
        X = rng.normal(size=(60, 4)).astype(np.float32)
        y = np.clip(0.5 + 0.2 * X[:, :1].repeat(6, 1), 0, 1)
        batch = Batch("video", ids, np.asarray(ids, dtype=object), {"f": X}, {"f": np.ones(60, bool)}, y, np.ones(60, bool))
        recipe = {"estimator": "knn", "fusion": "late", "params": {}, "blend": {}, "smoothing": {}, "threshold": {}}
        model = TaskModel(get_task("emi"), recipe, ["f"]).fit(batch.subset(ids[:40]), batch.subset(ids[40:]))
        scores, _ = model.predict(batch.subset(ids[40:]))
        assert np.corrcoef(scores[:, 0], y[40:, 0])[0, 1] > 0.5
        model.save(tmp_path / "m")
        again, _ = TaskModel.load(tmp_path / "m", get_task("emi")).predict(batch.subset(ids[40:]))
        np.testing.assert_array_equal(again, scores)
    finally:
        REGISTRY.pop("knn", None)
        sys.modules.pop("affectstore.train.knn", None)
