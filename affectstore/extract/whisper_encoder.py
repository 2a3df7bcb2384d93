"""Whisper encoder hidden states as an audio feature (registered as ``whisper-encoder``).

The encoder of a Whisper model in CTranslate2 form (``ctranslate2.models.Whisper.encode``, via
faster-whisper's loader and log-mel front end) gives ``d_model`` values per 20 ms frame (50 Hz).
Whisper always encodes 30-s windows, padding shorter audio; only the frames that cover the
clip's real samples are kept (``ceil(mel frames / 2)`` per window; frame ``j`` of window ``k``
is timed at its centre, ``30 k + 0.02 j + 0.01`` s), so a 3-s clip gives 150 rows, not 1,500.
Longer clips are encoded window by window and joined. Windows of several clips go through the
encoder ``batch_size`` at a time.

The log-mel features clamp their dynamic range to 8 decades below the clip's loudest value,
as Whisper does. A clip the runner streams (longer than ``stream_above_s``) is featurised one
30-s window at a time, so there the clamp uses each window's own maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from affectstore.extract.audio import SAMPLE_RATE, AudioExtractor, AudioStream, WaveStats
from affectstore.extract.base import Features, OutputKind, OutputSpec, Outputs
from affectstore.extract.errors import require
from affectstore.extract.registry import register
from affectstore.extract.whisper_model import WhisperModelConfig, load_whisper, whisper_provenance

WINDOW_S = 30
HOP = 160  # mel hop in samples (10 ms); the encoder halves the rate again (20 ms)
WINDOW_MEL = WINDOW_S * SAMPLE_RATE // HOP


@dataclass(frozen=True, kw_only=True)
class WhisperEncoderConfig(WhisperModelConfig):
    """Encoder settings: the model settings of :class:`WhisperModelConfig`, ``batch_size`` 30-s windows
    per encoder call, and ``dtype`` of the stored states (``float16`` halves the store)."""

    dtype: str = "float16"
    batch_size: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be float16 or float32 (the stored states). Got {self.dtype!r} instead.")


@register
class WhisperEncoderExtractor(AudioExtractor[WhisperEncoderConfig]):
    """Whisper encoder states of the clip's real frames at 50 Hz (see the module docstring)."""

    name = "whisper-encoder"
    version = "1"
    config_class = WhisperEncoderConfig
    bounded_stream = True
    min_samples = HOP * 2

    def _load(self) -> None:
        self._ct2 = require("ctranslate2", extra="whisper")
        self._model, self._folder = load_whisper(self.config)
        self._features = self._model.feature_extractor
        probe = self._encode([np.zeros((self._features.mel_filters.shape[0], WINDOW_MEL), np.float32)])
        self._dim = int(probe.shape[-1])

    def output_specs(self) -> dict[str, OutputSpec]:
        self._require_loaded()
        return {self.prefix: OutputSpec(self.prefix, self._dim, SAMPLE_RATE / (2 * HOP), self.config.dtype, None,
                                        f"Whisper {self.config.model} encoder output, real frames only", kind=OutputKind.FRAMES)}

    def _libraries(self) -> tuple[str, ...]:
        return ("faster-whisper", "ctranslate2")

    def _model_provenance(self) -> dict[str, Any]:
        return whisper_provenance(self.config, self._folder, self._model)

    def _encode(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        batch = self._ct2.StorageView.from_array(np.ascontiguousarray(np.stack(windows), dtype=np.float32))
        return np.asarray(self._model.model.encode(batch, to_cpu=True), dtype=np.float32)

    def mel(self, waveform: np.ndarray) -> np.ndarray:
        """Log-mel features (n_mels x frames) of the clip's samples, without faster-whisper's trailing frame."""
        return self._features(np.ascontiguousarray(waveform, dtype=np.float32))[:, : len(waveform) // HOP]

    @staticmethod
    def windows(mel: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """The 30-s windows of a clip's features, zero padded, each with its count of real frames."""
        out = []
        for start in range(0, max(mel.shape[1], 1), WINDOW_MEL):
            piece = mel[:, start : start + WINDOW_MEL]
            real = piece.shape[1]
            if real < WINDOW_MEL:
                piece = np.pad(piece, ((0, 0), (0, WINDOW_MEL - real)))
            out.append((piece, real))
        return out

    def _states(self, windows: Sequence[tuple[np.ndarray, int]]) -> list[np.ndarray]:
        """Encoder states of each window, cut to its real frames (batches of ``batch_size``)."""
        out = []
        size = self.config.batch_size
        for start in range(0, len(windows), size):
            group = windows[start : start + size]
            states = self._encode([w for w, _ in group])
            out.extend(states[k, : math.ceil(real / 2)] for k, (_, real) in enumerate(group))
        return out

    def _features_of(self, states: Sequence[np.ndarray], first_window: int = 0) -> Features:
        values = np.concatenate(states) if states else np.zeros((0, self._dim), np.float32)
        times = np.concatenate([WINDOW_S * (first_window + k) + 0.02 * np.arange(len(s)) + 0.01 for k, s in enumerate(states)]) if states else np.zeros(0)
        return Features(values.astype(self.config.dtype), times.astype(np.float64))

    def extract_batch(self, items: Sequence[np.ndarray]) -> list[Outputs]:
        self._require_loaded()
        per_clip = [self.windows(self.mel(self.validate(w))) for w in items]
        flat = [w for clip in per_clip for w in clip]
        states = self._states(flat)
        out, k = [], 0
        for clip in per_clip:
            out.append({self.prefix: self._features_of(states[k : k + len(clip)])})
            k += len(clip)
        return out

    def open_stream(self, info: WaveStats) -> AudioStream:
        self._require_loaded()
        return _EncoderStream(self, info)


class _EncoderStream(AudioStream):
    """30-s windows of a long clip encoded as they fill. Each window's log-mel frames are computed
    with two hops of the neighbouring audio on each side, so every frame sees the samples it sees
    in the whole clip (only the dynamic-range clamp is per window; see the module docstring)."""

    CONTEXT = 2 * HOP

    def __init__(self, extractor: WhisperEncoderExtractor, stats: WaveStats) -> None:
        super().__init__(extractor, stats)
        self._encoder = extractor
        self._window = WINDOW_S * SAMPLE_RATE
        self._buffer = np.zeros(0, np.float32)  # starts CONTEXT samples before the next window (after the first)
        self._index = 0

    def push(self, block: np.ndarray) -> Outputs:
        self._buffer = np.concatenate([self._buffer, self._accept(block)])
        lead = self.CONTEXT if self._index else 0
        out = []
        while len(self._buffer) >= lead + self._window + self.CONTEXT:
            out.append(self._take(lead, self._window, final=False))
            lead = self.CONTEXT
        return {self._encoder.prefix: Features.concatenate(out)} if out else {}

    def _take(self, lead: int, n: int, final: bool) -> Features:
        encoder = self._encoder
        piece = self._buffer[: lead + n + (0 if final else self.CONTEXT)]
        skip = lead // HOP
        mel = encoder._features(np.ascontiguousarray(piece, dtype=np.float32))[:, skip : skip + n // HOP]
        features = encoder._features_of(encoder._states(encoder.windows(mel)), self._index)
        self._buffer = self._buffer[lead + n - self.CONTEXT :]
        self._index += 1
        return features

    def close(self) -> Outputs:
        self._check_complete()
        lead = self.CONTEXT if self._index else 0
        rest = len(self._buffer) - lead
        if rest < self._encoder.min_samples:
            return {}
        return {self._encoder.prefix: self._take(lead, rest, final=True)}
