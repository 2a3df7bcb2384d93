"""Manifest types, the adapter base class and the adapter registry.

An adapter turns a dataset root into a manifest (one `VideoEntry` per video) and
serves its labels, transcripts and face crops:

    from affectstore.datasets import get_adapter
    ds = get_adapter("bah", "/data/ABAW-8th-BAH-train-data")
    for entry in ds.manifest("val"):
        labels = ds.frame_labels(entry.id)       # FrameLabels: frames, times, values, valid
        segments = ds.transcript(entry.id)       # [Segment(start, end, text)]
        crops = ds.face_crops(entry.id)          # FaceCrops: frames, times, paths
"""

from __future__ import annotations

import csv
import difflib
import inspect
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

logger = logging.getLogger(__name__)

CLASSIFICATION = "classification"
REGRESSION = "regression"


# ----------------------------------------------------------------------------- errors


class DatasetError(ValueError):
    """A dataset root, file or line that cannot be read as the adapter expects.

    ``file`` and ``line`` (1-based) say where, when known; the message says what was
    expected and how to fix it.
    """

    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None) -> None:
        self.file = Path(file) if file is not None else None
        self.line = line
        self.reason = message
        where = f"{file}:{line}: " if file is not None and line is not None else f"{file}: " if file is not None else ""
        super().__init__(where + message)


class AnnotationError(DatasetError):
    """A line of a label, split or transcript file that cannot be parsed."""


class MissingFileError(DatasetError, FileNotFoundError):
    """A file or folder the dataset layout requires is not there."""


class NotProvidedError(DatasetError):
    """The dataset (or this video) has no such data, e.g. transcripts for EMI or frame labels for a test video."""


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class VideoEntry:
    """One video (or clip) of a dataset.

    - ``id``: stable, unique within the dataset; may contain ``/`` and spaces (BAH ids
      are the video path relative to ``videos/``; clips ids the path in labels.csv).
    - ``split``: e.g. "train", "valid"/"val", "test", or "all" for clips without splits.
    - ``video``: file to read frames from; None if the dataset has none for this id.
    - ``audio``: file to read audio from (an mp3 copy, the video itself, or the base
      video shared by Aff-Wild2 ``_left``/``_right`` ids); None if absent.
    - ``faces``: folder of face crops, None if absent.
    - ``duration``: seconds, where the dataset states it (None: decode to find out).
    - ``n_label_frames``: number of frame-level label lines (None for video-level data).
    - ``group``: speaker or subject, for grouped splits (BAH subject, RAVDESS actor).
    - ``problem``: why the dataset lists this video but ``audio``/``video`` is None
      (e.g. "missing clip", "path leaves the dataset root"); None when nothing is wrong.
      A file that exists but cannot be decoded (a directory, a symlink loop, a text file)
      keeps its path, so that decoding reports exactly what is wrong with it.
    """

    id: str
    split: str
    video: Path | None = None
    audio: Path | None = None
    faces: Path | None = None
    duration: float | None = None
    n_label_frames: int | None = None
    group: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Target:
    """One label column: ``kind`` is "classification" (values are indices into ``classes``) or "regression"."""

    name: str
    kind: str
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Task:
    """What a dataset asks for: name, ``level`` ("video" or "frame"), targets and the challenge metric."""

    name: str
    level: str
    targets: tuple[Target, ...]
    metric: str | None = None

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets)

    @property
    def kind(self) -> str:
        """"classification", "regression", or "mixed" (clips with both kinds of target)."""
        kinds = {t.kind for t in self.targets}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def describe(self) -> str:
        parts = []
        for t in self.targets:
            classes = f" [{', '.join(t.classes)}]" if t.classes else ""
            parts.append(f"{t.name} ({t.kind}{classes})")
        metric = f", metric {self.metric}" if self.metric else ""
        return f"task {self.name}: {self.level}-level; targets {'; '.join(parts)}{metric}"


@dataclass(frozen=True)
class VideoLabels:
    """Video-level labels: ``values[i, k]`` is target ``target_names[k]`` of video ``ids[i]``.

    ``values`` is float64 (N, K); classification targets hold class indices (see
    `Task.targets`), NaN marks a missing label.
    """

    ids: tuple[str, ...]
    values: np.ndarray
    target_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)

    def as_dict(self) -> dict[str, np.ndarray]:
        """Video id -> its (K,) label row."""
        return {vid: self.values[i] for i, vid in enumerate(self.ids)}


