"""EMI: Hume-Vidmimic2 (emotional mimicry intensity), six intensities per video.

Layout (paths relative to the root):
    train_split.csv, valid_split.csv   Filename,Admiration,Amusement,Determination,Empathic Pain,Excitement,Joy
    raw/<id>.mp4                       video with audio
    audio/<id>.mp3                     16 kHz mono copy of the audio (preferred for audio)
    face_images/<id>/<n>.jpg           face crops, about 6 fps, n an integer (sorted numerically)
    test_data/{raw,audio,face_images}/ the test videos, same sub-folders, no labels
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np

from affectstore.datasets.base import (
    REGRESSION,
    DatasetAdapter,
    DatasetError,
    FaceCrops,
    MissingFileError,
    Target,
    Task,
    VideoEntry,
    VideoLabels,
    as_float_option,
    numbered_files,
    register_adapter,
)

logger = logging.getLogger(__name__)

EMI_TARGETS = ("Admiration", "Amusement", "Determination", "Empathic Pain", "Excitement", "Joy")
SPLIT_FILES = {"train": "train_split.csv", "valid": "valid_split.csv"}
ID_DIGITS = 5


@register_adapter("emi")
class EmiAdapter(DatasetAdapter):
    """Hume-Vidmimic2. Splits "train", "valid" (from the CSVs) and "test" (from ``test_data/``).

    Face-crop times: the crops are spread evenly over the video's duration (crop k of N at
    ``k * duration / N``), since the files carry only a running number; pass
    ``face_rate`` (crops per second) to use ``k / face_rate`` instead.
    """

    has_faces = True

    def __init__(self, root: str | Path, strict: bool = True, face_rate: float | None = None) -> None:
        super().__init__(root, strict)
        self.face_rate = as_float_option(face_rate, "face_rate")
        self._labels: dict[str, np.ndarray] = {}
        self._durations: dict[str, float] = {}
        if not any((self.root / f).is_file() for f in SPLIT_FILES.values()) and not (self.root / "test_data").is_dir():
            raise MissingFileError(
                f"not an EMI (Hume-Vidmimic2) root: found none of {', '.join(SPLIT_FILES.values())} or test_data/; "
                "pass the folder that holds train_split.csv"
            )

    @property
    def task(self) -> Task:
        return Task("emi", "video", tuple(Target(t, REGRESSION) for t in EMI_TARGETS), metric="mean_pearson")

    def _build_manifest(self) -> list[VideoEntry]:
        entries: list[VideoEntry] = []
        for split, filename in SPLIT_FILES.items():
            path = self.root / filename
            if not path.is_file():
                self._missing(path, f"split file {filename} not found: no {split} videos")
                continue
            for vid in self._read_split(path):
                entries.append(self._entry(vid, split, self.root))
        test_root = self.root / "test_data"
        if test_root.is_dir():
            ids: set[str] = set()
            for sub, suffix in (("raw", ".mp4"), ("audio", ".mp3")):
                folder = test_root / sub
                if folder.is_dir():
                    ids.update(p.stem for p in folder.iterdir() if p.suffix.lower() == suffix)
            if (test_root / "face_images").is_dir():
                ids.update(p.name for p in (test_root / "face_images").iterdir() if p.is_dir())
            for vid in sorted(ids):
                entries.append(self._entry(vid, "test", test_root))
        return entries

    def _read_split(self, path: Path) -> list[str]:
        ids: list[str] = []
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DatasetError("split file is empty; expected the header Filename," + ",".join(EMI_TARGETS), path, 1)
            header = [h.strip() for h in header]
            missing = [c for c in ("Filename", *EMI_TARGETS) if c not in header]
            if missing:
                raise DatasetError(
                    f"header lacks column(s) {', '.join(map(repr, missing))}; found {','.join(header)}; "
                    f"expected Filename,{','.join(EMI_TARGETS)}",
                    path,
                    1,
                )
            col = {name: header.index(name) for name in ("Filename", *EMI_TARGETS)}
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    self._bad_line(path, line, f"has {len(row)} fields, the header has {len(header)}")
                    continue
                vid = self._normalise_id(row[col["Filename"]].strip())
                values = []
                for name in EMI_TARGETS:
                    cell = row[col[name]].strip()
                    try:
                        value = float(cell)
                    except ValueError:
                        value = math.nan
                    if not 0.0 <= value <= 1.0:
                        self._bad_line(path, line, f"{name} intensity of {vid} is {cell!r}; expected a number in [0, 1]", vid)
                        break
                    values.append(value)
                else:
                    if vid in self._labels:
                        self._bad_line(path, line, f"video {vid} is listed twice", vid)
                        continue
                    self._labels[vid] = np.asarray(values, dtype=np.float64)
                    ids.append(vid)
        return ids

    @staticmethod
    def _normalise_id(raw: str) -> str:
        # Rows may name the file ("00012.mp4") and spreadsheets drop leading zeros ("12"):
        # both mean the five-digit id the media files use.
        stem = Path(raw).stem if Path(raw).suffix.lower() in {".mp4", ".mp3", ".wav"} else raw
        if stem.isdigit() and len(stem) < ID_DIGITS:
            stem = stem.zfill(ID_DIGITS)
        return stem

    def _entry(self, vid: str, split: str, base: Path) -> VideoEntry:
        video = base / "raw" / f"{vid}.mp4"
        audio = base / "audio" / f"{vid}.mp3"
        faces = base / "face_images" / vid
        if not video.is_file():
            self._missing(video, f"missing video for {split} id {vid}", vid)
            video = None
        if not audio.is_file():
            self._missing(audio, f"missing audio copy for {split} id {vid}" + (" (audio is read from the video)" if video else ""), vid)
            audio = video
        if not faces.is_dir():
            self._missing(faces, f"missing face-crop folder for {split} id {vid}", vid)
            faces = None
        return VideoEntry(id=vid, split=split, video=video, audio=audio, faces=faces)

    def video_labels(self, split: str | None = None) -> VideoLabels:
        entries = [e for e in self.manifest(split) if e.id in self._labels]
        values = np.stack([self._labels[e.id] for e in entries]) if entries else np.zeros((0, len(EMI_TARGETS)))
        return VideoLabels(tuple(e.id for e in entries), values, EMI_TARGETS)

    def face_crops(self, video_id: str) -> FaceCrops:
        entry = self.entry(video_id)
        if entry.faces is None:
            return FaceCrops(video_id, np.zeros(0, np.int64), np.zeros(0, np.float64), ())
        frames, paths = numbered_files(entry.faces, r"(\d+)\.(?:jpg|jpeg|png)")
        rank = np.arange(len(paths), dtype=np.float64)
        if self.face_rate is not None:
            times = rank / self.face_rate
        elif len(paths):
            times = rank * self._duration(entry) / len(paths)
        else:
            times = rank
        return FaceCrops(video_id, frames, times, paths)

    def _duration(self, entry: VideoEntry) -> float:
        if entry.id not in self._durations:
            from affectstore.media.audio import audio_duration
            from affectstore.media.errors import MediaError

            sources = list(dict.fromkeys(p for p in (entry.audio, entry.video) if p is not None))
            if not sources:
                raise MissingFileError(
                    f"cannot time the face crops of {entry.id}: it has no video or audio to measure; pass face_rate=<crops per second>",
                    entry.faces,
                )
            for k, source in enumerate(sources):
                try:
                    self._durations[entry.id] = audio_duration(source)
                    break
                except MediaError:
                    # The mp3 copy may be broken where the video is fine: try the next source.
                    if k == len(sources) - 1:
                        raise
                    logger.warning("%s: cannot measure %s, trying %s", entry.id, source, sources[k + 1])
        return self._durations[entry.id]
