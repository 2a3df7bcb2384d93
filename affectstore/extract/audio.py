"""The audio contract: mono float32 waveforms at 16 kHz, streamed in blocks for long clips.

:class:`AudioExtractor` is the base of every extractor whose :class:`~affectstore.extract.base.Input`
is audio. :class:`FrameGeometry`, :class:`Segment` and :func:`plan_segments` describe strided
front ends (wav2vec2's 20 ms frames) and how long clips are cut into windows that line up
exactly with the frames of the whole clip.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from affectstore.extract.base import Extractor, Features, Input, Outputs, Stream
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import InputError

#: Every audio extractor receives mono float32 audio at this rate (samples per second).
SAMPLE_RATE = 16_000

C = TypeVar("C", bound=ExtractorConfig)


class AudioExtractor(Extractor[C]):
    """An extractor over mono float32 waveforms at :data:`SAMPLE_RATE`.

    Three ways in, all giving the same numbers (to float tolerance):

    - :meth:`extract` one clip -> ``{output name: Features}``;
    - :meth:`extract_batch` many clips -> one such dict per clip. Extractors that batch
      sort the clips (and the windows of long clips) by length and pad within a batch,
      so the caller can pass clips in any order;
    - :meth:`stream` one clip -> an iterator of chunks in time order, each a dict of
      frame-level outputs; per-video outputs come once, in the last chunk. Use it for
      long clips so the outputs can be written as they come.
    """

    input = Input.AUDIO
    sample_rate: ClassVar[int] = SAMPLE_RATE

    @property
    @abc.abstractmethod
    def min_samples(self) -> int:
        """Shortest clip (in samples) this extractor can process."""

    def validate(self, waveform: Any) -> np.ndarray:
        """Check one waveform and return it as a contiguous 1-D float32 array; raise InputError otherwise.

        A runner calls this per clip before batching, so a bad clip is recorded as failed
        instead of failing the batch it would have joined.
        """
        array = np.asarray(waveform)
        if array.ndim != 1:
            raise InputError(
                f"Expected a mono waveform as a 1-D array, got shape {array.shape}. "
                "Mix down to mono (affectstore.media decodes audio as mono 16 kHz)."
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(
                f"Expected float samples in [-1, 1], got dtype {array.dtype}. Convert integer PCM by dividing by its full scale."
            )
        if array.shape[0] < self.min_samples:
            raise InputError(
                f"Clip too short for {self.name}: {array.shape[0]} samples ({array.shape[0] / self.sample_rate:.3f} s), "
                f"need at least {self.min_samples} ({self.min_samples / self.sample_rate:.3f} s at {self.sample_rate} Hz)."
            )
        if not np.all(np.isfinite(array)):
            raise InputError(f"Waveform holds {int(np.sum(~np.isfinite(array)))} NaN or infinite samples.")
        return np.ascontiguousarray(array, dtype=np.float32)

    @abc.abstractmethod
    def extract_batch(self, items: Sequence[np.ndarray]) -> list[Outputs]:
        """Outputs of many clips, one dict per clip in input order."""

    def stream(self, waveform: np.ndarray) -> Iterator[dict[str, Features]]:
        """Outputs of one clip in chunks (time order); per-video outputs in the last chunk."""
        yield self.extract(waveform)

    def is_long(self, n_samples: int) -> bool:
        """Whether a clip this long is processed in several windows (runner: prefer :meth:`stream`)."""
        return False

    def open_stream(self, info: WaveStats) -> AudioStream:
        """Start feeding one clip of known length and statistics in consecutive blocks (see :class:`AudioStream`).

        The default keeps every block and extracts at :meth:`AudioStream.close`, so its memory
        grows with the clip; extractors with ``bounded_stream = True`` process windows as the
        blocks arrive. ``stats`` must describe the whole clip (a first pass over it).
        """
        self._require_loaded()
        if info.n_samples < self.min_samples:
            raise InputError(
                f"Clip too short for {self.name}: {info.n_samples} samples, need at least {self.min_samples}."
            )
        return BufferedAudioStream(self, info)


@dataclass(frozen=True)
class WaveStats:
    """Length, mean and variance (population) of a whole clip, accumulated block by block in float64.

    Blocks merge with Chan et al.'s pairwise update, so the result matches ``np.mean`` and
    ``np.var`` of the concatenated clip to float64 rounding.
    """

    n_samples: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @property
    def var(self) -> float:
        return self.m2 / self.n_samples if self.n_samples else 0.0

    @property
    def seconds(self) -> float:
        return self.n_samples / SAMPLE_RATE

    def add(self, block: np.ndarray) -> WaveStats:
        """Statistics of the clip so far followed by ``block``."""
        n_b = int(block.shape[0])
        if n_b == 0:
            return self
        mean_b = float(np.mean(block, dtype=np.float64))
        m2_b = float(np.sum(np.square(block.astype(np.float64) - mean_b)))
        n = self.n_samples + n_b
        delta = mean_b - self.mean
        return WaveStats(n, self.mean + delta * n_b / n, self.m2 + m2_b + delta * delta * self.n_samples * n_b / n)

    @staticmethod
    def of(waveform: np.ndarray) -> WaveStats:
        return WaveStats().add(waveform)


class AudioStream(Stream):
    """One clip fed to an extractor in consecutive blocks: :meth:`push` each block in order, then :meth:`close`.

    Each call returns the outputs completed so far (output name -> :class:`Features`, rows in
    time order, possibly none); per-video outputs come from :meth:`close`. Joining everything
    returned equals ``extractor.extract(whole clip)`` to float tolerance.
    """

    def __init__(self, extractor: AudioExtractor[Any], stats: WaveStats) -> None:
        self.extractor = extractor
        self.stats = stats
        self.received = 0

    def _accept(self, block: Any) -> np.ndarray:
        array = np.asarray(block)
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"Stream blocks must be 1-D float arrays, got shape {array.shape} and dtype {array.dtype}.")
        if not np.all(np.isfinite(array)):
            raise InputError(f"Waveform holds {int(np.sum(~np.isfinite(array)))} NaN or infinite samples.")
        self.received += array.shape[0]
        if self.received > self.stats.n_samples:
            raise InputError(
                f"Stream got more samples ({self.received}) than the clip's stated length ({self.stats.n_samples})."
            )
        return np.ascontiguousarray(array, dtype=np.float32)

    def _check_complete(self) -> None:
        if self.received != self.stats.n_samples:
            raise InputError(
                f"Stream closed after {self.received} samples; the clip's stated length is {self.stats.n_samples}."
            )

    @abc.abstractmethod
    def push(self, block: np.ndarray) -> dict[str, Features]:
        """Feed the next block of samples; returns the outputs it completed."""

    @abc.abstractmethod
    def close(self) -> dict[str, Features]:
        """End of the clip: the remaining frame outputs and the per-video outputs."""


class BufferedAudioStream(AudioStream):
    """Keeps every block and extracts the whole clip at close (memory grows with the clip)."""

    def __init__(self, extractor: AudioExtractor[Any], stats: WaveStats) -> None:
        super().__init__(extractor, stats)
        self._blocks: list[np.ndarray] = []

    def push(self, block: np.ndarray) -> dict[str, Features]:
        self._blocks.append(self._accept(block))
        return {}

    def close(self) -> dict[str, Features]:
        self._check_complete()
        waveform = np.concatenate(self._blocks) if len(self._blocks) != 1 else self._blocks[0]
        self._blocks = []
        return self.extractor.extract(waveform)


# --------------------------------------------------------------------------- frame geometry and windows


@dataclass(frozen=True)
class FrameGeometry:
    """A strided front end: frame i covers samples [i * stride, i * stride + receptive_field)."""

    stride: int
    receptive_field: int
    sample_rate: int = SAMPLE_RATE

    @property
    def rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.stride

    def n_frames(self, n_samples: int) -> int:
        """Frames a clip of ``n_samples`` yields (0 when shorter than one receptive field)."""
        if n_samples < self.receptive_field:
            return 0
        return (n_samples - self.receptive_field) // self.stride + 1

    def times(self, start_frame: int, stop_frame: int) -> np.ndarray:
        """Centre times (float64 seconds) of frames [start_frame, stop_frame)."""
        index = np.arange(start_frame, stop_frame, dtype=np.float64)
        return (index * self.stride + self.receptive_field / 2.0) / self.sample_rate


@dataclass(frozen=True)
class Segment:
    """A piece of one clip fed to the model: input frames [start, stop), of which [keep_start, keep_stop) are kept.

    All indices are global frame indices of the clip. The samples fed are
    ``[start * stride, (stop - 1) * stride + receptive_field)``, so every frame computed
    in a segment lines up exactly with the same frame of the whole clip.
    """

    clip: int
    start: int
    stop: int
    keep_start: int
    keep_stop: int
    last: bool

    def sample_range(self, geometry: FrameGeometry) -> tuple[int, int]:
        return self.start * geometry.stride, (self.stop - 1) * geometry.stride + geometry.receptive_field


def plan_segments(
    clip: int, n_samples: int, geometry: FrameGeometry, window_frames: int, context_frames: int
) -> list[Segment]:
    """Split a clip into windows of ``window_frames`` kept frames with ``context_frames`` extra on each side.

    A clip of at most ``window_frames + 2 * context_frames`` frames is one segment, so no
    segment is ever longer than that, whatever the clip length: memory per forward pass
    stays bounded. Context frames are computed and dropped; they give each kept frame
    (mostly) the attention context it would have seen in the whole clip.
    """
    total = geometry.n_frames(n_samples)
    if total == 0:
        return []
    if total <= window_frames + 2 * context_frames:
        return [Segment(clip, 0, total, 0, total, True)]
    segments = []
    for keep_start in range(0, total, window_frames):
        keep_stop = min(keep_start + window_frames, total)
        segments.append(
            Segment(
                clip,
                max(0, keep_start - context_frames),
                min(total, keep_stop + context_frames),
                keep_start,
                keep_stop,
                keep_stop == total,
            )
        )
    return segments


def normalize_waveform(waveform: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole clip (float32), as wav2vec2 feature extractors do.

    Statistics are accumulated in float64 so that long clips do not lose precision; the
    1e-7 floor matches transformers' Wav2Vec2FeatureExtractor so outputs agree with it.
    """
    mean = float(np.mean(waveform, dtype=np.float64))
    var = float(np.var(waveform, dtype=np.float64))
    return ((waveform - mean) / math.sqrt(var + 1e-7)).astype(np.float32)