@dataclass(frozen=True)
class FrameLabels:
    """Frame-level labels of one video.

    ``frames`` (T,) int64 frame numbers as the dataset counts them, ``times`` (T,) float64
    seconds from the video start, ``values`` (T, K) float32 (class index or value; the
    dataset's invalid code where ``valid`` is False), ``valid`` (T,) bool.
    """

    video_id: str
    frames: np.ndarray
    times: np.ndarray
    values: np.ndarray
    valid: np.ndarray
    target_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class Segment:
    """A transcript segment: ``start``/``end`` in seconds from the video start, and its text."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class FaceCrops:
    """A video's face-crop files sorted by frame number, with their times.

    ``frames`` (N,) int64 the number in each file name, ``times`` (N,) float64 seconds,
    ``paths`` the files. Frames without a crop are simply absent.
    """

    video_id: str
    frames: np.ndarray
    times: np.ndarray
    paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Load the crops: ``(times, images)`` with images (N, H, W, 3) uint8 RGB (see `load_face_crops`)."""
        from affectstore.media.faces import load_face_crops

        return load_face_crops(self.paths, self.times, size=size)


@dataclass(frozen=True)
class Problem:
    """Something wrong in a dataset: the file, the 1-based line where known, and what is wrong."""

    file: Path
    line: int | None
    message: str
    video_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.message}"


# ----------------------------------------------------------------------------- base class


