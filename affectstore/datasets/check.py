"""`affect data check`: read a dataset root the way the pipeline will, and report what is there
and everything that is wrong, with file and line."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectstore.datasets.base import (
    CLASSIFICATION,
    DatasetAdapter,
    DatasetError,
    NotProvidedError,
    Problem,
    Target,
    Task,
    get_adapter,
)

logger = logging.getLogger(__name__)


@dataclass
class CheckReport:
    """The result of `check_dataset`.

    ``counts``: split -> number of videos. ``label_stats``: split -> level ("video" or
    "frame") -> target -> statistics (classification: ``counts`` per class and
    ``missing``; regression: ``n``, ``mean``, ``std``, ``min``, ``max``, ``missing``;
    frame level also ``frames``, ``valid`` and ``videos`` under the key ``"_all"``).
    ``problems``: everything wrong. ``notes``: facts worth knowing that are not errors.
    """

    dataset: str
    root: Path
    task: Task
    counts: dict[str, int] = field(default_factory=dict)
    label_stats: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def text(self) -> str:
        """The report as printed by ``affect data check``."""
        out = [f"Dataset {self.dataset} at {self.root}", f"  {self.task.describe()}", "Videos per split:"]
        width = max([len(s) for s in self.counts] + [5])
        for split, n in self.counts.items():
            out.append(f"  {split:<{width}}  {n}")
        out.append(f"  {'total':<{width}}  {sum(self.counts.values())}")
        if self.label_stats:
            out.append("Labels:")
            for split, levels in self.label_stats.items():
                for level, targets in levels.items():
                    head = targets.get("_all")
                    extra = f" ({head['videos']} videos, {head['frames']} frames, {head['valid']} valid)" if head else ""
                    out.append(f"  {split} {level}-level{extra}:")
                    for name, stats in targets.items():
                        if name != "_all":
                            out.append(f"    {name}: {_format_stats(stats)}")
        for note in self.notes:
            out.append(f"Note: {note}")
        if self.problems:
            out.append(f"Problems ({len(self.problems)}):")
            out.extend(f"  {p}" for p in self.problems)
        else:
            out.append("No problems found.")
        return "\n".join(out)

    __str__ = text


def check_dataset(
    name: str, root: str | Path, probe_media: bool = False, progress: bool = False, **options: Any
) -> CheckReport:
    """Read dataset ``name`` at ``root`` leniently and collect counts, label statistics and problems.

    Reads every label and annotation file and lists every face-crop folder;
    ``probe_media=True`` also opens every media file and decodes every audio track in full,
    through the same isolated decoder extraction uses, so a file that would crash or fail
    extraction is reported here (slower: about real time / 100). ``options`` go to the
    adapter (``strict`` is always False here so that every bad line is reported).
    """
    options = dict(options)
    options["strict"] = False
    adapter = get_adapter(name, root, **options)
    entries = adapter.manifest()
    report = CheckReport(dataset=name, root=adapter.root, task=adapter.task)
    for split in adapter.splits:
        report.counts[split] = sum(1 for e in entries if e.split == split)

    extra: list[Problem] = []
    _video_level_stats(adapter, report)
    _frame_level_stats(adapter, report, extra)
    if adapter.has_faces:
        _check_faces(adapter, extra)
    if type(adapter).transcript is not DatasetAdapter.transcript:
        for entry in entries:
            try:
                adapter.transcript(entry.id)
            except DatasetError as exc:
                extra.append(Problem(exc.file or adapter.root, exc.line, f"{exc.reason} ({entry.id})", entry.id))
    if probe_media:
        known = {p.file for p in adapter.problems}  # already explained (a directory, a loop, ...)
        _probe_media([e for e in entries if e.audio not in known and e.video not in known], extra, progress)
    report.problems = list(adapter.problems) + extra
    return report


def parse_key_values(pairs: Iterable[str], expected: str = "options must look like key=value") -> dict[str, str]:
    """``["task=va", "targets=emotion,intensity"]`` -> dict of stripped strings; ``expected`` starts
    the error for a pair without ``=`` or key."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{expected}. Got {pair!r} instead.")
        options[key.strip()] = value.strip()
    return options


def parse_options(pairs: Iterable[str]) -> dict[str, str]:
    """Dataset adapter options ``key=value``; the adapters convert the values."""
    return parse_key_values(pairs)


