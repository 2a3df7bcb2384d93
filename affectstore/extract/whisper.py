"""Transcripts with timestamps from faster-whisper (registered as ``whisper``).

Outputs (``ExtractorConfig.name`` replaces the ``whisper`` prefix):

- ``whisper``: text segments, ``start``/``end`` in seconds and the text, as faster-whisper gives them;
- ``whisper-words``: one text row per word with its start and end (``word_timestamps``);
- ``whisper-scores``: per segment ``avg_logprob``, ``no_speech_prob``, ``compression_ratio``,
  ``temperature``; times = the segment's centre;
- ``whisper-language``: one text row per video, the language detected (or given), over the clip.

An empty result (silence, music) is a video with zero segments and zero words: a defined
outcome, never a failure. Each clip is transcribed by ``WhisperModel.transcribe`` with the
configured settings, so the transcript equals faster-whisper's own on the same audio.
A clip longer than ``window_s`` (streamed by the runner) is transcribed in consecutive
``window_s`` blocks, each on its own with its time offset: memory stays at one block, and only
speech that straddles a block edge can come out differently from one whole-file call.
``batched = true`` uses faster-whisper's ``BatchedInferencePipeline`` (speech chunks of one file
decoded ``batch_size`` at a time: much faster on GPU for long files, not equal to sequential
decoding, so it is part of the config hash).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from affectstore.extract.audio import SAMPLE_RATE, AudioExtractor, AudioStream, WaveStats
from affectstore.extract.base import Features, OutputKind, OutputSpec, Outputs, Text
from affectstore.extract.registry import register
from affectstore.extract.whisper_model import WhisperModelConfig, load_whisper, whisper_provenance

logger = logging.getLogger(__name__)

SCORE_COLUMNS = ("avg_logprob", "no_speech_prob", "compression_ratio", "temperature")
TASKS = ("transcribe", "translate")


@dataclass(frozen=True, kw_only=True)
class WhisperConfig(WhisperModelConfig):
    """Transcription settings, passed to ``WhisperModel.transcribe``: ``language`` (None: detect),
    ``task``, ``beam_size``, ``temperature`` (fallback schedule), ``condition_on_previous_text``,
    ``vad_filter``, ``word_timestamps``, ``initial_prompt``, ``max_new_tokens`` (per window; None:
    Whisper's limit); ``pcm16``: round the audio to 16-bit PCM first, as faster-whisper's own
    decoder does, so a transcript equals faster-whisper's on the same file; ``window_s``: block length for long
    clips; ``batched`` / ``batch_size``: see the module docstring."""

    language: str | None = None
    task: str = "transcribe"
    beam_size: int = 5
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    condition_on_previous_text: bool = True
    vad_filter: bool = False
    word_timestamps: bool = True
    initial_prompt: str | None = None
    max_new_tokens: int | None = None
    pcm16: bool = True
    window_s: float = 600.0
    batched: bool = False
    batch_size: int = 8

    NON_OUTPUT_FIELDS: ClassVar[frozenset[str]] = WhisperModelConfig.NON_OUTPUT_FIELDS - {"batch_size"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.language is not None and (not isinstance(self.language, str) or not self.language.strip()):
            raise ValueError(f"language must be None (detect) or a language code such as 'en'. Got {self.language!r} instead.")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}. Got {self.task!r} instead.")
        if isinstance(self.beam_size, bool) or not isinstance(self.beam_size, int) or self.beam_size < 1:
            raise ValueError(f"beam_size must be an int >= 1. Got {self.beam_size!r} instead.")
        if not self.temperature or not all(isinstance(t, int | float) and 0 <= t <= 1 for t in self.temperature):
            raise ValueError(f"temperature must be a list of numbers in [0, 1]. Got {self.temperature!r} instead.")
        if self.max_new_tokens is not None and (isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1):
            raise ValueError(f"max_new_tokens must be None or an int >= 1. Got {self.max_new_tokens!r} instead.")
        if isinstance(self.window_s, bool) or not isinstance(self.window_s, int | float) or self.window_s < 30:
            raise ValueError(f"window_s must be a number of seconds >= 30. Got {self.window_s!r} instead.")
        for name in ("condition_on_previous_text", "vad_filter", "word_timestamps", "batched", "pcm16"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false. Got {getattr(self, name)!r} instead.")

    def transcribe_options(self) -> dict[str, Any]:
        """Keyword arguments of ``WhisperModel.transcribe``."""
        options: dict[str, Any] = {
            "language": self.language, "task": self.task, "beam_size": self.beam_size, "temperature": list(self.temperature),
            "condition_on_previous_text": self.condition_on_previous_text, "vad_filter": self.vad_filter,
            "word_timestamps": self.word_timestamps, "initial_prompt": self.initial_prompt,
            "max_new_tokens": self.max_new_tokens,
        }
        if self.batched:
            options["batch_size"] = self.batch_size
        return options


@register
class WhisperExtractor(AudioExtractor[WhisperConfig]):
    """Transcripts, words, segment scores and language of each clip (see the module docstring)."""

    name = "whisper"
    version = "1"
    config_class = WhisperConfig
    output_suffixes = ("", "-words", "-scores", "-language")
    devices = ("cpu", "cuda")
    bounded_stream = True
    min_samples = 1

    def _load(self) -> None:
        self._model, self._folder = load_whisper(self.config)
        self._engine = self._model
        if self.config.batched:
            from faster_whisper import BatchedInferencePipeline

            self._engine = BatchedInferencePipeline(model=self._model)

    def output_specs(self) -> dict[str, OutputSpec]:
        text, words, scores, language = self.output_names
        return {
            text: OutputSpec(text, 0, None, "str", None, "Whisper segments: start, end, text", kind=OutputKind.TEXT),
            words: OutputSpec(words, 0, None, "str", None, "words with their start and end", kind=OutputKind.TEXT),
            scores: OutputSpec(scores, len(SCORE_COLUMNS), None, "float32", SCORE_COLUMNS,
                               "per segment scores, times = segment centre", kind=OutputKind.SEGMENTS),
            language: OutputSpec(language, 0, None, "str", None, "language of the clip", kind=OutputKind.TEXT),
        }

    def _libraries(self) -> tuple[str, ...]:
        return ("faster-whisper", "ctranslate2", "av")

    def _model_provenance(self) -> dict[str, Any]:
        return whisper_provenance(self.config, self._folder, self._model)

    def transcribe(self, waveform: np.ndarray, offset: float = 0.0) -> tuple[list[Any], Any]:
        """faster-whisper's segments (times shifted by ``offset`` seconds) and its transcription info."""
        self._require_loaded()
        audio = np.ascontiguousarray(waveform, dtype=np.float32)
        if self.config.pcm16:
            audio = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16).astype(np.float32) / 32768.0
        segments, info = self._engine.transcribe(audio, **self.config.transcribe_options())
        segments = list(segments)
        if offset:
            for segment in segments:
                segment.start += offset
                segment.end += offset
                for word in segment.words or ():
                    word.start += offset
                    word.end += offset
        return segments, info

    def outputs(self, segments: Sequence[Any], language: str, duration: float) -> Outputs:
        """The four outputs of one clip from its segments."""
        text, words_name, scores_name, language_name = self.output_names
        start = np.array([s.start for s in segments], dtype=np.float64)
        end = np.array([s.end for s in segments], dtype=np.float64)
        words = [w for s in segments for w in (s.words or ())]
        scores = np.array(
            [[s.avg_logprob, s.no_speech_prob, s.compression_ratio, s.temperature] for s in segments], dtype=np.float32
        ).reshape(-1, len(SCORE_COLUMNS))
        return {
            text: Text(start, end, tuple(s.text.strip() for s in segments)),
            words_name: Text(
                np.array([w.start for w in words], dtype=np.float64),
                np.array([w.end for w in words], dtype=np.float64),
                tuple(w.word.strip() for w in words),
            ),
            scores_name: Features(scores, (start + end) / 2.0),
            language_name: Text(np.array([0.0]), np.array([duration]), (language,)),
        }

    def extract_batch(self, items: Sequence[np.ndarray]) -> list[Outputs]:
        out = []
        for waveform in items:
            segments, info = self.transcribe(waveform)
            out.append(self.outputs(segments, info.language, len(waveform) / SAMPLE_RATE))
        return out

    def open_stream(self, info: WaveStats) -> AudioStream:
        self._require_loaded()
        return _WhisperStream(self, info)


