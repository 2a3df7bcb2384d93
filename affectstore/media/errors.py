"""Typed errors for media that cannot be read.

Every error carries the file and the cause, and its message says what to do, so a
long extraction run can record the reason per video and go on.
"""

from __future__ import annotations

from pathlib import Path


class MediaError(Exception):
    """A media file that cannot be decoded. Base of the specific media errors.

    Attributes: ``path`` (the file), ``cause`` (what went wrong, in words) and
    ``hint`` (what the user can do about it).
    """

    hint = "Check the file with `ffprobe` or re-encode it (e.g. `ffmpeg -i in out.mp4`)."

    def __init__(self, path: str | Path, cause: str, hint: str | None = None) -> None:
        self.path = Path(path)
        self.cause = cause
        if hint is not None:
            self.hint = hint
        super().__init__(f"{self.path}: {cause}. {self.hint}")

    def __reduce__(self):  # keep the error picklable across process pools
        return (type(self), (self.path, self.cause, self.hint))


class EmptyMediaError(MediaError):
    """The file has zero bytes."""

    hint = "The file is empty (0 bytes): copy or download it again."


class CorruptMediaError(MediaError):
    """The container or its packets cannot be decoded (corrupt or truncated file)."""

    hint = "The file looks corrupt or truncated: copy it again, or re-encode what is readable with ffmpeg."


class NoAudioStreamError(MediaError):
    """The file has no audio stream."""

    hint = "This file has no audio track: use a file with sound, or skip audio extractors for it."


class NoVideoStreamError(MediaError):
    """The file has no video stream."""

    hint = "This file has no video track: use the video file, or skip frame extractors for it."


class NotAFileError(MediaError):
    """The path exists but is not a regular file: a directory, a symlink loop, a device or a pipe."""

    hint = "Point the dataset at the media file itself (fix the path in the label file, or the link)."


class MediaPermissionError(MediaError, PermissionError):
    """The file exists but this user may not read it."""

    hint = "Make it readable (e.g. `chmod a+r FILE`, or fix the owner), or run as a user who may read it."


class DecoderCrashError(MediaError):
    """The isolated decoder process died (a native crash in FFmpeg or PyAV) or hung on this file.

    ``signal`` is the name of the signal that ended the worker (e.g. "SIGSEGV"), None
    when it exited with a code or was stopped for making no progress.
    """

    hint = (
        "The file crashes the native decoder: re-encode it (e.g. `ffmpeg -i FILE -ac 1 -ar 16000 fixed.wav`) "
        "and point the dataset at the copy; the other files are not affected."
    )

    def __init__(self, path: str | Path, cause: str, hint: str | None = None, signal: str | None = None) -> None:
        self.signal = signal
        super().__init__(path, cause, hint)

    def __reduce__(self):
        return (type(self), (self.path, self.cause, self.hint, self.signal))


class UnsupportedMediaError(MediaError):
    """The file's extension is not a supported media type, or its content is not media."""

    hint = "Supported extensions: {exts}. Convert the file (e.g. with ffmpeg) or fix its extension."

    def __init__(self, path: str | Path, cause: str, hint: str | None = None) -> None:
        from affectstore.media.probe import SUPPORTED_EXTENSIONS

        if hint is None:
            hint = type(self).hint.format(exts=", ".join(sorted(SUPPORTED_EXTENSIONS)))
        super().__init__(path, cause, hint)
