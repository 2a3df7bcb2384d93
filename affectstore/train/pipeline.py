"""One task's fitted model: per-feature estimators, blend and post-processing, saved without pickle.

`Batch` holds the rows of some videos (one row per video at video level, one per
label frame at frame level). `TaskModel.fit(fit_batch, tune_batch)` trains and then
chooses everything else on the tuning rows only, in this order:

1. one estimator per feature (``fusion="late"``) or one on the concatenation
   (``"early"``), trained on rows that have the feature; MLP epochs are chosen by
   early stopping on the tuning rows;
2. per-feature scores; rows a feature does not cover are interpolated from
   neighbouring frames of the same video (tail padded), or take the training prior
   when the video has no covered row (video level: the prior);
3. blend weights (searched on the simplex, globally or per output; or fixed by the recipe);
4. frame level: smoothing-kernel size (sweep, size 1 = none);
5. binary: decision threshold; video filter (kept only if it helps on the tuning rows);
6. multiclass frame level with an ``override`` feature: confidence-override threshold.

``save(folder)`` writes ``model.json`` and one folder per estimator (MLP:
safetensors + JSON; scikit-learn linear models: `ScaledLinear` safetensors + JSON).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import softmax

from affectstore.train.align import fill_missing
from affectstore.train.errors import TrainError
from affectstore.train.filters import ConfidenceOverride, VideoFilter, confidence_override, zero_negative_videos
from affectstore.train.fusion import BlendSearch, ThresholdSearch, apply_blend
from affectstore.train.linear import ScaledLinear
from affectstore.train.metrics import get_metric
from affectstore.train.mlp import MLPEstimator
from affectstore.train.registry import SEQUENCES, get_entry, load_estimator
from affectstore.train.smoothing import TemporalSmoother, smooth_by_group
from affectstore.train.tasks import BINARY, MULTICLASS, MULTILABEL, REGRESSION, TaskSpec

logger = logging.getLogger(__name__)

FORMAT = "affectstore.TaskModel"
FORMAT_VERSION = 2
EARLY = "early"
SEQUENCE = "sequence"  # the one model of a sequence estimator, which takes every feature


@dataclass
class Batch:
    """Rows of some videos. ``groups[r]`` is the video of row r; frame rows are in time order per video.

    ``X``/``covered``: per feature (R, D) values and (R,) availability. ``y``: encoded
    targets ((R, K) float for regression, (R,) int for classes) or None; ``valid``: rows
    with a label. ``frames``: frame numbers (frame level). ``video_ids``: the videos, in
    order; ``video_X``/``video_present``/``video_y``: per-video vectors for the video filter.
    ``sequences``: the `affectstore.train.sequence.SequenceView` of the same rows (one item
    per row: a video, or a window around a frame), read from the store without pooling;
    set when the recipe's estimator consumes sequences.
    """

    level: str
    video_ids: list[str]
    groups: np.ndarray
    X: dict[str, np.ndarray]
    covered: dict[str, np.ndarray]
    y: np.ndarray | None
    valid: np.ndarray
    frames: np.ndarray | None = None
    video_X: dict[str, np.ndarray] = field(default_factory=dict)
    video_present: dict[str, np.ndarray] = field(default_factory=dict)
    video_y: np.ndarray | None = None
    sequences: object | None = None  # SequenceView: ragged per-video sequences for sequence estimators

    def __len__(self) -> int:
        return len(self.groups)

    def subset(self, video_ids) -> Batch:
        """The rows of ``video_ids`` (kept in this batch's order)."""
        keep_v = np.isin(np.asarray(self.video_ids, dtype=object), np.asarray(list(video_ids), dtype=object))
        rows = np.isin(self.groups, np.asarray(list(video_ids), dtype=object))
        return Batch(
            self.level,
            [v for v, k in zip(self.video_ids, keep_v) if k],
            self.groups[rows],
            {k: v[rows] for k, v in self.X.items()},
            {k: v[rows] for k, v in self.covered.items()},
            None if self.y is None else self.y[rows],
            self.valid[rows],
            None if self.frames is None else self.frames[rows],
            {k: v[keep_v] for k, v in self.video_X.items()},
            {k: v[keep_v] for k, v in self.video_present.items()},
            None if self.video_y is None else self.video_y[keep_v],
            None if self.sequences is None else self.sequences[np.flatnonzero(rows)],
        )


class TaskModel:
    """Estimators + blend + post-processing for one task spec; see the module docstring."""

    def __init__(self, spec: TaskSpec, recipe: dict, features: list[str]):
        self.spec = spec
        self.recipe = recipe
        self.features = list(features)
        self.estimators_: dict[str, object] = {}
        self.choices_: dict = {}

    # ------------------------------------------------------------------ helpers
    @property
    def n_classes(self) -> int:
        return len(self.spec.outputs)

    @property
    def entry(self):
        """The registry entry of the recipe's estimator."""
        try:
            return get_entry(self.recipe["estimator"])
        except ValueError as err:
            raise TrainError(str(err)) from None

    def _model_names(self) -> list[str]:
        if self.entry.consumes == SEQUENCES:
            return [SEQUENCE]
        return [EARLY] if self.recipe["fusion"] == EARLY else list(self.features)

    def _inputs(self, batch: Batch, name: str):
        """(X, covered) of one model: a feature, the concatenation of all (early fusion), or the sequence view."""
        if name == SEQUENCE:
            if batch.sequences is None:
                raise TrainError(
                    f"Estimator {self.recipe['estimator']!r} consumes sequences, but this batch holds rows only. "
                    "Build it with affectstore.train.sequence.build_sequence_batch (affect train does)."
                )
            return batch.sequences, batch.sequences.covered
        if name != EARLY:
            return batch.X[name], batch.covered[name]
        cov = np.logical_and.reduce([batch.covered[f] for f in self.features])
        blocks = []
        for f in self.features:
            x = batch.X[f].astype(np.float32, copy=True)
            fill = getattr(self, "fill_", {}).get(f)
            if fill is not None:
                x[~batch.covered[f]] = fill  # absent blocks take the training mean
            blocks.append(x)
        return np.concatenate(blocks, axis=1), cov

    def _make_estimator(self):
        """An unfitted estimator from the registry: problem defaults < the task's defaults < recipe params."""
        entry = self.entry
        params = dict(self.recipe.get("params") or {})
        task_defaults = dict(getattr(self.spec, entry.task_params, None) or {}) if entry.task_params else {}
        try:
            cls = entry.estimator_class(self.spec.problem)
            if self.spec.problem == MULTICLASS and "classes" in cls().get_params():
                params.setdefault("classes", list(range(self.n_classes)))  # every class gets an output column
            if isinstance(params.get("class_weight"), list) and len(params["class_weight"]) != self.n_classes:
                raise ValueError(
                    f"params.class_weight has {len(params['class_weight'])} weights; task {self.spec.name} has "
                    f"{self.n_classes} classes {list(self.spec.outputs)}. Give one weight per class or 'balanced'."
                )
            return entry.build(self.spec.problem, params, task_defaults)
        except (TypeError, ValueError) as err:
            raise TrainError(f"Bad parameters for estimator {entry.name!r} on task {self.spec.name}: {err}") from None

    def _fit_target(self, y: np.ndarray) -> np.ndarray:
        if self.spec.problem in (BINARY, MULTILABEL):
            return y.astype(np.float32)
        return y

    def _raw_scores(self, est, X) -> np.ndarray:
        """(R,) probabilities (binary), (R, C) probabilities (multiclass), (R, K) values (regression)."""
        p = np.asarray(est.predict_scores(X), dtype=np.float64)
        if self.spec.problem == MULTICLASS:
            if p.ndim == 1:  # a two-class fit gives the second class's probability only
                p = np.column_stack([1.0 - p, p])
            classes = np.asarray(est.classes_).astype(int)  # a class absent from training has probability 0
            full = np.zeros((len(X), self.n_classes))
            full[:, classes] = p
            return full
        if self.spec.problem == BINARY:
            return p.reshape(-1)
        return p.reshape(len(X), -1)

    def _prior_row(self) -> np.ndarray:
        return np.asarray(self.prior_, dtype=np.float64)

    def _fill(self, scores: np.ndarray, covered: np.ndarray, batch: Batch) -> np.ndarray:
        """Scores of uncovered rows: neighbours within the video (frame level) or the prior."""
        s = scores if scores.ndim == 2 else scores[:, None]
        s = s.copy()
        s[~covered] = np.nan
        prior = self._prior_row().reshape(1, -1)
        if batch.level == "frame":
            order = np.argsort(batch.groups, kind="stable")
            g = batch.groups[order]
            _, starts = np.unique(g, return_index=True)
            bounds = np.append(starts, len(g))
            for a, b in zip(bounds[:-1], bounds[1:]):
                rows = order[a:b]
                miss = ~covered[rows]
                if not miss.any():
                    continue
                if miss.all():
                    s[rows] = prior
                else:
                    s[rows] = fill_missing(s[rows], miss)
        else:
            s[~covered] = prior
        return s if scores.ndim == 2 else s[:, 0]

    def modality_scores(self, batch: Batch) -> dict[str, np.ndarray]:
        """Each model's scores on every row of ``batch`` (uncovered rows filled)."""
        out = {}
        for name, est in self.estimators_.items():
            X, cov = self._inputs(batch, name)
            scores = np.zeros((len(X),) + self._score_shape(), dtype=np.float64)
            if cov.any():
                scores[cov] = self._raw_scores(est, X[cov]).reshape((int(cov.sum()),) + self._score_shape())
            out[name] = self._fill(scores, cov, batch)
        return out

    def _score_shape(self) -> tuple[int, ...]:
        if self.spec.problem == BINARY:
            return ()
        if self.spec.problem == MULTICLASS:
            return (self.n_classes,)
        return (len(self.spec.outputs),)

    def _blend(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        return apply_blend(self.choices_["blend_weights"], [scores[n] for n in self.estimators_])

    def _decide(self, scores: np.ndarray) -> np.ndarray:
        if self.spec.problem == REGRESSION:
            return scores
        if self.spec.problem == MULTICLASS:
            return scores.argmax(axis=1)
        if self.spec.problem == MULTILABEL:
            return (scores >= np.asarray(self.choices_.get("thresholds", 0.5))).astype(np.int64)
        return (scores >= self.choices_.get("threshold", 0.5)).astype(np.int64)

    def _override_proba(self, batch: Batch) -> np.ndarray:
        o = self.recipe["override"]
        x = batch.X[o["feature"]][:, list(o["columns"])].astype(np.float64)
        if o.get("order") is not None:
            x = x[:, list(o["order"])]
        p = softmax(x, axis=1) if o.get("softmax", True) else x
        p[~batch.covered[o["feature"]]] = 0.0  # no face: the head never fires
        return p

    # ------------------------------------------------------------------ fitting
    def fit(self, fit: Batch, tune: Batch) -> TaskModel:
        """Train on ``fit``; choose epochs, weights, kernel, thresholds on ``tune``."""
        spec = self.spec
        metric = get_metric(spec.metric_fn())
        if fit.y is None or tune.y is None:
            raise TrainError("Fitting needs labelled fit and tuning rows.")
        ytr, ytu = fit.y, tune.y
        # Prior: what a row with no features gets.
        yv = ytr[fit.valid]
        if spec.problem in (REGRESSION, MULTILABEL):
            self.prior_ = yv.reshape(len(yv), -1).mean(axis=0).tolist()
        elif spec.problem == BINARY:
            self.prior_ = [float(yv.mean())]
        else:
            self.prior_ = (np.bincount(yv.astype(int), minlength=self.n_classes) / max(len(yv), 1)).tolist()
        self.fill_ = {f: np.nanmean(np.where(fit.covered[f][:, None], fit.X[f], np.nan), axis=0).astype(np.float32)
                      if fit.covered[f].any() else np.zeros(fit.X[f].shape[1], np.float32)
                      for f in self.features if f in fit.X}  # sequence batches hold no rows
        for name in self._model_names():
            X, cov = self._inputs(fit, name)
            Xt, covt = self._inputs(tune, name)
            rows, trows = cov & fit.valid, covt & tune.valid
            if rows.sum() < 2:
                raise TrainError(f"Model {name!r} has {int(rows.sum())} labelled training rows with features; need 2 or more.")
            est = self._make_estimator()
            y_fit = self._fit_target(ytr[rows])
            if self.entry.takes_eval_set and trows.sum() >= 2:
                est.fit(X[rows], y_fit, eval_set=(Xt[trows], self._fit_target(ytu[trows])))
            else:
                est.fit(X[rows], y_fit)
            self.estimators_[name] = est
            if getattr(est, "history_", None) is not None:  # learning curves, for the report
                self.choices_.setdefault("learning_curves", {})[name] = est.history_
            logger.debug("Fitted %s on %d rows.", name, int(rows.sum()))

        # Everything below is chosen on the tuning rows only.
        scores = self.modality_scores(tune)
        v = tune.valid
        yt = ytu[v]
        names = list(self.estimators_)
        fixed = self.recipe["blend"].get("weights")
        decision = spec.decision
        if len(names) == 1:
            self.choices_["blend_weights"] = [1.0]
        elif fixed is not None:
            w = np.asarray(fixed, dtype=np.float64)
            self.choices_["blend_weights"] = (w / w.sum()).tolist()
            self.choices_["blend_fixed"] = True
        else:
            per_output = bool(self.recipe["blend"].get("per_output")) and spec.problem == REGRESSION
            bs = BlendSearch(
                metric=spec.blend_metric if per_output else spec.metric_fn(),
                step=float(self.recipe["blend"].get("step", 0.05)), per_output=per_output, decision=decision,
            ).fit([scores[n][v] for n in names], yt)
            self.choices_["blend_weights"] = np.asarray(bs.weights_).tolist()
            self.choices_["blend_score"] = float(bs.score_)
        self.choices_["blend_features"] = names
        blended = self._blend(scores)

        if tune.level == "frame" and self.recipe["smoothing"].get("enabled", True):
            sm = TemporalSmoother(method=self.recipe["smoothing"].get("method", "box"),
                                  sizes=[int(s) for s in self.recipe["smoothing"].get("sizes", [1])],
                                  metric=spec.metric_fn(), decision=decision,
                                  edge=self.recipe["smoothing"].get("edge", "nearest")).fit(blended, yt, tune.groups, scored=v)
            self.choices_["smoothing"] = {"method": sm.method, "edge": sm.edge, "size": int(sm.size_),
                                          "curve": {str(k): c for k, c in sm.curve_.items()}}
            blended = sm.transform(blended, tune.groups)

        if spec.problem == BINARY and self.recipe["threshold"].get("enabled", True):
            ts = ThresholdSearch(metric=spec.metric_fn(), thresholds=self.recipe["threshold"].get("thresholds")).fit(blended[v], yt)
            self.choices_["threshold"] = float(ts.threshold_)
            self.choices_["threshold_curve"] = {"thresholds": ts.thresholds_.tolist(), "scores": ts.scores_.tolist()}
        if spec.problem == MULTILABEL and self.recipe["threshold"].get("enabled", True):
            # One threshold per label (action unit), each maximising that label's binary F1.
            from affectstore.train.metrics import macro_f1

            per = [ThresholdSearch(metric=lambda t, p: macro_f1(t, p, labels=[1]),
                                   thresholds=self.recipe["threshold"].get("thresholds")).fit(blended[v, k], yt[:, k])
                   for k in range(blended.shape[1])]
            self.choices_["thresholds"] = [float(ts.threshold_) for ts in per]
        labels = self._decide(blended)

        vf = self.recipe.get("video_filter")
        if vf is not None and spec.problem == BINARY:
            name = vf["feature"]
            pres = fit.video_present[name] & (np.isfinite(fit.video_y) if fit.video_y is not None else False)
            if fit.video_y is None or pres.sum() < 2:
                raise TrainError(f"The video filter on {name!r} needs video labels and features of 2+ training videos.")
            filt = VideoFilter(ScaledLinear(vf.get("kind", "svc"), vf.get("params") or {"class_weight": "balanced"}))
            filt.fit(fit.video_X[name][pres], fit.video_y[pres].astype(int))
            self.video_filter_ = filt.estimator_
            filtered = self._apply_video_filter(labels, tune)
            before, after = float(metric(yt, labels[v])), float(metric(yt, filtered[v]))
            self.choices_["video_filter"] = {"use": bool(after > before), "score_without": before, "score_with": after}
            if after > before:
                labels = filtered

        ov = self.recipe.get("override")
        if ov is not None and spec.problem == MULTICLASS and tune.level == "frame":
            co = ConfidenceOverride(metric=spec.metric_fn(), thresholds=ov.get("thresholds"))
            co.fit(labels[v], self._override_proba(tune)[v], yt)
            self.choices_["override"] = {"threshold": float(co.threshold_), "thresholds": co.thresholds_.tolist(),
                                         "scores": co.scores_.tolist()}
        return self

    def _apply_video_filter(self, labels: np.ndarray, batch: Batch) -> np.ndarray:
        name = self.recipe["video_filter"]["feature"]
        pres = batch.video_present[name]
        ids = np.asarray(batch.video_ids, dtype=object)
        negative = ids[pres][np.asarray(self.video_filter_.predict(batch.video_X[name][pres])).astype(int) == 0]
        return zero_negative_videos(labels, batch.groups, negative)

    # ------------------------------------------------------------------ refitting
    def refit(self, batch: Batch) -> TaskModel:
        """Fit every estimator again on ``batch`` (train + validation), keeping every choice.

        MLPs train for the epochs early stopping chose (``best_epoch_``) with no
        validation set; linear models simply refit. Blend weights, smoothing kernel,
        thresholds and the override stay as chosen; the video filter (when used) is
        refitted on the videos of ``batch``. The training prior and the early-fusion
        fill values stay those of the first fit.
        """
        from sklearn.base import clone

        if batch.y is None:
            raise TrainError("Refitting needs labelled rows.")
        epochs = {}
        for name, est in list(self.estimators_.items()):
            X, cov = self._inputs(batch, name)
            rows = cov & batch.valid
            new = clone(est)
            if isinstance(est, MLPEstimator):
                epochs[name] = max(1, int(est.best_epoch_))
                new.set_params(max_epochs=epochs[name], validation_fraction=None)
            new.fit(X[rows], self._fit_target(batch.y[rows]))
            self.estimators_[name] = new
            logger.debug("Refitted %s on %d rows.", name, int(rows.sum()))
        if hasattr(self, "video_filter_") and batch.video_y is not None:
            vf = self.recipe["video_filter"]["feature"]
            pres = batch.video_present[vf] & np.isfinite(batch.video_y)
            self.video_filter_ = clone(self.video_filter_).fit(batch.video_X[vf][pres], batch.video_y[pres].astype(int))
        self.choices_["refit"] = {"n_rows": int(batch.valid.sum()), "n_videos": len(batch.video_ids), "epochs": epochs}
        return self

    # ------------------------------------------------------------------ predicting
    def predict(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """(scores after blend and smoothing, final predictions) for every row of ``batch``."""
        blended = self._blend(self.modality_scores(batch))
        sm = self.choices_.get("smoothing")
        if sm is not None and batch.level == "frame":
            blended = smooth_by_group(blended, batch.groups, sm["method"], sm["size"], sm.get("edge", "nearest"))
        labels = self._decide(blended)
        vf = self.choices_.get("video_filter")
        if vf is not None and vf["use"]:
            labels = self._apply_video_filter(labels, batch)
        ov = self.choices_.get("override")
        if ov is not None:
            labels = confidence_override(labels, self._override_proba(batch), ov["threshold"])
        return blended, labels

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """``model.json`` plus one sub-folder per estimator; nothing here is pickled."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        estimators = {}
        for i, (name, est) in enumerate(self.estimators_.items()):
            sub = f"estimator_{i}"
            est.save(folder / sub)
            estimators[name] = {"folder": sub, "estimator": self.recipe["estimator"], "class": type(est).__name__}
        doc = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "spec": {"name": self.spec.name, "target": self.spec.target},
            "features": self.features, "recipe": self.recipe, "estimators": estimators,
            "choices": self.choices_, "prior": self.prior_,
            "fill": {k: np.asarray(v).tolist() for k, v in self.fill_.items()},
        }
        if hasattr(self, "video_filter_"):
            self.video_filter_.save(folder / "video_filter")
            doc["video_filter"] = "video_filter"
        (folder / "model.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path, spec: TaskSpec) -> TaskModel:
        """Rebuild a fitted model from ``save``'s folder."""
        folder = Path(folder)
        path = folder / "model.json"
        if not path.is_file():
            raise TrainError(f"{path} not found: {folder} holds no model saved by affect train.")
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT or doc.get("format_version") not in (1, FORMAT_VERSION):
            raise TrainError(f"{path} holds format {doc.get('format')!r} v{doc.get('format_version')}; expected {FORMAT} v{FORMAT_VERSION}.")
        model = cls(spec, doc["recipe"], doc["features"])
        for name, e in doc["estimators"].items():
            if "estimator" in e:
                model.estimators_[name] = load_estimator(folder / e["folder"], e["estimator"], spec.problem)
            else:  # version 1 folders name the class family only
                from affectstore.train.mlp import MLPEstimator

                model.estimators_[name] = (MLPEstimator if e["type"] == "mlp" else ScaledLinear).load(folder / e["folder"])
        model.choices_ = doc["choices"]
        model.prior_ = doc["prior"]
        model.fill_ = {k: np.asarray(v, dtype=np.float32) for k, v in doc["fill"].items()}
        if "video_filter" in doc:
            model.video_filter_ = ScaledLinear.load(folder / doc["video_filter"])
        return model
