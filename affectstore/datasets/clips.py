"""Clips: any folder of audio or video files described by a ``labels.csv``.

The CSV has a column with each clip's path relative to the root (auto-detected among
``clip``, ``path``, ``file``, ``filename``, ``audio``, ``video``; else the first column),
optional split and group columns, and target columns, each classification (text classes)
or regression (numbers). Reads ``../shared/data/ravdess-dev`` and ``crema-d`` as they are:

    get_adapter("clips", "ravdess-dev", targets="emotion,intensity", group_column="actor")
    get_adapter("clips", "crema-d", targets="emotion", group_column="actor")
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from affectstore.datasets.base import (
    CLASSIFICATION,
    REGRESSION,
    DatasetAdapter,
    DatasetError,
    MissingFileError,
    Problem,
    Target,
    Task,
    VideoEntry,
    VideoLabels,
    _as_bool,
    read_csv_rows,
    register_adapter,
    resolve_in_root,
)
from affectstore.media.errors import MediaError
from affectstore.media.probe import SUPPORTED_EXTENSIONS, VIDEO_EXTENSIONS, check_file

logger = logging.getLogger(__name__)

PATH_COLUMNS = ("clip", "path", "file", "filename", "audio", "video")
DEFAULT_SPLIT = "all"


@register_adapter("clips")
class ClipsAdapter(DatasetAdapter):
    """A labels CSV over audio/video clips; one entry per row, id = the clip path as written.

    Options:
    - ``labels``: CSV file name, relative to the root (default ``labels.csv``).
    - ``path_column``, ``split_column`` (default: ``split`` if present, else every clip is
      in split "all"), ``group_column`` (e.g. ``actor``; default none).
    - ``targets``: which columns are labels and of which kind: a mapping
      ``{"emotion": "classification", "valence": "regression"}``, a list of names, or a
      string ``"emotion,valence:regression"``. Without a kind, a column whose values all
      parse as numbers is regression, else classification. Default: every other column.
    - ``allow_outside_root``: read clip paths that are absolute or climb out of the root
      with ``..`` (default false: they are refused, each with a problem naming its line;
      when true, each is read with a warning).
    Classification values become indices into the sorted class names (`Task.targets`).
    Clips that exist but are not readable media (a directory, a symlink loop, a text file,
    no read permission) keep their path and get a problem saying exactly that.
    """

    def __init__(
        self,
        root: str | Path,
        strict: bool = True,
        labels: str = "labels.csv",
        path_column: str | None = None,
        split_column: str | None = None,
        group_column: str | None = None,
        targets: Mapping[str, str | None] | Sequence[str] | str | None = None,
        allow_outside_root: bool = False,
    ) -> None:
        super().__init__(root, strict)
        self.allow_outside_root = _as_bool(allow_outside_root, "allow_outside_root")
        self.labels_path = self.root / labels
        if not self.labels_path.is_file():
            raise MissingFileError(f"no {labels} in {self.root}; a clips dataset needs a labels CSV with a clip path column", self.labels_path)
        rows = read_csv_rows(self.labels_path, lambda line, message: self._bad_line(self.labels_path, line, message))
        header = [h.strip() for h in rows[0][1]] if rows else []
        self._rows = [(line, row) for line, row in rows[1:] if any(cell.strip() for cell in row)]
        if not header:
            raise DatasetError("the labels CSV is empty; expected a header line", self.labels_path, 1)
        self.columns = tuple(header)
        self.path_column = self._column(path_column, "path_column") if path_column else next((c for c in header if c.lower() in PATH_COLUMNS), header[0])
        if split_column:
            self.split_column = self._column(split_column, "split_column")
        else:
            self.split_column = "split" if "split" in header else None
        self.group_column = self._column(group_column, "group_column") if group_column else None
        self._targets = self._resolve_targets(targets)
        self._values: dict[str, np.ndarray] = {}

    def _column(self, name: str, option: str) -> str:
        if name not in self.columns:
            raise DatasetError(f"{option} {name!r} is not a column of the labels CSV; columns: {', '.join(self.columns)}", self.labels_path, 1)
        return name

    def _resolve_targets(self, targets: Any) -> tuple[Target, ...]:
        declared: dict[str, str | None] = {}
        if targets is None:
            used = {self.path_column, self.split_column, self.group_column}
            declared = {c: None for c in self.columns if c not in used}
        elif isinstance(targets, str):
            for item in (t.strip() for t in targets.split(",")):
                if item:
                    name, _, kind = item.partition(":")
                    declared[name.strip()] = kind.strip() or None
        elif isinstance(targets, Mapping):
            declared = dict(targets)
        else:
            declared = {str(t): None for t in targets}
        if not declared:
            raise DatasetError("no target columns: pass targets='col1,col2' (or col:classification / col:regression)", self.labels_path)
        index = {c: i for i, c in enumerate(self.columns)}
        result = []
        for name, kind in declared.items():
            self._column(name, "target")
            cells = [row[index[name]].strip() for _, row in self._rows if index[name] < len(row)]
            present = [c for c in cells if c]
            if kind is None:
                kind = REGRESSION if present and all(_is_number(c) for c in present) else CLASSIFICATION
            if kind not in (CLASSIFICATION, REGRESSION):
                raise DatasetError(f"target {name!r} has kind {kind!r}; expected 'classification' or 'regression'")
            classes = tuple(sorted(set(present))) if kind == CLASSIFICATION else None
            result.append(Target(name, kind, classes))
        return tuple(result)

    @property
    def task(self) -> Task:
        return Task("clips", "video", self._targets)

    def _build_manifest(self) -> list[VideoEntry]:
        index = {c: i for i, c in enumerate(self.columns)}
        entries = []
        for line, row in self._rows:
            if len(row) != len(self.columns):
                self._bad_line(self.labels_path, line, f"has {len(row)} fields, the header has {len(self.columns)}")
                continue
            clip = row[index[self.path_column]].strip().replace("\\", "/")
            if not clip:
                self._bad_line(self.labels_path, line, f"empty {self.path_column!r} cell")
                continue
            values = self._row_values(row, index, line, clip)
            if values is None:
                continue
            audio, problem = self._media(clip, line)
            video = audio if audio is not None and audio.suffix.lower() in VIDEO_EXTENSIONS else None
            split = row[index[self.split_column]].strip() if self.split_column else DEFAULT_SPLIT
            group = row[index[self.group_column]].strip() if self.group_column else None
            self._values[clip] = values
            entries.append(VideoEntry(id=clip, split=split or DEFAULT_SPLIT, video=video, audio=audio, group=group, problem=problem))
        return entries

    def _media(self, clip: str, line: int) -> tuple[Path | None, str | None]:
        """The clip's file (kept when it exists but is not readable media) and what is wrong with it, if anything."""
        path, refusal = resolve_in_root(self.root, clip, self.allow_outside_root)
        if refusal is not None:
            logger.warning("%s:%d: %s", self.labels_path, line, refusal)
            self.problems.append(Problem(self.labels_path, line, refusal, clip))
            return None, refusal
        found = self._resolve(path)
        if found is None:
            self._missing(path, f"missing clip (labels.csv line {line})", clip)
            return None, f"missing clip (labels.csv line {line})"
        try:
            check_file(found)
        except MediaError as exc:
            self._missing(found, f"{exc.cause} (labels.csv line {line}). {exc.hint}", clip)
            return found, None  # decoding names the same cause
        return found, None

    def _row_values(self, row: list[str], index: dict[str, int], line: int, clip: str) -> np.ndarray | None:
        values = np.full(len(self._targets), math.nan)
        for k, target in enumerate(self._targets):
            cell = row[index[target.name]].strip()
            if not cell:
                continue  # a missing label stays NaN
            if target.kind == CLASSIFICATION:
                values[k] = target.classes.index(cell)
            elif _is_number(cell):
                values[k] = float(cell)
            else:
                self._bad_line(self.labels_path, line, f"{target.name} of {clip!r} is {cell!r}; expected a number (regression target)", clip)
                return None
        return values

    def _resolve(self, path: Path) -> Path | None:
        if os.path.lexists(path):  # whatever is there (a file, a folder, a loop): check_file says what
            return path
        if not path.suffix:
            # Some label files name clips without the extension (CREMA-D's ratings use the stem).
            found = sorted(p for p in path.parent.glob(path.name + ".*") if p.suffix.lower() in SUPPORTED_EXTENSIONS)
            if found:
                return found[0]
        return None

    def video_labels(self, split: str | None = None) -> VideoLabels:
        """Every listed clip's targets (NaN where a cell is empty)."""
        entries = self.manifest(split)
        values = np.stack([self._values[e.id] for e in entries]) if entries else np.zeros((0, len(self._targets)))
        return VideoLabels(tuple(e.id for e in entries), values, self.task.target_names)


def _is_number(text: str) -> bool:
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False


