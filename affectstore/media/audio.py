"""Audio decoding to mono float32 at a fixed rate (16 kHz by default), whole or in windows.

Any container FFmpeg reads (mp4, mp3, flv, wav, flac, m4a, ...) works. Rate and sample
format conversion use PyAV's `av.AudioResampler` (libswresample) to packed (interleaved)
float32: PyAV's planar frames expose more planes than FFmpeg's eight fixed data pointers
hold, so reading a planar frame of more than 8 channels (an 8- or 16-channel WAV after
resampling) segfaults; a packed frame is one buffer whatever the channel count.
Channels are then averaged in numpy: libswresample's stereo-to-mono matrix sums channels at -3 dB
(0.707 * (L + R)), which makes correlated stereo louder than either channel and can
exceed [-1, 1]; the plain mean is what librosa and torchaudio users get, and what the
speech models were trained on.

Times: 0.0 is the first decoded audio sample. Stream start timestamps are not added:
encoders report their priming delay there inconsistently (an mp3 from LAME starts at
0.069 s, its encoder delay, where a CREMA-D mp3 reports 0.0), and the audio/video start
offsets in real files are a few tens of milliseconds. AAC decodes with its last frame's
padding (up to 1024 source samples of near-silence at the end), as FFmpeg does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from affectstore.media.errors import CorruptMediaError
from affectstore.media.probe import open_media

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""The rate every speech model here expects, and the default of every function."""


def stream_audio(
    path: str | Path,
    window: float = 30.0,
    overlap: float = 0.0,
    sample_rate: int = SAMPLE_RATE,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(start_time, chunk)`` windows of mono float32 audio at ``sample_rate``.

    Each chunk holds ``round(window * sample_rate)`` samples, except the last, which
    holds what is left (never padded). Consecutive windows start ``window - overlap``
    seconds apart. Only about one window (plus one decoded packet) is in memory at a
    time, whatever the file's length. Raises `MediaError` subclasses for bad files.
    """
    _check_positive("window", window)
    _check_positive("sample_rate", sample_rate)
    if not 0.0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window={window}) seconds. Got {overlap} instead.")
    win = max(1, round(window * sample_rate))
    hop = max(1, win - round(overlap * sample_rate))

    pieces: list[np.ndarray] = []
    buffered = 0
    emitted = 0  # index (at sample_rate) of the first sample still held in the buffer
    total = 0
    for chunk in _decode_resampled(path, sample_rate):
        total += chunk.size
        pieces.append(chunk)
        buffered += chunk.size
        while buffered >= win:
            block = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            yield emitted / sample_rate, block[:win].copy()
            rest = block[hop:]
            pieces = [rest] if rest.size else []
            buffered = rest.size
            emitted += hop
    # The tail: what is left after the last full window, unless an earlier window already
    # covered it completely (possible with overlap).
    if buffered and (emitted == 0 or emitted + buffered > emitted - hop + win):
        block = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        yield emitted / sample_rate, block.copy()
    if total == 0:
        raise CorruptMediaError(path, "the audio stream decoded to zero samples")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the whole audio track of ``path`` to a mono float32 array at ``sample_rate``.

    Holds the full output in memory (4 bytes per sample: 77 MB for 20 minutes at 16 kHz);
    use `stream_audio` for long files. Raises `MediaError` subclasses for bad files.
    """
    _check_positive("sample_rate", sample_rate)
    pieces = list(_decode_resampled(path, sample_rate))
    if not pieces:
        raise CorruptMediaError(path, "the audio stream decoded to zero samples")
    return np.concatenate(pieces)


def audio_duration(path: str | Path, exact: bool = True) -> float:
    """Duration of the audio track in seconds.

    ``exact=True`` decodes the track (no resampling) and counts samples: right even where
    headers are wrong (VBR mp3 without a Xing header, EMI's odd metadata). ``exact=False``
    reads the stream or container header only and may be off.
    """
    with open_media(path, need="audio") as container:
        stream = container.streams.audio[0]
        if not exact:
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
        n = 0
        rate = None
        for frame in container.decode(stream):
            n += frame.samples
            rate = frame.sample_rate
    if not n or not rate:
        raise CorruptMediaError(path, "the audio stream decoded to zero samples")
    return n / rate


def _decode_resampled(path: str | Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Yield mono float32 samples at ``sample_rate``, a piece per decoded frame."""
    with open_media(path, need="audio") as container:
        stream = container.streams.audio[0]
        resampler = None
        setup = None
        for frame in container.decode(stream):
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if key != setup:
                # A stream may change layout or rate midway: start a
                # fresh resampler after draining the old one.
                if resampler is not None:
                    yield from _drain(resampler, None)
                resampler = av.AudioResampler(format="flt", layout=frame.layout, rate=sample_rate)
                setup = key
            yield from _drain(resampler, frame)
        if resampler is not None:
            yield from _drain(resampler, None)


def _drain(resampler: av.AudioResampler, frame: av.AudioFrame | None) -> Iterator[np.ndarray]:
    for out in resampler.resample(frame):
        channels = len(out.layout.channels)
        samples = out.to_ndarray().reshape(-1, channels)  # packed: (1, samples * channels), interleaved
        mono = samples[:, 0] if channels == 1 else samples.mean(axis=1, dtype=np.float32)
        if mono.size:
            yield np.ascontiguousarray(mono, dtype=np.float32)


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and value > 0):
        raise ValueError(f"{name} must be a positive number. Got {value!r} instead.")
