"""BAH: behavioural ambivalence/hesitancy (frame-level 0/1, plus a video-level 0/1).

Layout (paths relative to the root; train root ``ABAW-8th-BAH-train-data/``, test root
``ABAW-8th-BAH-test-data/`` with the same sub-folders):
    videos/<video path>                            <subject>/<Visite N>/<subject>_Question_<k>_<date>_<time>_Video.mp4
    cropped-aligned-faces/<video path>/frame-N.jpg  N from 0, 24 fps
    transcription/<video path>/<stem>.yml          text + chunks [{language, text, timestamp: [start, end]}]
    default-split/train.txt, val.txt               video_path,label,transcript (no header)
    annotation.yml                                 video path -> {frame_annotation: [[<video path>/frame-N.jpg, 0|1], ...], ...}
Video paths may contain spaces. The video id is the video path as the split file writes it.
Later releases of BAH use ``Videos/`` and ``split/`` instead and write split-file paths with the
``Videos/`` prefix (``Videos/82711/Visite_1/..._Video.mp4``), faces and transcripts then lying
under ``cropped-aligned-faces/Videos/...`` and ``transcription/Videos/...``: both layouts are read.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from affectstore.datasets.base import (
    CLASSIFICATION,
    DatasetAdapter,
    DatasetError,
    FaceCrops,
    FrameLabels,
    MissingFileError,
    NotProvidedError,
    Segment,
    Target,
    Task,
    VideoEntry,
    VideoLabels,
    as_float_option,
    numbered_files,
    parse_split_order,
    register_adapter,
)

logger = logging.getLogger(__name__)

FPS = 24.0
SPLIT_DIRS = ("default-split", "split")  # the ABAW-8th layout, then the later releases'
VIDEO_DIRS = ("videos", "Videos")
RESET_TOLERANCE = 0.25  # seconds of overlap between chunks tolerated before calling it a reset
_FRAME_RE = re.compile(r"frame-(\d+)\.jpg", re.IGNORECASE)
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: annotation.yml holds ~10^5 frames


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """Safe YAML loading that also reads ``!!python/tuple`` (as a list).

    Transcripts made with the Hugging Face whisper pipeline hold ``timestamp`` tuples; dumped
    with ``yaml.dump`` they are tagged ``!!python/tuple``, which safe loaders reject. Only
    this one tag is added: a plain sequence, no Python object is ever constructed.
    """


_Loader.add_constructor("tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node, deep=True))


def _load_yaml_mapping(path: Path, expected: str) -> dict:
    """Parse `path` with the safe loader; a syntax error or a non-mapping names the file (and line)."""
    with path.open("rb") as f:
        try:
            data = yaml.load(f, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise DatasetError(f"not valid YAML ({getattr(exc, 'problem', exc)})", path, mark.line + 1 if mark else None) from exc
    if not isinstance(data, dict):
        raise DatasetError(f"expected {expected}, got {type(data).__name__}", path)
    return data


@register_adapter("bah")
class BahAdapter(DatasetAdapter):
    """BAH. Splits from ``default-split/*.txt`` or ``split/*.txt`` (file stem = split name); a
    root without split files (the test data) lists every video under ``videos/`` as split "test".

    Options: ``fps`` (24) times frames as ``N / fps``; ``reset_period`` (seconds, default
    None) changes how transcript timestamp resets are undone (see `transcript`).
    """

    has_faces = True

    def __init__(self, root: str | Path, strict: bool = True, fps: float = FPS, reset_period: float | None = None) -> None:
        super().__init__(root, strict)
        self.fps = as_float_option(fps, "fps", allow_none=False)
        self.reset_period = as_float_option(reset_period, "reset_period")
        self._video_label: dict[str, int] = {}
        self._split_text: dict[str, str] = {}
        self._annotation: dict[str, Any] | None = None
        if not any((self.root / d).exists() for d in (*SPLIT_DIRS, "annotation.yml", *VIDEO_DIRS)):
            raise MissingFileError(
                "not a BAH root: found none of default-split/, annotation.yml, videos/; "
                "pass the folder that holds them (e.g. ABAW-8th-BAH-train-data)"
            )

    @property
    def task(self) -> Task:
        return Task("bah", "frame", (Target("ah", CLASSIFICATION, ("0", "1")),), metric="weighted_f1")

    # -- manifest
    def _build_manifest(self) -> list[VideoEntry]:
        split_dir = next((self.root / d for d in SPLIT_DIRS if any((self.root / d).glob("*.txt"))), self.root / SPLIT_DIRS[0])
        split_files = sorted(split_dir.glob("*.txt")) if split_dir.is_dir() else []
        listed: list[tuple[str, str]] = []
        if split_files:
            for split in parse_split_order([p.stem for p in split_files]):
                for vid in self._read_split(split_dir / f"{split}.txt"):
                    listed.append((vid, split))
        else:
            videos = next((self.root / d for d in VIDEO_DIRS if (self.root / d).is_dir()), None)
            if videos is None:
                raise MissingFileError("no default-split/*.txt (or split/*.txt) and no videos/ folder: nothing to list", self.root)
            # ids as a split file would write them: relative to videos/, or with the Videos/ prefix.
            base = self.root / "videos" if videos.name == "videos" else self.root
            listed = [(p.relative_to(base).as_posix(), "test") for p in sorted(videos.rglob("*.mp4"))]
            logger.info("%s: no split files, listing %d videos under videos/ as split 'test'", self.root, len(listed))
        annotation = self._annotations() if (self.root / "annotation.yml").is_file() else {}
        entries = []
        for vid, split in listed:
            video = self._video_path(vid)
            faces = self.root / "cropped-aligned-faces" / vid
            if not video.is_file():
                self._missing(video, f"missing video for {split} id {vid}", vid)
                video = None
            if not faces.is_dir():
                self._missing(faces, f"missing face-crop folder for {split} id {vid}", vid)
                faces = None
            frames = annotation.get(vid, {}).get("frame_annotation") if isinstance(annotation.get(vid), dict) else None
            entries.append(
                VideoEntry(
                    id=vid,
                    split=split,
                    video=video,
                    audio=video,
                    faces=faces,
                    n_label_frames=len(frames) if isinstance(frames, list) else None,
                    group=vid.split("/", 1)[0],
                )
            )
        return entries

    def _read_split(self, path: Path) -> list[str]:
        ids = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            for number, raw in enumerate(f, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    continue
                # The transcript (third field) contains commas itself: split on the first two only.
                parts = line.split(",", 2)
                if len(parts) < 2:
                    self._bad_line(path, number, f"expected 'video_path,label,transcript', got {line[:80]!r}")
                    continue
                vid, label = self._normalise_id(parts[0].strip()), parts[1].strip()
                if label not in {"0", "1"}:
                    self._bad_line(path, number, f"label of {vid!r} is {label!r}; expected 0 or 1", vid)
                    continue
                if vid in self._video_label:
                    self._bad_line(path, number, f"video {vid!r} is listed twice", vid)
                    continue
                self._video_label[vid] = int(label)
                self._split_text[vid] = parts[2].strip() if len(parts) > 2 else ""
                ids.append(vid)
        return ids

    def _normalise_id(self, vid: str) -> str:
        vid = vid.replace("\\", "/").lstrip("./")
        vid = vid.removeprefix("videos/")
        if not vid.lower().endswith(".mp4") and self._video_path(f"{vid}.mp4").is_file():
            vid += ".mp4"
        return vid

    def _video_path(self, vid: str) -> Path:
        """``videos/<vid>``, or ``<root>/<vid>`` where the id carries its folder (``Videos/...``)."""
        for candidate in (self.root / "videos" / vid, self.root / vid):
            if candidate.is_file():
                return candidate
        return self.root / "videos" / vid

    def _annotations(self) -> dict[str, Any]:
        if self._annotation is None:
            path = self.root / "annotation.yml"
            if not path.is_file():
                self._annotation = {}
                return self._annotation
            data = _load_yaml_mapping(path, "a mapping 'video path -> annotations'")
            self._annotation = {self._normalise_id(str(k)): v for k, v in data.items()}
        return self._annotation

    # -- labels
    def video_labels(self, split: str | None = None) -> VideoLabels:
        """The split files' video-level 0/1 label (target "ah")."""
        entries = [e for e in self.manifest(split) if e.id in self._video_label]
        values = np.asarray([[self._video_label[e.id]] for e in entries], dtype=np.float64).reshape(len(entries), 1)
        return VideoLabels(tuple(e.id for e in entries), values, ("ah",))

    def split_transcript(self, video_id: str) -> str:
        """The transcript text the split file gives for ``video_id`` ("" if none)."""
        self.entry(video_id)
        return self._split_text.get(video_id, "")

    def frame_labels(self, video_id: str) -> FrameLabels:
        """Frame labels from annotation.yml, sorted by frame number; times ``N / fps``."""
        self.entry(video_id)
        path = self.root / "annotation.yml"
        record = self._annotations().get(video_id)
        if record is None:
            raise NotProvidedError(f"annotation.yml has no frame labels for {video_id!r}", path)
        items = record.get("frame_annotation") if isinstance(record, dict) else None
        if not isinstance(items, list):
            raise DatasetError(f"{video_id!r} has no 'frame_annotation' list", path, _find_line(path, video_id))
        frames, values = [], []
        for k, item in enumerate(items):
            problem = None
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                problem = f"frame_annotation item {k} of {video_id!r} is {item!r}; expected [<video path>/frame-N.jpg, 0|1]"
            else:
                name, label = str(item[0]), item[1]
                m = _FRAME_RE.fullmatch(name.rsplit("/", 1)[-1])
                if m is None:
                    problem = f"frame path {name!r} of {video_id!r} does not end in frame-<N>.jpg"
                elif label not in (0, 1) or isinstance(label, bool):
                    problem = f"label of {name!r} is {label!r}; expected 0 or 1"
            if problem is not None:
                self._bad_line(path, _find_line(path, str(item[0]) if isinstance(item, (list, tuple)) and item else video_id), problem, video_id)
                continue
            frames.append(int(m.group(1)))
            values.append(label)
        order = np.argsort(np.asarray(frames, dtype=np.int64), kind="stable")
        frames_arr = np.asarray(frames, dtype=np.int64)[order]
        return FrameLabels(
            video_id=video_id,
            frames=frames_arr,
            times=frames_arr / self.fps,
            values=np.asarray(values, dtype=np.float32)[order].reshape(-1, 1),
            valid=np.ones(len(frames_arr), dtype=bool),
            target_names=("ah",),
        )

    # -- transcripts and faces
    def transcript_path(self, video_id: str) -> Path:
        """Where the transcript yml of ``video_id`` is (``transcription/<video path>/<stem>.yml``)."""
        self.entry(video_id)
        stem = Path(video_id).stem
        folder = self.root / "transcription" / video_id
        candidates = [folder / f"{stem}.yml", self.root / "transcription" / Path(video_id).with_suffix("") / f"{stem}.yml"]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        for folder in (candidates[0].parent, candidates[1].parent):
            found = sorted(folder.glob("*.yml")) if folder.is_dir() else []
            if len(found) == 1:
                return found[0]
        raise MissingFileError(f"no transcript for {video_id!r}", candidates[0])

    def transcript(self, video_id: str) -> list[Segment]:
        """Transcript chunks with times from the video start.

        Chunk timestamps restart at 0 about every 30 s. A chunk that starts before the
        previous chunk's start (or more than 0.25 s before its end) begins a new window; its offset is the previous
        chunk's absolute end (or, with ``reset_period`` set, one more period). A missing
        end (whisper pipelines write ``[start, None]`` for a last chunk that runs to the end of
        the audio) takes the next chunk's start; for the last chunk, the video's duration
        from its header (its own start where the video is missing or unreadable).
        """
        path = self.transcript_path(video_id)
        data = _load_yaml_mapping(path, "a mapping with 'text' and 'chunks'")
        chunks = data.get("chunks")
        if not chunks:
            text = str(data.get("text") or "").strip()
            return [Segment(0.0, math.nan, text)] if text else []
        raw: list[tuple[float, float | None, str]] = []
        for k, chunk in enumerate(chunks):
            stamp = chunk.get("timestamp") if isinstance(chunk, dict) else None
            try:
                start = float(stamp[0])
                end = None if stamp[1] is None else float(stamp[1])
            except (TypeError, ValueError, IndexError):
                self._bad_line(path, _find_line(path, "timestamp", occurrence=k), f"chunk {k} has timestamp {stamp!r}; expected [start, end] in seconds", video_id)
                continue
            raw.append((start, end, str(chunk.get("text") or "").strip()))
        segments: list[Segment] = []
        offset = 0.0
        windows = 0
        prev_start = prev_end = None
        for k, (start, end, text) in enumerate(raw):
            # Within a window chunks follow each other; one that starts before the previous
            # chunk started, or clearly before it ended, belongs to the next window.
            restarted = prev_start is not None and (
                start < prev_start or (prev_end is not None and start < prev_end - RESET_TOLERANCE)
            )
            if restarted:
                windows += 1
                if self.reset_period is not None:
                    offset = windows * self.reset_period
                else:
                    offset = segments[-1].end if segments and not math.isnan(segments[-1].end) else segments[-1].start
            prev_start, prev_end = start, end
            if end is None:
                nxt = raw[k + 1][0] if k + 1 < len(raw) and raw[k + 1][0] >= start else None
                end = nxt if nxt is not None else start
                if k == len(raw) - 1:
                    end = max(end, self._media_duration(video_id) - offset)
            segments.append(Segment(start + offset, max(end, start) + offset, text))
        return segments

    def _media_duration(self, video_id: str) -> float:
        """The video's duration from its header; 0.0 where it is missing or unreadable."""
        from affectstore.media.errors import MediaError
        from affectstore.media.probe import probe

        video = self.entry(video_id).video
        if video is None:
            return 0.0
        try:
            duration = probe(video).duration
        except MediaError as exc:
            logger.warning("%s: cannot read the duration of %s (%s); the last transcript chunk ends at its start", video_id, video, exc.cause)
            return 0.0
        return float(duration or 0.0)

    def face_crops(self, video_id: str) -> FaceCrops:
        """``frame-N.jpg`` files sorted by N; times ``N / fps``."""
        entry = self.entry(video_id)
        if entry.faces is None:
            return FaceCrops(video_id, np.zeros(0, np.int64), np.zeros(0, np.float64), ())
        frames, paths = numbered_files(entry.faces, r"frame-(\d+)\.jpg")
        return FaceCrops(video_id, frames, frames / self.fps, paths)


def _find_line(path: Path, needle: str, occurrence: int = 0) -> int | None:
    """1-based line of the ``occurrence``-th line containing ``needle`` (only used to report problems)."""
    seen = 0
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if needle in line:
                    if seen == occurrence:
                        return number
                    seen += 1
    except OSError:
        return None
    return None