class DatasetAdapter(ABC):
    """Base of the dataset adapters.

    ``strict=True`` (the default) raises `AnnotationError` at the first unreadable line;
    ``strict=False`` records it in ``problems`` (with file and line) and skips or
    invalidates it, which is what ``affect data check`` uses. Missing media never
    raises: the entry's path is None and a `Problem` is recorded.
    """

    name: ClassVar[str] = ""
    has_faces: ClassVar[bool] = False

    def __init__(self, root: str | Path, strict: bool = True) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise MissingFileError(f"dataset root {str(self.root)!r} is not a folder; pass the folder that holds the {self.name} files")
        self.strict = _as_bool(strict, "strict")
        self.problems: list[Problem] = []
        self._skipped: list[Problem] = []
        self._entries: list[VideoEntry] | None = None
        self._by_id: dict[str, VideoEntry] = {}

    # -- manifest
    @property
    @abstractmethod
    def task(self) -> Task:
        """The task the labels serve."""

    @abstractmethod
    def _build_manifest(self) -> list[VideoEntry]:
        """Read the layout and return the entries (called once, then cached)."""

    def manifest(self, split: str | None = None) -> list[VideoEntry]:
        """All entries, or those of ``split``; in a stable order (split files' order, else sorted)."""
        if self._entries is None:
            entries = self._build_manifest()
            self._log_skipped(self._skipped)
            seen: dict[str, VideoEntry] = {}
            for e in entries:
                if e.id in seen:
                    raise DatasetError(f"video id {e.id!r} appears twice (splits {seen[e.id].split!r} and {e.split!r}); ids must be unique", self.root)
                seen[e.id] = e
            self._entries, self._by_id = entries, seen
        if split is None:
            return list(self._entries)
        if split not in self.splits:
            raise DatasetError(f"unknown split {split!r} for {self.name} at {self.root}; known splits: {', '.join(self.splits) or '(none)'}")
        return [e for e in self._entries if e.split == split]

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names in manifest order."""
        return tuple(dict.fromkeys(e.split for e in self.manifest()))

    def entry(self, video_id: str) -> VideoEntry:
        """The entry of ``video_id``; the error suggests close ids."""
        self.manifest()
        try:
            return self._by_id[video_id]
        except KeyError:
            close = difflib.get_close_matches(video_id, list(self._by_id), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise DatasetError(f"no video {video_id!r} in {self.name} at {self.root}{hint}") from None

    def frame_count(self, video_id: str) -> int | None:
        """Frames in the video of ``video_id`` (container count, else decoded); None without a readable video.

        Submissions list every frame of a test video from this count, crops or not."""
        from affectstore.media.errors import MediaError
        from affectstore.media.video import video_frame_count

        video = self.entry(video_id).video
        if video is None:
            return None
        cache = self.__dict__.setdefault("_frame_counts", {})
        if str(video) not in cache:
            try:
                cache[str(video)] = video_frame_count(video)
            except MediaError as exc:
                logger.warning("%s: cannot count the frames of %s (%s)", video_id, video, exc)
                cache[str(video)] = None
        return cache[str(video)]

    # -- labels and side data (adapters override what they have)
    def video_labels(self, split: str | None = None) -> VideoLabels:
        """Video-level labels of ``split`` (all splits if None), for labelled videos only."""
        raise NotProvidedError(f"{self.name} has no video-level labels; use frame_labels(video_id)")

    def frame_labels(self, video_id: str) -> FrameLabels:
        """Frame-level labels of one video."""
        raise NotProvidedError(f"{self.name} has no frame-level labels; use video_labels()")

    def transcript(self, video_id: str) -> list[Segment]:
        """Transcript segments of one video, times in seconds from the video start."""
        raise NotProvidedError(f"{self.name} ships no transcripts; transcribe the audio (e.g. the whisper extractor)")

    def face_crops(self, video_id: str) -> FaceCrops:
        """Face crops of one video, sorted by frame number (empty when the dataset has none)."""
        self.entry(video_id)
        return FaceCrops(video_id, np.zeros(0, np.int64), np.zeros(0, np.float64), ())

    # -- helpers for subclasses
    def _bad_line(self, file: Path, line: int | None, message: str, video_id: str | None = None) -> None:
        """Raise in strict mode; else record the problem and let the caller skip the line."""
        if self.strict:
            raise AnnotationError(message + " (pass strict=False to skip bad lines)", file, line)
        logger.warning("%s:%s: %s (skipped: strict=false)", file, line, message)
        problem = Problem(Path(file), line, message, video_id)
        self.problems.append(problem)
        self._skipped.append(problem)

    def _log_skipped(self, skipped: list[Problem]) -> None:
        """One summary warning per file: how many lines strict=false skipped, and which."""
        by_file: dict[Path, list[int | None]] = {}
        for problem in skipped:
            by_file.setdefault(problem.file, []).append(problem.line)
        for file, lines in by_file.items():
            numbers = ", ".join(str(n) for n in lines if n is not None)
            logger.warning(
                "%s: skipped %d bad line(s) (strict=false): %s; fix them, or pass strict=true to stop at the first",
                file, len(lines), f"lines {numbers}" if numbers else "see the warnings above",
            )

    def _missing(self, path: Path, message: str, video_id: str | None = None) -> None:
        logger.debug("%s: %s", path, message)
        self.problems.append(Problem(path, None, message, video_id))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"


# ----------------------------------------------------------------------------- helpers


def numbered_files(folder: Path, pattern: str) -> tuple[np.ndarray, tuple[Path, ...]]:
    """Files in ``folder`` whose name fully matches ``pattern`` (one integer group), sorted by that integer.

    Sorting is numeric ("2.jpg" before "10.jpg"), never by text. Other files are ignored.
    """
    regex = re.compile(pattern, re.IGNORECASE)
    found: list[tuple[int, Path]] = []
    if folder.is_dir():
        for path in folder.iterdir():
            m = regex.fullmatch(path.name)
            if m and path.is_file():
                found.append((int(m.group(1)), path))
    found.sort(key=lambda item: item[0])
    return np.asarray([n for n, _ in found], dtype=np.int64), tuple(p for _, p in found)


def read_text(path: Path) -> str:
    """A text file's content as UTF-8 (a byte-order mark allowed); other encodings get an error naming file and line."""
    try:
        data = path.read_bytes()
    except PermissionError:
        raise DatasetError("permission denied: this user may not read the file (fix its permissions)", path) from None
    except IsADirectoryError:
        raise DatasetError("is a directory, not a text file", path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} cannot be decoded (the file looks "
            f"latin-1 or Windows-1252 encoded); save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} -o "
            f"{path.stem}.utf8{path.suffix}`",
            path, line,
        ) from None