def _video_level_stats(adapter: DatasetAdapter, report: CheckReport) -> None:
    try:
        adapter.video_labels()
    except NotProvidedError:
        return
    targets = {t.name: t for t in adapter.task.targets}
    for split in adapter.splits:
        labels = adapter.video_labels(split)
        if not len(labels):
            continue
        level = report.label_stats.setdefault(split, {}).setdefault("video", {})
        for k, name in enumerate(labels.target_names):
            # BAH's video-level label "ah" is the same 0/1 target as its frame labels.
            target = targets.get(name, Target(name, CLASSIFICATION, ("0", "1")))
            level[name] = _stats(labels.values[:, k], target)


def _frame_level_stats(adapter: DatasetAdapter, report: CheckReport, problems: list[Problem]) -> None:
    if adapter.task.level != "frame":
        return
    missing_crops = 0
    for split in adapter.splits:
        values, n_frames, n_videos = [], 0, 0
        for entry in adapter.manifest(split):
            try:
                labels = adapter.frame_labels(entry.id)
            except NotProvidedError as exc:
                if split != "test":
                    problems.append(Problem(exc.file or adapter.root, exc.line, f"no frame labels for {entry.id}", entry.id))
                continue
            except DatasetError as exc:
                problems.append(Problem(exc.file or adapter.root, exc.line, exc.reason, entry.id))
                continue
            n_videos += 1
            n_frames += len(labels)
            values.append(labels.values[labels.valid])
            if adapter.has_faces and entry.faces is not None:
                crops = set(adapter.face_crops(entry.id).frames.tolist())
                missing_crops += int(sum(1 for f in labels.frames[labels.valid] if int(f) not in crops))
        if not n_videos:
            continue
        stacked = np.concatenate(values) if values else np.zeros((0, len(adapter.task.targets)))
        level = report.label_stats.setdefault(split, {}).setdefault("frame", {})
        level["_all"] = {"videos": n_videos, "frames": n_frames, "valid": int(len(stacked))}
        for k, target in enumerate(adapter.task.targets):
            level[target.name] = _stats(stacked[:, k], target)
    if missing_crops:
        report.notes.append(
            f"{missing_crops} valid labelled frames have no face crop (allowed; face features there are interpolated from neighbours)"
        )


def _check_faces(adapter: DatasetAdapter, problems: list[Problem]) -> None:
    from affectstore.media.faces import IMAGE_EXTENSIONS

    # Only list the folders: timing the crops may need decoding (EMI), too slow for a check.
    for entry in adapter.manifest():
        if entry.faces is not None and not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in entry.faces.iterdir()):
            problems.append(Problem(entry.faces, None, f"no face crops in the folder of {entry.id}", entry.id))


def _probe_media(entries, problems: list[Problem], progress: bool = False) -> None:
    from tqdm.auto import tqdm

    from affectstore.media.errors import MediaError
    from affectstore.media.isolated import IsolatedDecoder

    todo: list[tuple[Any, Path, str]] = []
    seen: set[tuple[Path, str]] = set()
    for entry in entries:
        for path, need in ((entry.video, "video"), (entry.audio, "audio")):
            if path is not None and (path, need) not in seen:
                seen.add((path, need))
                todo.append((entry, path, need))
    with IsolatedDecoder() as decoder:
        for entry, path, need in tqdm(todo, desc="probe media", unit="file", disable=not progress):
            try:
                info = decoder.probe(path)
                if need == "audio" and info.has_audio:
                    decoder.count_samples(path)  # the decode extraction runs, in the same worker
            except MediaError as exc:
                problems.append(Problem(path, None, f"{exc.cause} ({type(exc).__name__}). {exc.hint}", entry.id))
                continue
            if need == "audio" and not info.has_audio:
                problems.append(Problem(path, None, f"no audio stream (needed for the audio of {entry.id})", entry.id))
            if need == "video" and not info.has_video:
                problems.append(Problem(path, None, f"no video stream (needed for the frames of {entry.id})", entry.id))


def _stats(values: np.ndarray, target: Target) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    missing = int(len(values) - len(present))
    if target.kind == CLASSIFICATION:
        classes = target.classes or tuple(str(int(v)) for v in np.unique(present))
        counts = {c: int(np.sum(present == i)) for i, c in enumerate(classes)}
        return {"counts": counts, "missing": missing}
    if not len(present):
        return {"n": 0, "missing": missing}
    return {
        "n": int(len(present)),
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present.min()),
        "max": float(present.max()),
        "missing": missing,
    }


def _format_stats(stats: dict[str, Any]) -> str:
    if "counts" in stats:
        text = " ".join(f"{c}={n}" for c, n in stats["counts"].items())
    elif stats.get("n"):
        text = f"n={stats['n']} mean={stats['mean']:.3f} std={stats['std']:.3f} min={stats['min']:.3f} max={stats['max']:.3f}"
    else:
        text = "n=0"
    return text + (f" missing={stats['missing']}" if stats.get("missing") else "")