class _WhisperStream(AudioStream):
    """Consecutive ``window_s`` blocks of a long clip, each transcribed with its offset."""

    def __init__(self, extractor: WhisperExtractor, stats: WaveStats) -> None:
        super().__init__(extractor, stats)
        self._whisper = extractor
        self._window = int(extractor.config.window_s * SAMPLE_RATE)
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._offset = 0
        self._segments: list[Any] = []
        self._languages: list[str] = []

    def push(self, block: np.ndarray) -> Outputs:
        self._buffer.append(self._accept(block))
        self._buffered += len(block)
        while self._buffered >= self._window:
            self._transcribe(self._window)
        return {}

    def _transcribe(self, n: int) -> None:
        audio = np.concatenate(self._buffer)
        piece, rest = audio[:n], audio[n:]
        segments, info = self._whisper.transcribe(piece, self._offset / SAMPLE_RATE)
        self._segments.extend(segments)
        self._languages.append(info.language)
        self._offset += n
        self._buffer, self._buffered = ([rest] if len(rest) else []), len(rest)

    def close(self) -> Outputs:
        self._check_complete()
        if self._buffered:
            self._transcribe(self._buffered)
        language = max(set(self._languages), key=self._languages.count) if self._languages else ""
        return self._whisper.outputs(self._segments, language, self.stats.seconds)