def read_csv_rows(
    path: Path, on_error: Callable[[int, str], None], multiline: bool = False
) -> list[tuple[int, list[str]]]:
    """``(line, row)`` for every row of a CSV file, ``line`` being the 1-based line where the row starts.

    A quote that never closes, or (unless ``multiline``: cells with line breaks are
    allowed) a quoted field that runs over several lines, is reported through
    ``on_error(line, message)`` at the line where it starts; parsing then resumes on the
    next line, so one stray quote costs one row, not the rest of the file. (``on_error``
    may raise to stop instead.)
    """
    lines = read_text(path).splitlines(keepends=True)
    rows: list[tuple[int, list[str]]] = []
    start = 0
    while start < len(lines):
        reader = csv.reader(lines[start:], strict=True)
        consumed = 0
        try:
            for row in reader:
                first = start + consumed + 1
                spans = reader.line_num - consumed
                if spans > 1 and not multiline:
                    raise csv.Error(
                        f"unbalanced quote: a quoted field runs from line {first} to line {first + spans - 1} "
                        "(cells of this file cannot hold line breaks)"
                    )
                consumed = reader.line_num
                rows.append((first, row))
            break
        except csv.Error as exc:
            first = start + consumed + 1
            message = str(exc)
            if message == "unexpected end of data":
                message = f"unterminated quote: the quoted field that starts on line {first} never closes"
            on_error(first, message)
            start = first  # resume on the line after the bad row's first line
    return rows


def resolve_in_root(root: Path, relative: str, allow_outside: bool = False) -> tuple[Path | None, str | None]:
    """``root / relative`` when it stays inside ``root``; else (None, why) unless ``allow_outside``.

    The check is on the path as written (absolute, drive letters, ``..`` that climb out);
    symlinks inside the root may point anywhere, as datasets often link to storage.
    """
    text = relative.replace("\\", "/")
    absolute = text.startswith("/") or bool(re.match(r"^[A-Za-z]:/", text))
    climbs = os.path.normpath(text).replace("\\", "/").split("/")[0] == ".."
    if absolute or climbs:
        if not allow_outside:
            kind = "is absolute" if absolute else "leaves the dataset root"
            return None, f"path {relative!r} {kind}; refusing to read outside {root} (pass allow_outside_root=true to allow it)"
        logger.warning("%s: reading %r outside the dataset root (allow_outside_root=true)", root, relative)
        return Path(os.path.normpath(text if absolute else root / text)), None
    return root / os.path.normpath(text), None


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "yes", "false", "0", "no"}:
        return value.lower() in {"true", "1", "yes"}
    raise ValueError(f"{name} must be true or false. Got {value!r} instead.")


def as_float_option(value: Any, name: str, *, allow_none: bool = True, positive: bool = True) -> float | None:
    """Options may come from the command line as strings: convert and validate."""
    if value is None and allow_none:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number. Got {value!r} instead.") from None
    if positive and not number > 0:
        raise ValueError(f"{name} must be a positive number. Got {value!r} instead.")
    return number


def stable_unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# ----------------------------------------------------------------------------- registry

_ADAPTERS: dict[str, type[DatasetAdapter]] = {}


def register_adapter(name: str) -> Callable[[type[DatasetAdapter]], type[DatasetAdapter]]:
    """Class decorator: register an adapter under ``name``. Registering a name twice is an error."""

    def decorate(cls: type[DatasetAdapter]) -> type[DatasetAdapter]:
        if name in _ADAPTERS and _ADAPTERS[name] is not cls:
            raise ValueError(f"dataset adapter {name!r} is already registered ({_ADAPTERS[name].__qualname__})")
        cls.name = name
        _ADAPTERS[name] = cls
        return cls

    return decorate


def available_adapters() -> list[str]:
    """Names accepted by `get_adapter`."""
    return sorted(_ADAPTERS)


def get_adapter(name: str, root: str | Path, **options: Any) -> DatasetAdapter:
    """The adapter ``name`` (emi, bah, affwild2, clips) over the dataset at ``root``.

    ``options`` go to the adapter's constructor (e.g. ``task="va"`` for affwild2,
    ``targets="emotion,intensity"`` for clips); unknown names and options raise errors
    that list the accepted ones.
    """
    try:
        cls = _ADAPTERS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(available_adapters())}") from None
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in {"self", "root"}]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DatasetError(f"unknown option(s) {', '.join(map(repr, unknown))} for dataset {name!r}; accepted options: {', '.join(accepted)}")
    return cls(root, **options)


def parse_split_order(splits: Sequence[str], preferred: Sequence[str] = ("train", "valid", "val", "test")) -> list[str]:
    """Sort split names: the usual ones first in their usual order, others after, alphabetically."""
    rank = {s: i for i, s in enumerate(preferred)}
    return sorted(splits, key=lambda s: (rank.get(s, len(rank)), s))
