"""Builders of tiny datasets in each real layout, and of good and broken media files.

Everything is generated (PyAV encodes the media, Pillow the face crops) into a folder the
caller gives, usually pytest's ``tmp_path``; nothing is downloaded and nothing is
committed. Defaults keep a whole dataset under a second to build: a few videos of 1-2 s
at 64x48 pixels.

Planting signal: every dataset builder takes ``plant=True``, which makes the media carry
the first label, so a later test can check that a feature (loudness, brightness) predicts
it: the tone's amplitude is ``0.05 + 0.9 * y`` and the frames' and face crops' grey level
is ``round(255 * y)``, where ``y`` is the video's first target scaled to [0, 1] (the frame's
label for frame-level data, the class index / (n_classes - 1) for classification).
"""

from __future__ import annotations

import csv
import fractions
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

logger = logging.getLogger(__name__)

__all__ = [
    "BuiltDataset",
    "make_affwild2_dataset",
    "make_bah_dataset",
    "make_clips_dataset",
    "make_emi_dataset",
    "make_empty_file",
    "make_face_crop",
    "make_media",
    "make_not_media",
    "make_truncated_file",
]

# extension -> (video codec, audio codec, container format or None to infer)
_CODECS = {
    ".mp4": ("libx264", "aac"),
    ".m4v": ("libx264", "aac"),
    ".mov": ("libx264", "aac"),
    ".mkv": ("libx264", "aac"),
    ".avi": ("mpeg4", "libmp3lame"),
    ".flv": ("flv", "libmp3lame"),
    ".m4a": (None, "aac"),
    ".mp3": (None, "libmp3lame"),
    ".wav": (None, "pcm_s16le"),
    ".flac": (None, "flac"),
}
_FLV_MP3_RATES = (11025, 22050, 44100)


@dataclass
class BuiltDataset:
    """What a builder wrote, for tests to compare against.

    - ``root``: the dataset root to pass to the adapter.
    - ``splits``: split -> ids in the order the adapter lists them.
    - ``video_labels``: id -> (K,) float array of video-level targets.
    - ``frame_labels``: task ("bah", "expr", "va") -> id -> (T, K) float array, one row per
      annotated frame in frame order, invalid codes (-1 / -5) included.
    - ``transcripts``: id -> [(start, end, text)] with absolute times (resets undone).
    - ``missing_crops``: id -> frame numbers whose face crop was left out.
    - ``invalid_frames``: task -> id -> frame numbers written with the invalid code.
    """

    root: Path
    splits: dict[str, list[str]] = field(default_factory=dict)
    video_labels: dict[str, np.ndarray] = field(default_factory=dict)
    frame_labels: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    transcripts: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)
    missing_crops: dict[str, list[int]] = field(default_factory=dict)
    invalid_frames: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [i for ids in self.splits.values() for i in ids]


# ----------------------------------------------------------------------------- media


