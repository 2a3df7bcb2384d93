"""Opening media files with PyAV and translating its failures into typed errors."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from affectstore.media.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaPermissionError,
    NoAudioStreamError,
    NotAFileError,
    NoVideoStreamError,
    UnsupportedMediaError,
)

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".flv", ".avi", ".mkv", ".mov", ".webm", ".m4v"})
SUPPORTED_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS


class MissingMediaError(MediaError, FileNotFoundError):
    """The media file does not exist."""

    hint = "Check the dataset root and that the file was downloaded or extracted."


@dataclass(frozen=True)
class MediaInfo:
    """What a file's header says about it (no decoding).

    ``duration`` is the container's duration in seconds (None if unknown); ``fps`` is the
    video stream's average rate, which is metadata and may be wrong (EMI): use frame
    timestamps from `sample_frames` for timing.
    """

    path: Path
    duration: float | None
    has_audio: bool
    has_video: bool
    sample_rate: int | None = None
    channels: int | None = None
    audio_codec: str | None = None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None


def check_file(path: str | Path) -> Path:
    """Raise the `MediaError` that says what is wrong with ``path`` before any decoding.

    Missing file or broken link (`MissingMediaError`), directory, symlink loop or special
    file (`NotAFileError`), unsupported extension (`UnsupportedMediaError`), zero bytes
    (`EmptyMediaError`), not readable by this user (`MediaPermissionError`).
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise MissingMediaError(path, f"broken symlink: it points to {os.readlink(path)!r}, which does not exist") from None
        raise MissingMediaError(path, "file not found") from None
    except PermissionError:
        raise MediaPermissionError(path, "permission denied: a folder on the path cannot be searched by this user") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotAFileError(path, "symlink loop: the link never resolves to a file") from None
        if exc.errno == errno.ENOTDIR:
            raise MissingMediaError(path, "file not found (a part of the path is a file, not a folder)") from None
        raise MediaError(path, f"cannot read the file's status ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise NotAFileError(path, "is a directory, not a media file")
    if not stat.S_ISREG(info.st_mode):
        raise NotAFileError(path, "is not a regular file (a device, socket or pipe)")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise UnsupportedMediaError(path, f"extension {path.suffix or '(none)'!r} is not a supported media type")
    if info.st_size == 0:
        raise EmptyMediaError(path, "file is empty (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise MediaPermissionError(path, "permission denied: this user may not read the file") from None
    return path


@contextlib.contextmanager
def open_media(path: str | Path, need: str | None = None) -> Iterator[av.container.InputContainer]:
    """Open ``path`` with PyAV, raising typed errors; ``need`` is "audio", "video" or None.

    PyAV errors raised while the caller decodes inside the ``with`` block become
    `CorruptMediaError` too.
    """
    path = check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except PermissionError as exc:  # av.error.PermissionError is both; the file became unreadable
        raise MediaPermissionError(path, f"permission denied ({_ffmpeg_message(exc)})") from exc
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(path, f"cannot open the container ({_ffmpeg_message(exc)})") from exc
    try:
        if need == "audio" and not container.streams.audio:
            raise NoAudioStreamError(path, "the file has no audio stream")
        if need == "video" and not container.streams.video:
            raise NoVideoStreamError(path, "the file has no video stream")
        try:
            yield container
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(path, f"decoding failed ({_ffmpeg_message(exc)})") from exc
    finally:
        container.close()


def probe(path: str | Path) -> MediaInfo:
    """Read a file's header: streams, duration, rates. Raises `MediaError` subclasses."""
    with open_media(path) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        video = container.streams.video[0] if container.streams.video else None
        duration = container.duration / av.time_base if container.duration is not None else None
        info = MediaInfo(
            path=Path(path),
            duration=duration,
            has_audio=audio is not None,
            has_video=video is not None,
            sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            channels=audio.codec_context.channels if audio is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            video_codec=video.codec_context.name if video is not None else None,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            fps=float(video.average_rate) if video is not None and video.average_rate else None,
        )
    return info


def _ffmpeg_message(exc: av.error.FFmpegError) -> str:
    # PyAV puts the file name into str(exc); the strerror alone reads better after our own prefix.
    return getattr(exc, "strerror", None) or str(exc)
