"""Aff-Wild2 (ABAW): frame-level expressions (task "expr"), valence/arousal ("va") or action units ("au").

Layout (paths relative to the root):
    EXPR_Recognition_Challenge/{Train_Set,Validation_Set}/<video>.txt
    VA_Estimation_Challenge/{Train_Set,Validation_Set}/<video>.txt
    AU_Detection_Challenge/{Train_Set,Validation_Set}/<video>.txt
    cropped_aligned/<video>/{i:05d}.jpg    face of frame i (some frames have none)
    videos/, new_vids/                     the videos (<video>.mp4 or .avi)
Line 0 of an annotation file is a header; line i >= 1 labels frame i. EXPR: an integer
0..7, -1 = invalid; VA: "valence,arousal" in [-1, 1], -5 = invalid; AU: header
AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26, then twelve 0/1, -1 = invalid. Ids ending
``_left``/``_right`` are two people in one video and share the base video's audio.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from affectstore.datasets.base import (
    CLASSIFICATION,
    REGRESSION,
    DatasetAdapter,
    DatasetError,
    FaceCrops,
    FrameLabels,
    MissingFileError,
    NotProvidedError,
    Target,
    Task,
    VideoEntry,
    as_float_option,
    numbered_files,
    register_adapter,
)

logger = logging.getLogger(__name__)

EXPR_CLASSES = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
AFFECTNET_TO_EXPR = (5, 0, 2, 3, 4, 6, 7, 1)
"""Column order that maps AffectNet 8-class logits to Aff-Wild2's EXPR order: ``logits[:, AFFECTNET_TO_EXPR]``."""
AU_NAMES = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26")
EXPR_INVALID = -1
VA_INVALID = -5.0
AU_INVALID = -1
CHALLENGE_DIRS = {
    "expr": ("EXPR_Recognition_Challenge", "EXPR_Classification_Challenge"),
    "va": ("VA_Estimation_Challenge",),
    "au": ("AU_Detection_Challenge",),
}
SPLIT_DIRS = {"Train_Set": "train", "Validation_Set": "val"}
VIDEO_DIRS = ("videos", "new_vids")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
PERSON_SUFFIXES = ("_left", "_right")


def base_video_id(video_id: str) -> str:
    """The id of the video file: ``"10-60-1280x720_right"`` -> ``"10-60-1280x720"``."""
    for suffix in PERSON_SUFFIXES:
        if video_id.endswith(suffix):
            return video_id[: -len(suffix)]
    return video_id


