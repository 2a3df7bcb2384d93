"""A run's report: PNG plots (matplotlib Agg) and a Markdown page that shows them.

Plots: per-output scores on the report rows, blend weights per feature (per output
when searched per output), the smoothing-kernel curve (frame-level tasks) and the
decision-threshold curve (binary tasks).
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


def _bar(path: Path, labels, values, title: str, ylabel: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(labels) + 2), 3.2))
    ax.bar(range(len(values)), values, color="#4c72b0")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.axhline(0, color="black", lw=0.5)
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
        lines += [f"Headline ({where}): **{spec.metric} = {headline[spec.metric]:.4f}** on {headline['n']} rows.", ""]
        lines += ["| rows | " + spec.metric + " | n |", "|---|---|---|"]
        labels = {"report": "validation (optimistic)" if metrics.get("optimistic") else "report",
                  "tune": metrics.get("tune_label", "tune"), "out_of_fold": "out of fold"}
        for name in ("report", "tune", "out_of_fold"):
            if name in metrics:
                lines.append(f"| {labels[name]} | {metrics[name][spec.metric]:.4f} | {metrics[name]['n']} |")
        if "folds" in metrics:
            lines.append(f"| folds mean ± sd | {metrics['fold_mean']:.4f} ± {metrics['fold_std']:.4f} | {len(metrics['folds'])} folds |")
        lines.append("")
        pk = spec.per_output_key()
        per = headline["per_output"]
        png = f"scores{tag}.png"
        _bar(run_dir / png, list(per), [per[o][pk] for o in per], f"{key}: {pk} per output ({where})", pk)
        lines += [f"![per-output scores]({png})", ""]
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