def make_media(
    path: str | Path,
    duration: float = 1.0,
    *,
    audio: bool = True,
    video: bool = True,
    sample_rate: int = 16_000,
    channels: int = 1,
    fps: float = 25.0,
    size: tuple[int, int] = (64, 48),
    frequency: float = 440.0,
    amplitude: float = 0.3,
    signal: np.ndarray | None = None,
    brightness: float | Callable[[float], float] | None = None,
) -> Path:
    """Encode one media file at ``path``; the extension picks the container and codecs.

    .mp4/.m4v/.mov/.mkv: H.264 + AAC; .avi: MPEG-4 + MP3; .flv: FLV1 + MP3 (``sample_rate``
    must be 11025, 22050 or 44100); .m4a: AAC; .mp3; .wav (16-bit PCM); .flac. Audio
    extensions never get a video stream. The video is a white square moving left to right
    over a grey background (``brightness`` in [0, 1], or a function of time; default 0.25),
    ``round(duration * fps)`` frames with pts ``i / fps``. The audio is a sine of
    ``frequency`` Hz and ``amplitude``, ``round(duration * sample_rate)`` samples, the same
    in every channel, or ``signal`` (1-D float, at ``sample_rate``; its length then sets
    the audio duration). ``audio=False`` / ``video=False`` leave that stream out.
    Returns ``path``.
    """
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _CODECS:
        raise ValueError(f"cannot generate {suffix!r} files; supported: {', '.join(sorted(_CODECS))}")
    vcodec, acodec = _CODECS[suffix]
    video = video and vcodec is not None
    if not (audio or video):
        raise ValueError(f"{path.name}: nothing to write (audio=False and no video for {suffix!r})")
    if audio and suffix == ".flv" and sample_rate not in _FLV_MP3_RATES:
        raise ValueError(f"MP3 in FLV needs sample_rate in {_FLV_MP3_RATES}. Got {sample_rate} instead.")
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2. Got {channels} instead.")
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = int(size[0]) // 2 * 2, int(size[1]) // 2 * 2  # yuv420p needs even sizes

    if signal is not None:
        samples = np.asarray(signal, dtype=np.float32).reshape(-1)
    else:
        t = np.arange(round(duration * sample_rate)) / sample_rate
        samples = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)

    container = av.open(str(path), mode="w")
    try:
        vstream = astream = None
        if video:
            vstream = container.add_stream(vcodec, rate=fractions.Fraction(fps).limit_denominator(1001))
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        if audio:
            astream = container.add_stream(acodec, rate=sample_rate)
            astream.layout = "mono" if channels == 1 else "stereo"
        if vstream is not None:
            n_frames = max(1, round(duration * fps))
            for i in range(n_frames):
                time = i / fps
                level = brightness(time) if callable(brightness) else (0.25 if brightness is None else brightness)
                image = np.full((height, width, 3), int(round(255 * level)), dtype=np.uint8)
                side = max(2, height // 3)
                x = int((width - side) * i / max(1, n_frames - 1))
                image[height // 3 : height // 3 + side, x : x + side] = 255
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                frame.time_base = fractions.Fraction(1, 1) / vstream.codec_context.framerate
                for packet in vstream.encode(frame):
                    container.mux(packet)
            for packet in vstream.encode(None):
                container.mux(packet)
        if astream is not None:
            planes = np.tile(samples, (channels, 1))
            step = 1024
            for start in range(0, planes.shape[1], step):
                block = np.ascontiguousarray(planes[:, start : start + step])
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=astream.layout.name)
                frame.sample_rate = sample_rate
                frame.pts = start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    finally:
        container.close()
    return path


def make_empty_file(path: str | Path) -> Path:
    """Write a zero-byte file at ``path`` (decoding raises `EmptyMediaError`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def make_truncated_file(path: str | Path, keep: float = 0.5, **media_options: Any) -> Path:
    """Generate a file with `make_media` (``media_options``) and cut it to ``keep`` of its bytes.

    An .mp4 cut this way loses its index (written at the end), so opening it fails with
    `CorruptMediaError`.
    """
    if not 0.0 < keep < 1.0:
        raise ValueError(f"keep must be in (0, 1). Got {keep} instead.")
    path = make_media(path, **media_options)
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def make_not_media(path: str | Path, text: str = "this is not a media file\n") -> Path:
    """Write plain text at ``path``: with a media extension decoding raises `CorruptMediaError`,
    with another extension (.txt) `UnsupportedMediaError`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_face_crop(path: str | Path, level: float = 0.5, size: tuple[int, int] = (16, 16)) -> Path:
    """Write a small jpg face crop: grey ``level`` in [0, 1] with a darker square in the middle."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    image = np.full((height, width, 3), int(round(255 * level)), dtype=np.uint8)
    image[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] //= 2
    Image.fromarray(image).save(path, quality=90)
    return path


# ----------------------------------------------------------------------------- EMI

EMI_HEADER = ("Filename", "Admiration", "Amusement", "Determination", "Empathic Pain", "Excitement", "Joy")
EMI_FIRST_TEST_ID = 12660


def make_emi_dataset(
    root: str | Path,
    n_train: int = 3,
    n_valid: int = 2,
    n_test: int = 1,
    duration: float = 1.0,
    n_faces: int = 11,
    labels: np.ndarray | None = None,
    plant: bool = False,
    seed: int = 0,
) -> BuiltDataset:
    """Write a tiny Hume-Vidmimic2 (EMI) root.

    Writes ``train_split.csv`` and ``valid_split.csv`` (header ``Filename,Admiration,...,Joy``,
    one row per video, 6 decimals), and per video ``raw/<id>.mp4`` (H.264 + AAC 22.05 kHz,
    ``duration`` s), ``audio/<id>.mp3`` (16 kHz mono) and ``face_images/<id>/<n>.jpg`` for
    n = 0..n_faces-1 (11 by default, so "10.jpg" sorts after "9.jpg" only numerically).
    Train ids count from 00000, valid ids follow, test ids from 12660 under ``test_data/``
    (same sub-folders, no labels). ``labels``: (n_train + n_valid, 6) in [0, 1], in id
    order; random when None.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    n_labelled = n_train + n_valid
    if labels is None:
        labels = np.round(rng.uniform(0, 1, size=(n_labelled, 6)), 6)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.shape != (n_labelled, 6):
        raise ValueError(f"labels must have shape ({n_labelled}, 6). Got {labels.shape} instead.")
    built = BuiltDataset(root)
    ids = [f"{k:05d}" for k in range(n_labelled)]
    for split, chunk, filename in (("train", ids[:n_train], "train_split.csv"), ("valid", ids[n_train:], "valid_split.csv")):
        built.splits[split] = chunk
        root.mkdir(parents=True, exist_ok=True)
        with (root / filename).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(EMI_HEADER)
            for vid in chunk:
                y = labels[ids.index(vid)]
                built.video_labels[vid] = y
                writer.writerow([vid, *(f"{v:.6f}" for v in y)])
    test_ids = [f"{EMI_FIRST_TEST_ID + k:05d}" for k in range(n_test)]
    if n_test:
        built.splits["test"] = test_ids
    for vid in ids + test_ids:
        base = root if vid in ids else root / "test_data"
        y = float(built.video_labels[vid][0]) if (plant and vid in built.video_labels) else None
        _write_video(base / "raw" / f"{vid}.mp4", duration, y, sample_rate=22_050, fps=25.0)
        make_media(base / "audio" / f"{vid}.mp3", duration, video=False, sample_rate=16_000, amplitude=_amplitude(y))
        for n in range(n_faces):
            make_face_crop(base / "face_images" / vid / f"{n}.jpg", level=y if y is not None else 0.3 + 0.4 * n / max(1, n_faces - 1))
    return built


# ----------------------------------------------------------------------------- BAH

BAH_TRANSCRIPT_WORDS = ("Well,", "I", "guess,", "maybe", "yes", "but", "no,", "really", "I", "am", "not", "sure")


def bah_video_path(k: int, spaces: bool) -> str:
    """The BAH-style video path of the k-th generated video; ``spaces`` gives the older subjects' form."""
    subject = 82557 + k
    if spaces:
        return f"{subject}/Visite 1/{subject}_Question_{k + 1}_2024-08-22 14-46-{k:02d}_Video.mp4"
    return f"{subject}/Visite_2/{subject}_Question_{k + 1}_2024-09-01_10-00-{k:02d}_Video.mp4"


def make_bah_dataset(
    root: str | Path,
    n_train: int = 2,
    n_val: int = 1,
    duration: float = 2.0,
    fps: float = 24.0,
    reset: float = 0.8,
    frame_labels: dict[str, np.ndarray] | None = None,
    plant: bool = False,
    seed: int = 0,
) -> BuiltDataset:
    """Write a tiny BAH root (the train-data layout).

    Videos alternate between paths with spaces (``82557/Visite 1/82557_Question_1_2024-08-22
    14-46-00_Video.mp4``) and without. Per video: ``videos/<path>`` (H.264 at ``fps`` + AAC
    48 kHz stereo, ``duration`` s), ``cropped-aligned-faces/<path>/frame-N.jpg`` for every
    frame N = 0..round(duration * fps) - 1, ``transcription/<path>/<stem>.yml`` with ``text``
    and ``chunks`` of ``reset / 2`` s whose timestamps restart at 0 every ``reset`` s (the
    ~30 s resets, shrunk), ``annotation.yml`` (path -> frame_annotation [[<path>/frame-N.jpg,
    0|1], ...], fr_detailed_ah, time_detailed_ah, global_ah) and ``default-split/train.txt``
    / ``val.txt`` lines ``<path>,<0|1>,<transcript with commas>``. Frame labels are runs of
    0s and 1s (or ``frame_labels[path]``, one 0/1 per frame); the video label is 1 if any
    frame is 1.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    n_frames = max(1, round(duration * fps))
    built = BuiltDataset(root, frame_labels={"bah": {}})
    annotation: dict[str, Any] = {}
    paths = [bah_video_path(k, spaces=(k % 2 == 0)) for k in range(n_train + n_val)]
    built.splits = {"train": paths[:n_train], "val": paths[n_train:]}
    (root / "default-split").mkdir(parents=True, exist_ok=True)
    for split, chunk in built.splits.items():
        lines = []
        for vid in chunk:
            if frame_labels is not None and vid in frame_labels:
                y = np.asarray(frame_labels[vid], dtype=np.int64).reshape(-1)
                if y.shape != (n_frames,):
                    raise ValueError(f"frame_labels[{vid!r}] must hold {n_frames} values. Got {y.shape} instead.")
            else:
                y = np.zeros(n_frames, dtype=np.int64)
                if rng.random() < 0.7:  # a positive run somewhere in most videos
                    a = int(rng.integers(0, n_frames // 2))
                    y[a : a + int(rng.integers(1, n_frames // 2 + 1))] = 1
            built.frame_labels["bah"][vid] = y.astype(np.float64).reshape(-1, 1)
            label = int(y.any())
            built.video_labels[vid] = np.array([float(label)])
            stem = Path(vid).stem
            _write_video(
                root / "videos" / vid, duration, None, sample_rate=48_000, channels=2, fps=fps,
                brightness=(lambda t, y=y: float(y[min(int(t * fps), n_frames - 1)])) if plant else None,
            )
            for n in range(n_frames):
                make_face_crop(root / "cropped-aligned-faces" / vid / f"frame-{n}.jpg", level=float(y[n]) if plant else 0.5)
            annotation[vid] = {
                "frame_annotation": [[f"{vid}/frame-{n}.jpg", int(y[n])] for n in range(n_frames)],
                "fr_detailed_ah": [],
                "time_detailed_ah": [],
                "global_ah": label,
            }
            segments, chunks = _bah_transcript(duration, reset)
            built.transcripts[vid] = segments
            text = " ".join(s[2] for s in segments)
            transcript_file = root / "transcription" / vid / f"{stem}.yml"
            transcript_file.parent.mkdir(parents=True, exist_ok=True)
            transcript_file.write_text(yaml.safe_dump({"text": text, "chunks": chunks}, sort_keys=False, allow_unicode=True))
            lines.append(f"{vid},{label},{text}")
        (root / "default-split" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "annotation.yml").write_text(yaml.safe_dump(annotation, sort_keys=False, default_flow_style=None))
    return built


def _bah_transcript(duration: float, reset: float) -> tuple[list[tuple[float, float, str]], list[dict[str, Any]]]:
    seg = reset / 2
    segments, chunks = [], []
    k = 0
    while k * seg < duration - 1e-9:
        start, end = round(k * seg, 3), round(min((k + 1) * seg, duration), 3)
        word = BAH_TRANSCRIPT_WORDS[k % len(BAH_TRANSCRIPT_WORDS)]
        window = int(np.floor(start / reset + 1e-9)) * reset
        segments.append((start, end, word))
        chunks.append({"language": "english", "text": f" {word}", "timestamp": [round(start - window, 3), round(end - window, 3)]})
        k += 1
    return segments, chunks


# ----------------------------------------------------------------------------- Aff-Wild2

AFFWILD2_EXPR_HEADER = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
AFFWILD2_VA_HEADER = "valence,arousal"
AFFWILD2_AU_HEADER = "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"


def make_affwild2_dataset(
    root: str | Path,
    n_train: int = 2,
    n_val: int = 1,
    duration: float = 1.0,
    fps: float = 30.0,
    left_right: bool = True,
    n_missing_crops: int = 2,
    n_invalid: int = 2,
    plant: bool = False,
    seed: int = 0,
) -> BuiltDataset:
    """Write a tiny Aff-Wild2 root with EXPR, VA and AU annotations for the same videos.

    Videos ``<k>-30-64x48.mp4`` (H.264 at ``fps`` + AAC 44.1 kHz, ``duration`` s) go in
    ``videos/``; with ``left_right`` one more train video ``99-60-64x48.mp4`` goes in
    ``new_vids/`` and is annotated twice, as ``99-60-64x48_left`` and ``_right``.
    Per annotated id: ``EXPR_Recognition_Challenge/<Train_Set|Validation_Set>/<id>.txt``
    (header, then one integer 0..7 per frame) and ``VA_Estimation_Challenge/.../<id>.txt``
    (header ``valence,arousal``, then ``v,a`` with 3 decimals) and ``AU_Detection_Challenge/.../<id>.txt``
    (header ``AU1,...,AU26``, then twelve 0/1 per frame, each AU on in runs), with ``n_invalid`` frames
    written as -1 (EXPR, all twelve AUs) and -5,-5 (VA); face crops ``cropped_aligned/<id>/{i:05d}.jpg`` for
    frames i = 1..round(duration * fps) except ``n_missing_crops`` of them (never frame 1).
    A trailing blank line ends each annotation file, as in the release.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    n_frames = max(1, round(duration * fps))
    built = BuiltDataset(root, frame_labels={"expr": {}, "va": {}, "au": {}}, invalid_frames={"expr": {}, "va": {}, "au": {}})
    au_rng = np.random.default_rng(seed + 1000)  # its own stream: EXPR/VA draws stay as they were
    names = [f"{k + 1}-30-64x48" for k in range(n_train + n_val)]
    train, val = names[:n_train], names[n_train:]
    videos: list[tuple[str, Path]] = [(n, root / "videos" / f"{n}.mp4") for n in names]
    if left_right:
        base = "99-60-64x48"
        videos.append((base, root / "new_vids" / f"{base}.mp4"))
        train = train + [f"{base}_left", f"{base}_right"]
    built.splits = {"train": sorted(train), "val": sorted(val)}
    expr_all: dict[str, np.ndarray] = {}
    for vid in built.ids:
        expr = rng.integers(0, 8, size=n_frames).astype(np.float64)
        va = np.round(rng.uniform(-1, 1, size=(n_frames, 2)), 3)
        invalid = sorted(rng.choice(np.arange(1, n_frames + 1), size=min(n_invalid, n_frames), replace=False).tolist())
        for i in invalid:
            expr[i - 1] = -1
            va[i - 1] = -5
        built.frame_labels["expr"][vid] = expr.reshape(-1, 1)
        built.frame_labels["va"][vid] = va
        built.invalid_frames["expr"][vid] = invalid
        built.invalid_frames["va"][vid] = invalid
        # AUs switch on in runs (a frame-level label a smoothing filter can help with).
        au = np.zeros((n_frames, 12))
        for k in range(12):
            for _ in range(int(au_rng.integers(1, 3))):
                a = int(au_rng.integers(0, n_frames))
                au[a : a + int(au_rng.integers(3, max(4, n_frames // 3))), k] = 1
        for i in invalid:
            au[i - 1] = -1
        built.frame_labels["au"][vid] = au
        built.invalid_frames["au"][vid] = invalid
        expr_all[vid] = expr
        folder = "Train_Set" if vid in built.splits["train"] else "Validation_Set"
        _write_lines(root / "EXPR_Recognition_Challenge" / folder / f"{vid}.txt", AFFWILD2_EXPR_HEADER, [str(int(v)) for v in expr])
        _write_lines(root / "VA_Estimation_Challenge" / folder / f"{vid}.txt", AFFWILD2_VA_HEADER, [f"{v:.3f},{a:.3f}" for v, a in va])
        _write_lines(root / "AU_Detection_Challenge" / folder / f"{vid}.txt", AFFWILD2_AU_HEADER,
                     [",".join(str(int(x)) for x in row) for row in au])
        candidates = np.arange(2, n_frames + 1)
        missing = sorted(rng.choice(candidates, size=min(n_missing_crops, len(candidates)), replace=False).tolist())
        built.missing_crops[vid] = missing
        for i in range(1, n_frames + 1):
            if i not in missing:
                level = max(expr[i - 1], 0) / 7 if plant else 0.5
                make_face_crop(root / "cropped_aligned" / vid / f"{i:05d}.jpg", level=level)
    for name, path in videos:
        labels = expr_all.get(name, expr_all.get(f"{name}_left"))
        _write_video(
            path, duration, None, sample_rate=44_100, fps=fps,
            brightness=(lambda t, y=labels: float(max(y[min(int(t * fps), n_frames - 1)], 0) / 7)) if plant else None,
        )
    return built


def _write_lines(path: Path, header: str, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(lines) + "\n\n")


# ----------------------------------------------------------------------------- clips


def make_clips_dataset(
    root: str | Path,
    classes: Sequence[str] = ("happy", "sad"),
    n_per_class: int = 3,
    n_speakers: int = 2,
    extensions: Sequence[str] = (".wav", ".mp4", ".mp3", ".flac"),
    duration: float = 1.0,
    with_split: bool = True,
    plant: bool = False,
    seed: int = 0,
) -> BuiltDataset:
    """Write a folder of clips with a ``labels.csv``.

    Clips ``<speaker>/clip_<k>.<ext>`` (extensions cycle through ``extensions``; video
    types get a moving square, all get a tone), and ``labels.csv`` with columns
    ``clip,split,speaker,emotion,arousal``: ``emotion`` one of ``classes`` (classification),
    ``arousal`` a number in [0, 1] (regression), ``split`` "train" for the first speaker's
    clips and "test" for the others (column left out when ``with_split`` is False).
    ``video_labels`` holds ``[class index in sorted(classes), arousal]`` per clip path.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    built = BuiltDataset(root)
    rows = []
    sorted_classes = sorted(classes)
    k = 0
    for c, name in enumerate(classes):
        for j in range(n_per_class):
            speaker = f"spk{(j % n_speakers) + 1}"
            ext = extensions[k % len(extensions)]
            clip = f"{speaker}/clip_{k}{ext}"
            arousal = round(float(rng.uniform(0, 1)), 3)
            y = sorted_classes.index(name) / max(1, len(classes) - 1)
            make_media(
                root / clip, duration, sample_rate=44_100 if ext in {".flv", ".avi"} else 16_000,
                amplitude=_amplitude(y if plant else None), brightness=y if plant else None,
            )
            split = "train" if speaker == "spk1" else "test"
            rows.append((clip, split, speaker, name, f"{arousal}"))
            built.splits.setdefault(split if with_split else "all", []).append(clip)
            built.video_labels[clip] = np.array([sorted_classes.index(name), arousal], dtype=np.float64)
            k += 1
    with (root / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip", "split", "speaker", "emotion", "arousal"] if with_split else ["clip", "speaker", "emotion", "arousal"])
        for clip, split, speaker, name, arousal in rows:
            writer.writerow([clip, split, speaker, name, arousal] if with_split else [clip, speaker, name, arousal])
    # The adapter lists clips in labels.csv order, grouped by split only in the manifest filter.
    return built


# ----------------------------------------------------------------------------- helpers


def _amplitude(y: float | None) -> float:
    return 0.3 if y is None else 0.05 + 0.9 * float(y)


def _write_video(
    path: Path,
    duration: float,
    y: float | None,
    *,
    sample_rate: int,
    fps: float,
    channels: int = 1,
    brightness: float | Callable[[float], float] | None = None,
) -> None:
    if brightness is None and y is not None:
        brightness = y
    make_media(path, duration, sample_rate=sample_rate, channels=channels, fps=fps, amplitude=_amplitude(y), brightness=brightness)
