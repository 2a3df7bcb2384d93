"""The text contract: embeddings of a stored transcript, per segment and per video.

A text extractor reads the transcript feature set named by its ``transcript`` setting
(``whisper``, a dataset's own transcripts such as ``bah-transcript``, or a words table such
as ``whisper-words``) through the transcript feeder, and writes, for each head of its model
(the embedding; ``roberta-goemotions`` adds ``-probs``):

- ``<prefix><head>`` (kind ``segments``): one row per segment, ``times`` = the segment's
  centre, ``(start + end) / 2``, rows in time order. This is the main output, as a face
  model's is one row per face: frame-level tasks align it to frames, video-level tasks pool
  it. Read from a words table, each segment is a word, so this is one embedding per word
  at the word's centre time (name such a run e.g. ``name = "minilm-words"``).
- ``<prefix><head>-video`` (kind ``video``): one row per video. ``video_pooling = "text"``
  (default, as the published EMI/BAH systems do) embeds the whole transcript, its
  segments' texts joined with single spaces (models with a token limit see its beginning);
  ``"mean"`` is the mean of the segment rows. Its time is the centre of the span the
  segments cover.

Segments whose text is empty or only whitespace are left out (embedding nothing is
undefined for hosted APIs). A transcript with no text left (no speech, no segments) gives
zero rows in ``<prefix><head>`` and, with ``empty = "zeros"`` (default), a zero vector at
time 0 as its video row (a constant "no speech" point, never equal to a real embedding of a
normalised model; trainers that pool the segment output see the video as missing);
``empty = "fail"`` records the video as failed instead, with the reason.

Texts are embedded in batches of ``batch_size`` across the videos of a pool, longest first
(less padding), and each distinct text once.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from affectstore.extract.base import Extractor, Features, Input, OutputKind, OutputSpec, Outputs
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import InputError

VIDEO_POOLINGS = ("text", "mean")
EMPTY_POLICIES = ("zeros", "fail")


@dataclass(frozen=True, kw_only=True)
class TextEmbeddingConfig(ExtractorConfig):
    """Settings of every text embedding: ``transcript`` (the text feature set to read),
    ``video_pooling`` (``text``: embed the whole transcript; ``mean``: mean of the segment rows),
    ``empty`` (``zeros``: a zero video row for a transcript without text; ``fail``: record a failure)."""

    transcript: str = "whisper"
    video_pooling: str = "text"
    empty: str = "zeros"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.transcript, str) or not self.transcript.strip() or "/" in self.transcript:
            raise ValueError(
                f"transcript must name a text feature set of the store (e.g. 'whisper', 'bah-transcript', 'whisper-words'). "
                f"Got {self.transcript!r} instead."
            )
        if self.video_pooling not in VIDEO_POOLINGS:
            raise ValueError(f"video_pooling must be one of {', '.join(VIDEO_POOLINGS)}. Got {self.video_pooling!r} instead.")
        if self.empty not in EMPTY_POLICIES:
            raise ValueError(f"empty must be one of {', '.join(EMPTY_POLICIES)}. Got {self.empty!r} instead.")


@dataclass(frozen=True)
class Transcript:
    """A validated transcript: the segments that hold text, in time order (``text`` stripped)."""

    start: np.ndarray
    end: np.ndarray
    text: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.text)

    @property
    def centres(self) -> np.ndarray:
        return (self.start + self.end) / 2.0

    @property
    def whole(self) -> str:
        """The whole transcript as one text."""
        return " ".join(self.text)

    @property
    def span_centre(self) -> float:
        return float((self.start.min() + self.end.max()) / 2.0) if len(self) else 0.0


def as_transcript(item: Any, extractor: str) -> Transcript:
    """A transcript from anything with ``start``, ``end`` and ``text`` (a stored TextSegments, a Text)."""
    try:
        start = np.asarray(item.start, dtype=np.float64).reshape(-1)
        end = np.asarray(item.end, dtype=np.float64).reshape(-1)
        texts = list(item.text)
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"{extractor} takes transcript segments (start, end, text), got {type(item).__name__}.") from None
    if not (len(start) == len(end) == len(texts)):
        raise InputError(f"{extractor}: the transcript has {len(start)} starts, {len(end)} ends and {len(texts)} texts; it needs one of each per segment.")
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(end))):
        raise InputError(f"{extractor}: the transcript has segment times that are not finite numbers of seconds.")
    keep = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
    start, end = start[keep], end[keep]
    stripped = [texts[i].strip() for i in keep]
    order = np.argsort((start + end) / 2.0, kind="stable")
    return Transcript(start[order], end[order], tuple(stripped[i] for i in order))


@dataclass(frozen=True)
class Head:
    """One kind of row a text model gives per text: its suffix ("" for the embedding), dim, column names, description."""

    suffix: str
    dim: int
    columns: tuple[str, ...] | None
    description: str


C = TypeVar("C", bound=TextEmbeddingConfig)


class TextEmbeddingExtractor(Extractor[C]):
    """Base of the text embeddings (see the module docstring): subclasses load a model and :meth:`_encode` texts."""

    input: ClassVar[Input] = Input.TRANSCRIPT
    #: Suffixes of the model's heads; the outputs are each head per video and per segment.
    heads: ClassVar[tuple[str, ...]] = ("",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.output_suffixes = tuple(s for h in cls.heads for s in (h, h + "-video"))

    def dependencies(self) -> dict[str, str]:
        return {"transcript": self.config.transcript}

    @abc.abstractmethod
    def _heads(self) -> list[Head]:
        """The model's heads, in the order of :attr:`heads` (needs the model loaded)."""

    @abc.abstractmethod
    def _encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Rows for at most ``batch_size`` texts: head suffix -> (N x dim) float array."""

    @property
    def store_dtype(self) -> str:
        return "float32"

    def output_specs(self) -> dict[str, OutputSpec]:
        self._require_loaded()
        cfg = self.config
        video = "the whole transcript" if cfg.video_pooling == "text" else "mean of the segment rows"
        specs = {}
        for head in self._heads():
            name = self.prefix + head.suffix
            specs[name] = OutputSpec(
                name, head.dim, None, self.store_dtype, head.columns,
                f"{head.description} per segment of transcript {cfg.transcript!r}, at segment centres", kind=OutputKind.SEGMENTS,
            )
            specs[name + "-video"] = OutputSpec(
                name + "-video", head.dim, None, self.store_dtype, head.columns,
                f"{head.description} of {video} (transcript {cfg.transcript!r})", kind=OutputKind.VIDEO,
            )
        return specs

    def validate(self, item: Any) -> Transcript:
        transcript = item if isinstance(item, Transcript) else as_transcript(item, self.prefix)
        if not len(transcript) and self.config.empty == "fail":
            raise InputError(
                f"{self.prefix}: the transcript {self.config.transcript!r} of this video has no text (no segments, or only "
                "whitespace); set empty = 'zeros' to write a zero vector for such videos"
            )
        return transcript

    def embed(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Rows for any number of texts, in order: head suffix -> (N x dim). Distinct texts are
        encoded once, longest first, in batches of ``batch_size``."""
        self._require_loaded()
        unique = list(dict.fromkeys(texts))
        order = sorted(range(len(unique)), key=lambda i: -len(unique[i]))
        size = self.config.batch_size
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(order), size):
            batch = [unique[i] for i in order[start : start + size]]
            for suffix, rows in self._encode(batch).items():
                parts.setdefault(suffix, []).append(np.asarray(rows, dtype=np.float32))
        position = {text: k for k, text in enumerate(unique)}
        rank = np.empty(len(order), dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        picked = rank[[position[t] for t in texts]] if texts else np.zeros(0, dtype=np.int64)
        out = {}
        for head in self._heads():
            rows = np.concatenate(parts[head.suffix], axis=0) if head.suffix in parts else np.zeros((0, head.dim), np.float32)
            out[head.suffix] = rows[picked]
        return out

    def extract_batch(self, items: Sequence[Any]) -> list[Outputs]:
        """Every segment (and whole transcript) of every item, embedded in shared batches."""
        self._require_loaded()
        transcripts = [self.validate(item) for item in items]
        whole = self.config.video_pooling == "text"
        texts = [t for tr in transcripts for t in (*tr.text, *((tr.whole,) if whole and len(tr) else ()))]
        rows = self.embed(texts)
        out: list[Outputs] = []
        offset = 0
        for tr in transcripts:
            n = len(tr) + (1 if whole and len(tr) else 0)
            result: Outputs = {}
            for head in self._heads():
                mine = rows[head.suffix][offset : offset + n]
                segments = mine[: len(tr)]
                if not len(tr):
                    video = np.zeros((1, head.dim), np.float32)
                elif whole:
                    video = mine[len(tr) :]
                else:
                    video = segments.mean(axis=0, keepdims=True)
                name = self.prefix + head.suffix
                result[name] = Features(segments.reshape(len(tr), head.dim), tr.centres)
                result[name + "-video"] = Features(video, np.array([tr.span_centre]))
            out.append(result)
            offset += n
        return out