@register_adapter("affwild2")
class AffWild2Adapter(DatasetAdapter):
    """Aff-Wild2 for ``task="expr"`` (default), ``task="va"`` or ``task="au"``. Splits "train", "val" and,
    with ``test_list`` (a file of video names, one per line), "test".

    Frame ``i`` (line ``i``, crop ``{i:05d}.jpg``) is at ``(i - 1) / fps`` seconds, ``fps``
    being the video stream's average rate read from its header (or the ``fps`` option;
    ``default_fps`` when the video is missing, with a warning).
    """

    has_faces = True

    def __init__(
        self,
        root: str | Path,
        strict: bool = True,
        task: str = "expr",
        fps: float | None = None,
        default_fps: float = 30.0,
        test_list: str | Path | None = None,
    ) -> None:
        super().__init__(root, strict)
        if task not in CHALLENGE_DIRS:
            raise DatasetError(f"task must be one of {', '.join(map(repr, CHALLENGE_DIRS))}. Got {task!r} instead.")
        self.task_name = task
        self.fps = as_float_option(fps, "fps")
        self.default_fps = as_float_option(default_fps, "default_fps", allow_none=False)
        self.test_list = Path(test_list) if test_list else None
        self._annotation_files: dict[str, Path] = {}
        self._fps_cache: dict[str, float] = {}
        self.challenge_dir = self._find_challenge_dir()

    def _find_challenge_dir(self) -> Path:
        names = CHALLENGE_DIRS[self.task_name]
        for parent in [self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())]:
            for name in names:
                if (parent / name).is_dir():
                    return parent / name
        raise MissingFileError(
            f"no {' or '.join(names)} folder in {self.root} or its sub-folders; pass the Aff-Wild2 root "
            f"that holds the annotations (task={self.task_name!r})"
        )

    @property
    def task(self) -> Task:
        if self.task_name == "expr":
            return Task("expr", "frame", (Target("expression", CLASSIFICATION, EXPR_CLASSES),), metric="macro_f1")
        if self.task_name == "au":
            return Task("au", "frame", tuple(Target(a, CLASSIFICATION, ("0", "1")) for a in AU_NAMES), metric="au_mean_f1")
        return Task("va", "frame", (Target("valence", REGRESSION), Target("arousal", REGRESSION)), metric="mean_ccc")

    # -- manifest
    def _build_manifest(self) -> list[VideoEntry]:
        videos = self._video_index()
        listed: list[tuple[str, str, Path | None]] = []
        for folder, split in SPLIT_DIRS.items():
            split_dir = self.challenge_dir / folder
            if not split_dir.is_dir():
                self._missing(split_dir, f"missing annotation folder: no {split} videos")
                continue
            for txt in sorted(split_dir.glob("*.txt")):
                listed.append((txt.stem, split, txt))
        if self.test_list is not None:
            if not self.test_list.is_file():
                raise MissingFileError("test_list file not found", self.test_list)
            names = [line.strip() for line in self.test_list.read_text(encoding="utf-8-sig").splitlines()]
            listed += [(Path(n).stem if n.endswith(".txt") else n, "test", None) for n in names if n]
        entries = []
        for vid, split, txt in listed:
            if txt is not None:
                self._annotation_files[vid] = txt
            video = videos.get(vid) or videos.get(base_video_id(vid))
            if video is None:
                self._missing(
                    self.root / VIDEO_DIRS[0] / f"{base_video_id(vid)}.mp4",
                    f"missing video for {split} id {vid} (looked in {', '.join(VIDEO_DIRS)} for {base_video_id(vid)}.*)",
                    vid,
                )
            faces = self.root / "cropped_aligned" / vid
            if not faces.is_dir():
                self._missing(faces, f"missing face-crop folder for {split} id {vid}", vid)
                faces = None
            entries.append(
                VideoEntry(
                    id=vid,
                    split=split,
                    video=video,
                    audio=video,
                    faces=faces,
                    n_label_frames=_count_label_lines(txt) if txt is not None else None,
                    group=base_video_id(vid),
                )
            )
        return entries

    def _video_index(self) -> dict[str, Path]:
        index: dict[str, Path] = {}
        for name in VIDEO_DIRS:
            folder = self.root / name
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                    if path.stem in index:
                        logger.warning("%s: video %s also at %s; using the first", self.root, path.stem, index[path.stem])
                        continue
                    index[path.stem] = path
        return index

    def video_fps(self, video_id: str) -> float:
        """Frames per second used to time frame labels and crops of ``video_id``."""
        if self.fps is not None:
            return self.fps
        entry = self.entry(video_id)
        if entry.video is None:
            logger.warning("%s: no video for %s, timing frames at default_fps=%s", self.root, video_id, self.default_fps)
            return self.default_fps
        key = str(entry.video)
        if key not in self._fps_cache:
            from affectstore.media.probe import probe

            rate = probe(entry.video).fps
            if not rate:
                logger.warning("%s: no frame rate in the header, using default_fps=%s", entry.video, self.default_fps)
                rate = self.default_fps
            self._fps_cache[key] = rate
        return self._fps_cache[key]

    # -- labels
    def frame_labels(self, video_id: str) -> FrameLabels:
        """Labels of every annotated frame (line i = frame i); invalid lines (-1 / -5) have ``valid`` False."""
        entry = self.entry(video_id)
        path = self._annotation_files.get(video_id)
        if path is None:
            raise NotProvidedError(f"{video_id!r} ({entry.split}) has no annotation file")
        n_values = {"expr": 1, "va": 2, "au": len(AU_NAMES)}[self.task_name]
        invalid = {"expr": EXPR_INVALID, "va": VA_INVALID, "au": AU_INVALID}[self.task_name]
        header_text = {"expr": ",".join(EXPR_CLASSES), "va": "valence,arousal", "au": ",".join(AU_NAMES)}[self.task_name]
        with path.open(encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
        if not lines:
            raise DatasetError("annotation file is empty; expected a header line then one line per frame", path, 1)
        header = [h.strip() for h in lines[0].split(",")]
        if _is_number(header[0]):
            self._bad_line(path, 1, f"line 1 should be the header ({header_text}), got {lines[0]!r}", video_id)
        # Trailing blank lines are common at the end of these files; blank lines elsewhere are errors.
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        frames = np.arange(1, len(lines), dtype=np.int64)
        values = np.full((len(frames), n_values), invalid, dtype=np.float32)
        valid = np.zeros(len(frames), dtype=bool)
        for i in range(1, len(lines)):
            text = lines[i].strip()
            row = self._parse(text, n_values)
            if row is None:
                expected = {"expr": "an integer 0..7 or -1", "va": "'valence,arousal' in [-1, 1] or -5",
                            "au": "twelve comma-separated 0/1 (or -1)"}[self.task_name]
                self._bad_line(path, i + 1, f"frame {i} of {video_id!r} is {text!r}; expected {expected}", video_id)
                continue
            values[i - 1] = row
            valid[i - 1] = all(v != invalid for v in row)
        names = {"expr": ("expression",), "va": ("valence", "arousal"), "au": AU_NAMES}[self.task_name]
        fps = self.video_fps(video_id)
        return FrameLabels(video_id, frames, (frames - 1) / fps, values, valid, names)

    @staticmethod
    def _parse(text: str, n_values: int) -> list[float] | None:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != n_values:
            return None
        if n_values == len(AU_NAMES):
            try:
                ints = [int(p) for p in parts]
            except ValueError:
                return None
            return [float(v) for v in ints] if all(v in (0, 1, AU_INVALID) for v in ints) else None
        if n_values == 1:
            try:
                value = int(parts[0])
            except ValueError:
                return None
            return [float(value)] if value == EXPR_INVALID or 0 <= value < len(EXPR_CLASSES) else None
        try:
            row = [float(p) for p in parts]
        except ValueError:
            return None
        if any(math.isnan(v) or not (v == VA_INVALID or -1.0 <= v <= 1.0) for v in row):
            return None
        return row

    def face_crops(self, video_id: str) -> FaceCrops:
        """``{i:05d}.jpg`` files sorted by i; times ``(i - 1) / fps``. Missing frames are absent."""
        entry = self.entry(video_id)
        if entry.faces is None:
            return FaceCrops(video_id, np.zeros(0, np.int64), np.zeros(0, np.float64), ())
        frames, paths = numbered_files(entry.faces, r"(\d+)\.jpg")
        return FaceCrops(video_id, frames, (frames - 1) / self.video_fps(video_id), paths)


def _count_label_lines(path: Path) -> int:
    with path.open("rb") as f:
        lines = [line for line in f.read().splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    return max(len(lines) - 1, 0)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
