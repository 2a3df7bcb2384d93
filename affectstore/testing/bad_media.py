"""A folder of good and hostile media files, each with the reason decoding must give.

Used by the reliability benchmark and the media tests: every case is a file (or a thing
with a media name) plus the `MediaError` type and the words its message must contain;
good cases (including 8- and 16-channel WAVs, which used to segfault PyAV) carry the
mono signal they must decode to. Nothing is downloaded; everything is generated.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstore.media import errors as media_errors
from affectstore.media.probe import MissingMediaError
from affectstore.testing.datasets import make_empty_file, make_media, make_not_media, make_truncated_file


# A decoder worker that runs the real decode loop but dies natively on files whose name
# starts with "crash" (a segfault), "abort" (SIGABRT) or hangs on "hang": how a crash inside
# FFmpeg looks to the parent. Pass ``[sys.executable, "-c", CRASHING_WORKER]`` as
# `IsolatedDecoder`'s command.
CRASHING_WORKER = """
import ctypes, os, sys, time
from affectstore.media import _decode_worker, audio
real = audio._decode_resampled
def decode(path, rate):
    name = os.path.basename(str(path))
    if name.startswith("crash"):
        ctypes.string_at(0)  # a real segmentation fault
    if name.startswith("abort"):
        os.abort()
    if name.startswith("hang"):
        time.sleep(60)
    yield from real(path, rate)
audio._decode_resampled = decode
sys.exit(_decode_worker.main(sys.argv))
"""


@dataclass(frozen=True)
class MediaCase:
    """One file of the folder: ``error`` None for a good file, else the error type and the words of its cause."""

    name: str
    path: Path
    error: type[Exception] | None = None
    reason: str = ""
    note: str = ""


def _multichannel_wav(path: Path, channels: int, dtype: str, seconds: float = 0.5, rate: int = 48_000) -> None:
    from scipy.io import wavfile

    rng = np.random.default_rng(channels)
    data = (0.2 * rng.standard_normal((int(rate * seconds), channels))).astype(np.float32)
    wavfile.write(path, rate, data if dtype == "float32" else (data * 32767).astype(np.int16))


def _wav_header(channels: int, rate: int, n_bytes: int, bits: int = 16) -> bytes:
    """A PCM WAV header as written, whatever it claims (zero channels, zero samples)."""
    block = channels * bits // 8
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
    return b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", n_bytes)


def build_bad_media(folder: str | Path, crash_name: str | None = None) -> list[MediaCase]:
    """Write the cases into ``folder`` (created); returns them in a stable order.

    ``crash_name``: also add a good WAV of that name, for a test worker that crashes on it.
    A permission case is added only when not running as root (root reads every file).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    E = media_errors
    cases: list[MediaCase] = []

    def add(name: str, error=None, reason: str = "", note: str = "") -> Path:
        path = folder / name
        cases.append(MediaCase(name, path, error, reason, note))
        return path

    make_media(add("good-mono.wav", note="16 kHz mono PCM"), duration=0.6)
    make_media(add("good-stereo.mp4", note="H.264 + AAC stereo 44.1 kHz"), duration=0.6, sample_rate=44_100, channels=2)
    _multichannel_wav(add("eight-channels.wav", note="8 channels float32 48 kHz (segfaulted PyAV before)"), 8, "float32")
    _multichannel_wav(add("sixteen-channels.wav", note="16 channels int16 48 kHz (segfaulted PyAV before)"), 16, "int16")
    make_empty_file(add("empty.mp4", E.EmptyMediaError, "file is empty (0 bytes)"))
    make_truncated_file(add("truncated.mp4", E.CorruptMediaError, "cannot open the container"), keep=0.5, duration=0.6)
    make_not_media(add("text-named.mp3", E.CorruptMediaError, "cannot open the container"))
    rng = np.random.default_rng(7)
    add("random-bytes.wav", E.CorruptMediaError, "cannot open the container").write_bytes(
        bytes(rng.integers(0, 256, 4096, dtype=np.uint8))
    )
    make_not_media(add("notes.txt", E.UnsupportedMediaError, "extension '.txt' is not a supported media type"))
    make_media(add("no-audio.mp4", E.NoAudioStreamError, "the file has no audio stream"), duration=0.4, audio=False)
    add("folder.wav", E.NotAFileError, "is a directory, not a media file").mkdir()
    loop_a, loop_b = folder / "loop-a.wav", folder / "loop-b.wav"
    loop_b.symlink_to(loop_a)
    add("loop-a.wav", E.NotAFileError, "symlink loop").symlink_to(loop_b)
    add("broken-link.flac", MissingMediaError, "broken symlink").symlink_to(folder / "nowhere.flac")
    cases.append(MediaCase("missing.wav", folder / "missing.wav", MissingMediaError, "file not found"))
    os.mkfifo(add("pipe.wav", E.NotAFileError, "is not a regular file"))
    add("zero-samples.wav", E.CorruptMediaError, "decoded to zero samples").write_bytes(_wav_header(1, 16_000, 0))
    add("zero-channels.wav", E.CorruptMediaError, "decoding failed").write_bytes(_wav_header(0, 16_000, 100) + bytes(100))
    from PIL import Image

    png = folder / "_image.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    os.replace(png, add("image-named.mp4", E.NoAudioStreamError, "the file has no audio stream"))
    if os.geteuid() != 0:
        locked = make_media(add("unreadable.wav", E.MediaPermissionError, "permission denied"), duration=0.2)
        locked.chmod(0)
    if crash_name:
        make_media(add(crash_name, E.DecoderCrashError, "the decoder process was killed by SIGSEGV"), duration=0.3)
    return cases
