"""A run's report: PNG plots (matplotlib Agg) and a Markdown page that shows them.

Plots: per-output scores on the report rows (with the chance line), blend weights per
feature (per output when searched per output), the smoothing-kernel curve (frame-level
tasks), the decision-threshold curve (binary tasks), the confusion matrix (class tasks)
and the learning curves of neural models per fold. Tables: headline rows, each single
feature next to the fused model, per-class precision / recall / F1 / support, the
confusion matrix in numbers and the choices made in each fold.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bar(path: Path, labels, values, title: str, ylabel: str, chance: float | None = None) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(labels) + 2), 3.2))
    ax.bar(range(len(values)), values, color="#4c72b0")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.axhline(0, color="black", lw=0.5)
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance {chance:.3f}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _curve(path: Path, x, y, best, title: str, xlabel: str, ylabel: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(x, y, marker="o", ms=3)
    ax.axvline(best, color="red", ls="--", lw=1, label=f"chosen: {best}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _blend_plot(path: Path, features, weights, outputs, title: str) -> None:
    plt = _plt()
    w = np.asarray(weights, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * (len(outputs) if w.ndim == 2 else 1) + 3), 3.2))
    if w.ndim == 2:  # (K outputs, M features): stacked bars per output
        bottom = np.zeros(w.shape[0])
        for m, f in enumerate(features):
            ax.bar(range(w.shape[0]), w[:, m], bottom=bottom, label=f)
            bottom += w[:, m]
        ax.set_xticks(range(w.shape[0]), outputs, rotation=30, ha="right")
        ax.legend(fontsize=7)
    else:
        ax.bar(range(len(w)), w, color="#55a868")
        ax.set_xticks(range(len(w)), features, rotation=30, ha="right")
    ax.set_ylabel("weight")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _confusion_plot(path: Path, labels, matrix, title: str) -> None:
    plt = _plt()
    m = np.asarray(matrix, dtype=np.float64)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)  # row-normalised: recall on the diagonal
    fig, ax = plt.subplots(figsize=(0.55 * len(labels) + 2.5, 0.55 * len(labels) + 2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _learning_plot(path: Path, curves: dict, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    watched = "validation score"
    for part, per_model in curves.items():
        for name, c in per_model.items():
            ax.plot(range(1, len(c["history"]) + 1), c["history"], lw=1, label=f"{part}: {name}")
            watched = c["watched"]
    ax.set_xlabel("epoch")
    ax.set_ylabel(watched)
    ax.set_title(title, fontsize=9)
    if sum(len(v) for v in curves.values()) <= 12:
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _fmt_choice(choices: dict) -> tuple[str, str, str, str]:
    w = choices.get("blend_weights")
    weights = "" if w is None or len(choices.get("blend_features", [])) < 2 else str(np.round(np.asarray(w), 2).tolist())
    sm = choices.get("smoothing")
    smooth = f"{sm['method']} {sm['size']}" if sm else ""
    th = choices.get("threshold", choices.get("thresholds", ""))
    th = str(np.round(np.asarray(th), 2).tolist()) if th != "" else ""
    epochs = ", ".join(f"{k} {v}" for k, v in (choices.get("epochs") or {}).items())
    return epochs, weights, smooth, th


def _class_tables(spec, headline: dict, key: str, tag: str, run_dir: Path) -> list[str]:
    lines = []
    per = headline["per_output"]
    if "precision" in next(iter(per.values())):
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {o} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |" for o, v in per.items()]
        lines.append("")
    elif "support" in next(iter(per.values())):
        lines += ["| label | F1 | support |", "|---|---|---|"]
        lines += [f"| {o} | {v['f1']:.4f} | {v['support']} |" for o, v in per.items()]
        lines.append("")
    cm = headline.get("confusion_matrix")
    if cm:
        labels, m = cm["labels"], cm["rows_true_cols_pred"]
        png = f"confusion{tag}.png"
        _confusion_plot(run_dir / png, labels, m, f"{key}: confusion matrix (rows true, columns predicted)")
        lines += [f"![confusion matrix]({png})", "", "| true \\ predicted | " + " | ".join(labels) + " |",
                  "|---|" + "---|" * len(labels)]
        lines += [f"| {labels[i]} | " + " | ".join(str(x) for x in row) + " |" for i, row in enumerate(m)]
        lines.append("")
    return lines


def write_report(run_dir: str | Path, results: dict, task: str, protocol: str) -> Path:
    """Write the plots and ``report.md`` into ``run_dir``; returns the Markdown path.

    ``results``: key (task or clips target) -> {"spec", "metrics", "choices"}.
    """
    run_dir = Path(run_dir)
    lines = [f"# Run report: task `{task}`", "", protocol, ""]
    for key, r in results.items():
        spec, metrics, choices = r["spec"], r["metrics"], r["choices"]
        tag = "" if key == task else f"-{key}"
        lines += [f"## {key}", ""]
        headline = metrics.get("out_of_fold") or metrics.get("report")
        where = "out-of-fold (cross-validation)" if "out_of_fold" in metrics else "report rows"
        if metrics.get("optimistic"):
            where = "validation rows, OPTIMISTIC"
            lines += [f"> **{metrics.get('note', 'Optimistic figures')}.** Compare them with a paper's table only.", ""]
        chance = metrics.get("chance")
        lines += [f"Headline ({where}): **{spec.metric} = {headline[spec.metric]:.4f}** on {headline['n']} rows"
                  + (f"; chance {chance['value']:.4f} ({chance['how']})." if chance else "."), ""]
        if "balanced_accuracy" in headline:
            lines += [f"Balanced accuracy (UAR) {headline['balanced_accuracy']:.4f}, accuracy {headline['accuracy']:.4f}, "
                      f"macro F1 {headline['macro_f1']:.4f}, weighted F1 {headline['weighted_f1']:.4f}.", ""]
        lines += ["| rows | " + spec.metric + " | n |", "|---|---|---|"]
        labels = {"report": "validation (optimistic)" if metrics.get("optimistic") else "report",
                  "tune": metrics.get("tune_label", "tune"), "out_of_fold": "out of fold"}
        for name in ("report", "tune", "out_of_fold"):
            if name in metrics:
                lines.append(f"| {labels[name]} | {metrics[name][spec.metric]:.4f} | {metrics[name]['n']} |")
        if "folds" in metrics:
            lines.append(f"| folds mean ± sd | {metrics['fold_mean']:.4f} ± {metrics['fold_std']:.4f} | {len(metrics['folds'])} folds |")
        lines.append("")
        singles = metrics.get("single_features")
        if singles:
            lines += [f"| features | {spec.metric} |", "|---|---|"]
            lines += [f"| {name} alone | {v:.4f} |" for name, v in singles.items()]
            lines += [f"| **fused ({' + '.join(singles)})** | **{headline[spec.metric]:.4f}** |", ""]
        pk = spec.per_output_key()
        per = headline["per_output"]
        png = f"scores{tag}.png"
        _bar(run_dir / png, list(per), [per[o][pk] for o in per], f"{key}: {pk} per output ({where})", pk,
             chance["value"] if chance and pk == "f1" else None)
        lines += [f"![per-output scores]({png})", ""]
        lines += _class_tables(spec, headline, key, tag, run_dir)
        if metrics.get("learning_curves"):
            png = f"learning{tag}.png"
            _learning_plot(run_dir / png, metrics["learning_curves"], f"{key}: validation curve per fold and model")
            lines += [f"![learning curves]({png})", ""]
        fold_rows = [(f"fold {f['fold']}", f[spec.metric], f.get("choices", {})) for f in metrics.get("folds", [])]
        fold_rows.append(("saved model", None, choices))
        lines += ["| part | " + spec.metric + " | epochs | blend weights | smoothing | threshold |", "|---|---|---|---|---|---|"]
        for part, score, ch in fold_rows:
            lines.append(f"| {part} | {'' if score is None else f'{score:.4f}'} | " + " | ".join(_fmt_choice(ch)) + " |")
        lines.append("")
        if len(choices.get("blend_features", [])) > 1:
            png = f"blend{tag}.png"
            _blend_plot(run_dir / png, choices["blend_features"], choices["blend_weights"], list(spec.outputs),
                        f"{key}: blend weights" + (" (fixed by recipe)" if choices.get("blend_fixed") else " (tuned)"))
            lines += [f"![blend weights]({png})", ""]
        sm = choices.get("smoothing")
        if sm:
            png = f"smoothing{tag}.png"
            xs = [int(k) for k in sm["curve"]]
            _curve(run_dir / png, xs, list(sm["curve"].values()), sm["size"], f"{key}: {sm['method']} smoothing (tuning rows)",
                   "kernel size (frames)", spec.metric)
            lines += [f"![smoothing curve]({png})", ""]
        tc = choices.get("threshold_curve")
        if tc:
            png = f"threshold{tag}.png"
            _curve(run_dir / png, tc["thresholds"], tc["scores"], choices["threshold"], f"{key}: decision threshold (tuning rows)",
                   "threshold", spec.metric)
            lines += [f"![threshold curve]({png})", ""]
        if choices.get("video_filter"):
            vf = choices["video_filter"]
            lines += [f"Video filter: {'used' if vf['use'] else 'not used'} (tuning {spec.metric} "
                      f"{vf['score_without']:.4f} without, {vf['score_with']:.4f} with).", ""]
        if metrics.get("refit"):
            rf = metrics["refit"]
            lines += [f"Refit: the saved model was fitted again on {rf['n_rows']} rows of {rf['n_videos']} videos "
                      f"(train + validation) with the chosen settings; MLP epochs {rf['epochs'] or 'n/a'}. The figures "
                      "above are those of the model before refitting.", ""]
        if choices.get("override"):
            lines += [f"Confidence override threshold: {choices['override']['threshold']}.", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
