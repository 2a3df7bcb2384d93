"""`SequenceEstimator`: the training loop every sequence model shares.

A model is a subclass that sets ``network`` (a `torch.nn.Module` class built as
``network(streams, dims, n_out, arch, dropout, level)`` whose ``forward(batch)`` maps
``{stream: (x (B, T, D), lengths (B,))}`` to (B, n_out)) and ``arch_defaults``. ``X`` is a
`affectstore.train.sequence.SequenceView`; ``y`` is (N, K) float (regression), (N,) 0/1
(``loss="bce"``) or (N,) class indices (``loss="cross_entropy"``).

Training: AdamW; learning rate warmed up linearly for ``warmup_epochs`` then cosine
decay (``schedule="cosine"``), cosine with warm restarts every ``restart_epochs``
(``"cosine_restarts"``) or constant; optional EMA of the weights (``ema=0.999``, evaluated
and saved in place of the raw weights); mini-batches streamed from the view; per epoch a
tqdm bar, a validation score on ``eval_set`` and an entry in ``history_`` (the learning
curves); the best epoch's weights are kept; ``patience`` epochs without improvement stop.
Frame-level binary tasks can draw each epoch's ``epoch_size`` items ``balanced`` over the
two classes from label-homogeneous stretches (every label within ``homogeneous`` seconds
of the item agrees). ``device="auto"`` picks CUDA when present; ``amp`` runs float16 autocast
with a gradient scaler there (CPU runs stay float32, and the same seed gives the same result).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import numbers
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from affectstore.train.align import fill_missing
from affectstore.train.fusion import apply_decision
from affectstore.train.metrics import METRICS, get_metric
from affectstore.train.mlp import _ccc_loss, _pearson_loss, reproducible
from affectstore.train.sequence.streams import StreamSpec, collate, parse_streams

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1
LOSSES = ("mse", "ccc", "pearson", "bce", "cross_entropy")


class SequenceEstimator(BaseEstimator):
    """Base of the sequence models; see the module docstring for the parameters' meaning."""

    network: type = None
    arch_defaults: dict = {}

    _parameter_constraints: dict = {
        "arch": [None, dict],
        "streams": [None, dict],
        "loss": [StrOptions(set(LOSSES))],
        "scoring": [None, StrOptions(set(METRICS))],
        "clip": [None, list, tuple],
        "dropout": [Interval(numbers.Real, 0.0, 1.0, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0.0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0.0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "warmup_epochs": [Interval(numbers.Real, 0.0, None, closed="left")],
        "schedule": [StrOptions({"cosine", "cosine_restarts", "constant"})],
        "restart_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "ema": [None, Interval(numbers.Real, 0.0, 1.0, closed="neither")],
        "patience": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "epoch_size": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "balanced": ["boolean"],
        "homogeneous": [None, Interval(numbers.Real, 0.0, None, closed="left")],
        "eval_stride": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_eval_items": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "amp": ["boolean"],
        "random_state": [Interval(numbers.Integral, None, None, closed="neither")],
        "n_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "progress": ["boolean"],
    }

    def __init__(self, arch=None, streams=None, loss="mse", scoring=None, clip=None, dropout=0.1,
                 learning_rate=1e-4, weight_decay=0.0, batch_size=32, max_epochs=30, warmup_epochs=1.0,
                 schedule="cosine", restart_epochs=10, ema=None, patience=None, epoch_size=None, balanced=False,
                 homogeneous=None, eval_stride=1, max_eval_items=None, device="auto", amp=True, random_state=0,
                 n_threads=None, progress=True):
        self.arch = arch
        self.streams = streams
        self.loss = loss
        self.scoring = scoring
        self.clip = clip
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.warmup_epochs = warmup_epochs
        self.schedule = schedule
        self.restart_epochs = restart_epochs
        self.ema = ema
        self.patience = patience
        self.epoch_size = epoch_size
        self.balanced = balanced
        self.homogeneous = homogeneous
        self.eval_stride = eval_stride
        self.max_eval_items = max_eval_items
        self.device = device
        self.amp = amp
        self.random_state = random_state
        self.n_threads = n_threads
        self.progress = progress

    # ------------------------------------------------------------------ set-up
    def _arch(self) -> dict:
        a = dict(self.arch_defaults)
        unknown = sorted(set(self.arch or {}) - set(a))
        if unknown:
            raise ValueError(f"Unknown arch key(s) {unknown} for {type(self).__name__}. Valid keys: {sorted(a)}.")
        a.update(self.arch or {})
        a.update(getattr(self, "resolved_arch_", {}))
        return a

    def resolve_arch(self, view, streams) -> dict:
        """Architecture choices that depend on the data (saved with the model); none by default."""
        return {}

    def default_streams(self, view) -> dict[str, StreamSpec]:
        """Streams when ``streams`` is None: one per feature (per-video vectors pooled)."""
        return parse_streams(None, view.features, {f: i.kind for f, i in view.source.infos.items()})

    def _device(self) -> torch.device:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no CUDA device. Use device='auto' or 'cpu'.")
        return torch.device("cuda" if self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available()) else "cpu")

    def _targets(self, y) -> np.ndarray:
        y = np.asarray(y)
        if self.loss == "cross_entropy":
            return y.astype(np.int64).reshape(-1)
        y = y.astype(np.float32)
        return y.reshape(len(y), -1)

    def _tensors(self, view, rows, device) -> dict:
        batch = collate(view, rows, self.streams_)
        return {k: (torch.from_numpy(x).to(device), torch.from_numpy(n).to(device)) for k, (x, n) in batch.items()}

    def _loss_fn(self):
        if self.loss == "cross_entropy":
            return lambda z, t: torch.nn.functional.cross_entropy(z, t)
        if self.loss == "bce":
            return lambda z, t: torch.nn.functional.binary_cross_entropy_with_logits(z, t)
        if self.loss in ("ccc", "pearson"):
            w = torch.full((self.n_outputs_,), 1.0 / self.n_outputs_)
            fn = _ccc_loss if self.loss == "ccc" else _pearson_loss
            return lambda z, t: fn(z, t, w.to(z.device))
        return lambda z, t: torch.nn.functional.mse_loss(z, t)

    def _norm_stats(self, view, rows, rng) -> None:
        """Per-stream channel mean / std from up to 256 training items (inputs are standardised with them)."""
        pick = rows if len(rows) <= 256 else np.sort(rng.choice(rows, 256, replace=False))
        self.norm_ = {}
        for name, (x, n) in collate(view, pick, self.streams_).items():
            real = np.arange(x.shape[1])[None, :] < n[:, None]
            v = x[real]
            if len(v) == 0:
                mean, std = np.zeros(x.shape[2], np.float32), np.ones(x.shape[2], np.float32)
            else:
                mean, std = v.mean(0), v.std(0)
            if self.streams_[name].marker:  # the marker channels keep their meaning
                mean[-2:], std[-2:] = 0.0, 1.0
            self.norm_[name] = (mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def _build(self, device):
        net = self.network(self.streams_, self.stream_dims_, self.n_outputs_, self._arch(), float(self.dropout), self.level_)
        net.norm = torch.nn.ParameterDict({
            k: torch.nn.Parameter(torch.from_numpy(np.stack(v)), requires_grad=False) for k, v in self.norm_.items()})
        return net.to(device)

    @staticmethod
    def _normalise(net, batch: dict) -> dict:
        return {k: ((x - net.norm[k][0]) / net.norm[k][1], n) for k, (x, n) in batch.items()}

    # ------------------------------------------------------------------ sampling
    def _epoch_rows(self, view, y: np.ndarray, rng) -> np.ndarray:
        rows = np.arange(len(view))
        if not self.balanced:
            if self.epoch_size is None or self.epoch_size >= len(rows):
                return rows
            return np.sort(rng.choice(rows, self.epoch_size, replace=False))
        labels = y.reshape(len(y), -1)[:, 0].astype(int)
        cand = self.homogeneous_rows_ if self.homogeneous_rows_ is not None else rows
        n = self.epoch_size or len(rows)
        classes = np.unique(labels[cand])
        per = [cand[labels[cand] == c] for c in classes]
        k = max(1, n // max(len(per), 1))
        return np.concatenate([rng.choice(p, k, replace=len(p) < k) for p in per])

    def _homogeneous(self, view, y: np.ndarray) -> np.ndarray | None:
        """Items whose video's labels agree within ``homogeneous`` seconds of them (frame level)."""
        if self.homogeneous is None or view.times is None:
            return None
        labels = y.reshape(len(y), -1)[:, 0]
        keep = np.zeros(len(view), dtype=bool)
        half = float(self.homogeneous) / 2.0
        for vid in np.unique(view.videos):
            rows = np.flatnonzero(view.videos == vid)
            rows = rows[np.argsort(view.times[rows], kind="stable")]
            t, lab = view.times[rows], labels[rows]
            lo = np.searchsorted(t, t - half, side="left")
            hi = np.searchsorted(t, t + half, side="right")
            change = np.concatenate([[0], np.cumsum(lab[1:] != lab[:-1])])  # label-run id of each item
            keep[rows] = change[lo] == change[hi - 1]
        if not keep.any():
            return None
        return np.flatnonzero(keep)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, eval_set=None):
        """Train on the items of view ``X``; choose the best epoch on ``eval_set=(view, y)`` (else on training loss)."""
        self._validate_params()
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} items but y has {len(y)} labels.")
        if len(X) < 2:
            raise ValueError(f"Got n_samples = {len(X)}; a sequence model needs 2 or more training items.")
        if self.clip is not None and len(self.clip) != 2:
            raise ValueError(f"clip must be None or [low, high]. Got {self.clip!r} instead.")
        Y = self._targets(y)
        self.level_ = X.level
        self.n_outputs_ = int(Y.max()) + 1 if self.loss == "cross_entropy" else Y.shape[1]
        if self.loss == "cross_entropy":
            self.classes_ = np.arange(self.n_outputs_)
        specs = parse_streams(self.streams, X.features, {f: i.kind for f, i in X.source.infos.items()}) \
            if self.streams is not None else self.default_streams(X)
        self.streams_ = specs
        self.stream_dims_ = {k: s.dim(X.source.dims) for k, s in specs.items()}
        self.resolved_arch_ = self.resolve_arch(X, specs)
        self.homogeneous_rows_ = self._homogeneous(X, Y) if self.balanced else None
        device = self._device()
        started = time.perf_counter()
        with reproducible(self.random_state, self.n_threads):
            self._train(X, Y, eval_set, device)
        self.fit_seconds_ = time.perf_counter() - started
        logger.info("%s fitted: %d epochs (best %d), %.1f s, best validation %s.", type(self).__name__,
                    self.n_epochs_, self.best_epoch_, self.fit_seconds_, self.best_score_)
        return self

    def _schedule(self, opt, steps_per_epoch: int):
        total = self.max_epochs * steps_per_epoch
        warm = int(round(self.warmup_epochs * steps_per_epoch))
        per_cycle = self.restart_epochs * steps_per_epoch

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            if self.schedule == "constant":
                return 1.0
            if self.schedule == "cosine_restarts":
                return 0.5 * (1 + math.cos(math.pi * ((step - warm) % per_cycle) / per_cycle))
            return 0.5 * (1 + math.cos(math.pi * min(step - warm, total - warm) / max(total - warm, 1)))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def _score(self, net, view, Y) -> tuple[float, float]:
        """(score to maximise, validation loss) of ``net`` on a view."""
        z = self._predict_raw(net, view)
        zt = torch.from_numpy(z)
        yt = torch.from_numpy(Y)
        loss = float(self._loss_fn()(zt, yt))
        if self.scoring is None:
            return -loss, loss
        metric = get_metric(self.scoring)
        if self.loss == "cross_entropy":
            pred = z.argmax(axis=1)
        elif self.loss == "bce":
            pred = apply_decision(1 / (1 + np.exp(-z[:, 0])), 0.5)
            return float(metric(Y[:, 0].astype(int), pred)), loss
        else:
            pred = self._clip(z)
        return float(metric(Y if Y.ndim == 1 else Y.reshape(len(Y), -1), pred)), loss

    def _train(self, X, Y, eval_set, device) -> None:
        rng = np.random.default_rng(self.random_state)
        self._norm_stats(X, np.arange(len(X)), rng)
        net = self._build(device)
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=self.learning_rate,
                                weight_decay=self.weight_decay)
        n_rows = len(self._epoch_rows(X, Y, np.random.default_rng(0)))
        steps = max(1, math.ceil(n_rows / self.batch_size))
        sched = self._schedule(opt, steps)
        use_amp = bool(self.amp) and device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda") if use_amp else None
        ema = None
        if self.ema is not None:
            ema = torch.optim.swa_utils.AveragedModel(
                net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(float(self.ema)), use_buffers=True)
        loss_fn = self._loss_fn()
        ev = None
        if eval_set is not None:
            Xv, Yv = eval_set[0], self._targets(eval_set[1])
            if self.max_eval_items is not None and len(Xv) > self.max_eval_items:
                keep = np.sort(rng.choice(len(Xv), self.max_eval_items, replace=False))
                Xv, Yv = Xv[keep], Yv[keep]
            ev = (Xv, Yv)
        self.history_, best, best_state, since = [], -math.inf, None, 0
        self.best_epoch_, epoch = 0, 0
        for epoch in range(1, self.max_epochs + 1):
            t0 = time.perf_counter()
            net.train()
            rows = self._epoch_rows(X, Y, rng)
            total, count = 0.0, 0
            bar = tqdm(total=len(rows), desc=f"{type(self).__name__} epoch {epoch}/{self.max_epochs}",
                       disable=not self.progress, leave=False, unit="item")
            for idx in X.batches(rows, self.batch_size, rng):
                if len(idx) < 2 and self.loss in ("ccc", "pearson"):
                    continue  # a correlation over one item is undefined
                batch = self._normalise(net, self._tensors(X, idx, device))
                target = torch.from_numpy(Y[idx]).to(device)
                opt.zero_grad(set_to_none=True)
                if use_amp:  # float16 autocast, the loss scaled so small gradients survive
                    with torch.autocast(device_type="cuda", dtype=torch.float16):
                        out = net(batch)
                    loss = loss_fn(out.float(), target)
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss = loss_fn(net(batch), target)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    opt.step()
                sched.step()
                if ema is not None:
                    ema.update_parameters(net)
                total += float(loss.detach()) * len(idx)
                count += len(idx)
                bar.update(len(idx))
                bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
            bar.close()
            judged = ema.module if ema is not None else net
            entry = {"epoch": epoch, "train_loss": total / max(count, 1), "lr": float(sched.get_last_lr()[0]),
                     "seconds": 0.0}
            if ev is not None:
                score, vloss = self._score(judged, ev[0], ev[1])
                entry.update(val_score=score if self.scoring else None, val_loss=vloss)
            else:
                score = -entry["train_loss"]
            entry["seconds"] = time.perf_counter() - t0
            if not math.isfinite(score):  # e.g. Pearson r of constant predictions: never the best epoch
                score = -math.inf
            self.history_.append(entry)
            logger.info("%s epoch %d: %s", type(self).__name__, epoch, entry)
            if score > best + 1e-12 or best_state is None:
                best, since, self.best_epoch_ = score, 0, epoch
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in judged.state_dict().items()})
            else:
                since += 1
                if self.patience is not None and since >= self.patience:
                    break
        self.n_epochs_ = epoch
        self.best_score_ = best if self.scoring else (-best if ev is not None else None)
        self.net_ = self._build(torch.device("cpu"))
        self.net_.load_state_dict(best_state)
        self.net_.eval()

    # ------------------------------------------------------------------ predicting
    def _clip(self, z: np.ndarray) -> np.ndarray:
        return z if self.clip is None else np.clip(z, float(self.clip[0]), float(self.clip[1]))

    def _predict_raw(self, net, view) -> np.ndarray:
        device = next(net.parameters()).device
        net.eval()
        out = []
        with torch.no_grad():
            for idx in view.batches(np.arange(len(view)), max(self.batch_size, 64), None):
                z = net(self._normalise(net, self._tensors(view, idx, device))).float().cpu().numpy()
                out.append((idx, z))
        res = np.zeros((len(view), self.n_outputs_), np.float32)
        for idx, z in out:
            res[idx] = z
        return res

    def _stride_rows(self, view) -> np.ndarray:
        """Items predicted directly: every ``eval_stride``-th item of each video (plus its last)."""
        keep = np.zeros(len(view), dtype=bool)
        for vid in np.unique(view.videos):
            rows = np.flatnonzero(view.videos == vid)
            keep[rows[:: self.eval_stride]] = True
            keep[rows[-1]] = True
        return np.flatnonzero(keep)

    def predict_scores(self, X) -> np.ndarray:
        """Regression: (N, K) values (clipped to ``clip``); binary: (N,) probabilities; classes: (N, C)."""
        check_is_fitted(self, "net_")
        threads = torch.get_num_threads()
        if self.n_threads is not None:
            torch.set_num_threads(self.n_threads)
        try:
            if self.eval_stride > 1 and X.times is not None:
                rows = self._stride_rows(X)
                z = np.full((len(X), self.n_outputs_), np.nan, np.float32)
                z[rows] = self._predict_raw(self.net_, X[rows])
                for vid in np.unique(X.videos):  # frames in between: interpolated within their video
                    r = np.flatnonzero(X.videos == vid)
                    r = r[np.argsort(X.times[r], kind="stable")]
                    z[r] = fill_missing(z[r], np.isnan(z[r, 0]))
            else:
                z = self._predict_raw(self.net_, X)
        finally:
            torch.set_num_threads(threads)
        if self.loss == "bce":
            return 1.0 / (1.0 + np.exp(-z[:, 0].astype(np.float64)))
        if self.loss == "cross_entropy":
            from scipy.special import softmax

            return softmax(z.astype(np.float64), axis=1)
        return self._clip(z.astype(np.float64))

    def predict(self, X) -> np.ndarray:
        """Values (regression), 0/1 at 0.5 (binary) or class indices."""
        s = self.predict_scores(X)
        if self.loss == "bce":
            return (s >= 0.5).astype(np.int64)
        if self.loss == "cross_entropy":
            return s.argmax(axis=1)
        return s

    # ------------------------------------------------------------------ persistence
    def save(self, folder) -> Path:
        """``model.safetensors`` (best epoch's weights, input scaling) + ``config.json``; nothing pickled."""
        check_is_fitted(self, "net_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.net_.state_dict().items()}, str(folder / WEIGHTS_FILE),
                  metadata={"format": f"affectstore.{type(self).__name__}"})
        params = self.get_params(deep=False)
        params["clip"] = None if self.clip is None else [float(c) for c in self.clip]
        state = {"n_outputs_": self.n_outputs_, "level_": self.level_, "stream_dims_": self.stream_dims_,
                 "streams_": {k: s.as_dict() for k, s in self.streams_.items()}, "n_epochs_": self.n_epochs_,
                 "best_epoch_": self.best_epoch_, "best_score_": self.best_score_, "history_": self.history_,
                 "resolved_arch_": self.resolved_arch_}
        doc = {"format": f"affectstore.{type(self).__name__}", "format_version": FORMAT_VERSION,
               "params": params, "state": state}
        (folder / CONFIG_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder):
        """Rebuild a fitted model from ``save``'s folder."""
        folder = Path(folder)
        for p in (folder / CONFIG_FILE, folder / WEIGHTS_FILE):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: {folder} is not a folder written by {cls.__name__}.save().")
        doc = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        if doc.get("format") != f"affectstore.{cls.__name__}" or doc.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{folder / CONFIG_FILE} holds format {doc.get('format')!r}; expected "
                             f"'affectstore.{cls.__name__}' version {FORMAT_VERSION}.")
        est = cls(**doc["params"])
        st = doc["state"]
        for k in ("n_outputs_", "level_", "stream_dims_", "n_epochs_", "best_epoch_", "best_score_", "history_",
                  "resolved_arch_"):
            setattr(est, k, st[k])
        est.streams_ = {k: StreamSpec(**{**v, "features": tuple(v["features"])}) for k, v in st["streams_"].items()}
        if est.loss == "cross_entropy":
            est.classes_ = np.arange(est.n_outputs_)
        tensors = load_file(str(folder / WEIGHTS_FILE))
        # Placeholders of the right shape; the saved input scaling is loaded with the weights.
        est.norm_ = {k: (np.zeros(d, np.float32), np.ones(d, np.float32)) for k, d in est.stream_dims_.items()}
        est.net_ = est._build(torch.device("cpu"))
        est.net_.load_state_dict(tensors, strict=True)
        est.net_.eval()
        return est
