"""The extractor contract: inputs, outputs and the :class:`Extractor` base class.

An extractor turns one decoded input of a video (a waveform, face crops, sampled frames,
transcript segments) into one or more named outputs. Each output becomes its own feature
set in the store. Extractors never see paths: the runner's feeder for the extractor's
:class:`Input` decodes each video once and hands the same item to every extractor of
that input.

Output naming: the output named after the extractor is the result its model defines
(``wav2vec2``: hidden states per frame; ``vad``: one arousal/dominance/valence vector per
video; ``mobilevit``: one embedding per face). Additional views carry a suffix
(``vad-frames``, ``egemaps-lld``, ``mobilevit-logits``). ``ExtractorConfig.name`` replaces the
prefix, so two runs of one extractor with different settings can live side by side.

Dependencies: an extractor may read another feature set of the store (a text embedding
reads a transcript, a face model the detected boxes). :meth:`Extractor.dependencies` names
them; the runner orders the extractors of one run so producers come first, and binds the
producers' config hashes (:meth:`Extractor.bind_dependencies`), which then enter the
consumer's config hash: a changed upstream config changes the consumer's hash, and the
store refuses to mix the two.
"""

from __future__ import annotations

import abc
import hashlib
import importlib.metadata
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from affectstore.extract.config import ExtractorConfig, config_hash
from affectstore.extract.errors import ExtractorError

# --------------------------------------------------------------------------- inputs and outputs


class Input(str, Enum):
    """The decoded input an extractor needs; one feeder per kind decodes it once per video."""

    AUDIO = "audio"  # float32 mono waveform at 16 kHz
    FRAMES = "frames"  # video frames sampled at a rate, with their presentation times
    FACES = "faces"  # face crops (the dataset's own, or detected in the video), with their times
    TRANSCRIPT = "transcript"  # timed text segments, read from a stored transcript


class OutputKind(str, Enum):
    """What one output holds per video."""

    FRAMES = "frames"  # T x D rows at a nominal rate, times at frame centres
    VIDEO = "video"  # one row per video, times = [clip centre]
    SEGMENTS = "segments"  # one row per timed segment (a face, a transcript segment), irregular times
    TEXT = "text"  # timed text segments (start, end, text), written with the store's text writer


@dataclass(frozen=True)
class Features:
    """One numeric output for one clip (or one chunk of it): ``values`` T x D, ``times`` T seconds (float64)."""

    values: np.ndarray
    times: np.ndarray

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ValueError(f"Features.values must be 2-D (T x D), got shape {self.values.shape}.")
        if self.times.ndim != 1 or self.times.shape[0] != self.values.shape[0]:
            raise ValueError(
                f"Features.times must be 1-D with one entry per row of values ({self.values.shape[0]}), "
                f"got shape {self.times.shape}."
            )
        if self.times.dtype != np.float64:
            raise ValueError(f"Features.times must be float64 seconds, got {self.times.dtype}.")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @staticmethod
    def concatenate(chunks: Sequence[Features]) -> Features:
        """Join chunks of one output in time order (as yielded by a stream)."""
        if not chunks:
            raise ValueError("Features.concatenate needs at least one chunk, got none.")
        if len(chunks) == 1:
            return chunks[0]
        return Features(
            np.concatenate([c.values for c in chunks], axis=0),
            np.concatenate([c.times for c in chunks], axis=0),
        )


@dataclass(frozen=True)
class Text:
    """One text output for one clip: segments with ``start``/``end`` seconds and their ``text``."""

    start: np.ndarray
    end: np.ndarray
    text: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (len(self.start) == len(self.end) == len(self.text)):
            raise ValueError(
                f"Text needs one start, end and text per segment. Got {len(self.start)}, {len(self.end)} and {len(self.text)}."
            )

    def __len__(self) -> int:
        return len(self.text)

    @staticmethod
    def concatenate(chunks: Sequence[Text]) -> Text:
        """Join chunks of one text output in time order."""
        if len(chunks) == 1:
            return chunks[0]
        return Text(
            np.concatenate([c.start for c in chunks]).astype(np.float64),
            np.concatenate([c.end for c in chunks]).astype(np.float64),
            tuple(t for c in chunks for t in c.text),
        )


#: What an extractor returns for one video: output name -> its arrays.
Outputs = dict[str, "Features | Text"]


def concatenate_outputs(chunks: Sequence[Features | Text]) -> Features | Text:
    """Join the chunks of one output, whichever its kind."""
    if not chunks:
        raise ValueError("concatenate_outputs needs at least one chunk, got none.")
    texts = [c for c in chunks if isinstance(c, Text)]
    if texts:
        if len(texts) != len(chunks):
            raise ValueError("concatenate_outputs got text and numeric chunks for one output.")
        return Text.concatenate(texts)
    return Features.concatenate([c for c in chunks if isinstance(c, Features)])


@dataclass(frozen=True)
class OutputSpec:
    """What an output holds: its feature-set name, dim, nominal rate (Hz; None when rows are not
    at a fixed rate), dtype, column names, description, and its :class:`OutputKind`."""

    name: str
    dim: int
    rate: float | None
    dtype: str
    columns: tuple[str, ...] | None = None
    description: str = ""
    kind: OutputKind = field(kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, OutputKind):
            raise TypeError(f"OutputSpec.kind must be an OutputKind. Got {self.kind!r} instead.")
        if self.kind is OutputKind.FRAMES and self.rate is None:
            raise ValueError(f"Output {self.name!r} holds frames, so it needs a rate in Hz.")
        if self.columns is not None and len(self.columns) != self.dim:
            raise ValueError(f"Output {self.name!r} names {len(self.columns)} columns for dim {self.dim}.")

    @property
    def per_video(self) -> bool:
        """True for outputs with a single row per video (times holds the clip centre)."""
        return self.kind is OutputKind.VIDEO


# --------------------------------------------------------------------------- provenance helpers


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file, read in chunks so large weight files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".tflite", ".msgpack", ".h5")


def weights_sha256(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every weight file directly in a local model folder, keyed by file name."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    return {p.name: sha256_file(p) for p in files}


def library_versions(*packages: str) -> dict[str, str | None]:
    """Installed versions of the named distributions (None where absent), plus python and affectstore."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("affectstore", "numpy", *packages):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- the extractor


C = TypeVar("C", bound=ExtractorConfig)


class Stream(abc.ABC):
    """One long video fed to an extractor in consecutive chunks: :meth:`push` each chunk in order,
    then :meth:`close`. Each call returns the outputs completed so far (possibly none); per-video
    outputs come from :meth:`close`. Joining everything returned equals the extractor's result
    on the whole video."""

    @abc.abstractmethod
    def push(self, chunk: Any) -> Outputs:
        """Feed the next chunk; returns the outputs it completed."""

    @abc.abstractmethod
    def close(self) -> Outputs:
        """End of the video: the remaining outputs."""


class Extractor(abc.ABC, Generic[C]):
    """Base of all extractors.

    Lifecycle: construct with a config (cheap, no model loaded; :attr:`config_hash` and
    :attr:`output_names` work already), :meth:`load` once (heavy), then feed items of the
    extractor's :attr:`input` with :meth:`extract_batch` (several short videos at once) or
    :meth:`open_stream` (one long video in chunks). :meth:`output_specs` and
    :meth:`provenance` need the model loaded, since dims and rates come from it.
    """

    #: Registry key, the short name users type.
    name: ClassVar[str]
    #: Bump when the numbers an extractor writes change for the same config.
    version: ClassVar[str]
    #: The decoded input this extractor needs.
    input: ClassVar[Input]
    #: The config dataclass of this extractor.
    config_class: type[C]
    #: Output name suffixes; "" is the main output, named like the extractor.
    output_suffixes: ClassVar[tuple[str, ...]] = ("",)
    #: Devices this extractor can compute on ("cpu" only for CPU-bound libraries).
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    #: True when :meth:`open_stream` holds a bounded amount of input whatever the video length.
    bounded_stream: ClassVar[bool] = False

    def __init__(self, config: C | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.config_class(**overrides)
        else:
            if not isinstance(config, self.config_class):
                raise TypeError(
                    f"{type(self).__name__} needs a {self.config_class.__name__}, "
                    f"got a {type(config).__name__}. Build one with {self.config_class.__name__}(...)."
                )
            if overrides:
                config = config.replace(**overrides)
        kind = str(config.device).partition(":")[0]
        if kind not in self.devices:
            raise ValueError(
                f"{self.name} runs on {' or '.join(self.devices)} only; device {config.device!r} is not possible. "
                "Leave its device setting out."
            )
        self._config: C = config
        self._loaded = False
        self._dependency_hashes: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._config!r})"

    @property
    def config(self) -> C:
        return self._config

    # -- identity --------------------------------------------------------------------------

    def dependencies(self) -> dict[str, str]:
        """Feature sets this extractor reads from the store: role -> feature name (none by default)."""
        return {}

    def bind_dependencies(self, hashes: Mapping[str, str]) -> None:
        """Record the config hash of each feature set this extractor reads (those of
        :meth:`dependencies` and any its feeder adds); they enter :attr:`config_hash`."""
        missing = sorted(set(self.dependencies().values()) - set(hashes))
        if missing:
            raise ExtractorError(f"{self.prefix}: no config hash given for the feature set(s) it reads: {', '.join(missing)}.")
        self._dependency_hashes = dict(sorted(hashes.items()))

    @property
    def dependency_hashes(self) -> dict[str, str]:
        return dict(self._dependency_hashes)

    @property
    def config_hash(self) -> str:
        """Stable hash of the settings that change the output, and of the features it reads (see :func:`config_hash`)."""
        return config_hash(self.name, self.version, self._config, self._dependency_hashes)

    @property
    def prefix(self) -> str:
        return self._config.name or self.name

    @property
    def output_names(self) -> tuple[str, ...]:
        """Feature-set names this extractor writes, main output first."""
        return tuple(self.prefix + suffix for suffix in self.output_suffixes)

    # -- loading ---------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> Extractor[C]:
        """Load the model (once; later calls do nothing). Returns self for chaining."""
        if not self._loaded:
            self._load()
            self._loaded = True
        return self

    def _require_loaded(self) -> None:
        if not self._loaded:
            self.load()

    @abc.abstractmethod
    def _load(self) -> None:
        """Load weights and everything output_specs/provenance need."""

    @abc.abstractmethod
    def output_specs(self) -> dict[str, OutputSpec]:
        """Spec of every output, keyed by output name (loads the model if needed)."""

    @abc.abstractmethod
    def _model_provenance(self) -> dict[str, Any]:
        """Model identity: id, revision or resolved commit, weight hashes where local."""

    @abc.abstractmethod
    def _libraries(self) -> tuple[str, ...]:
        """Distributions whose versions go into the provenance."""

    # -- computing -------------------------------------------------------------------------

    def validate(self, item: Any) -> Any:
        """Check one input item and return it in the form :meth:`extract_batch` takes; raise InputError otherwise.

        The runner calls this per video before batching, so a bad video is recorded as
        failed instead of failing the batch it would have joined.
        """
        return item

    @abc.abstractmethod
    def extract_batch(self, items: Sequence[Any]) -> list[Outputs]:
        """Outputs of many videos, one dict per video in input order."""

    def extract(self, item: Any) -> Outputs:
        """Outputs of one video."""
        return self.extract_batch([item])[0]

    def open_stream(self, info: Any) -> Stream:
        """Start feeding one long video in chunks; ``info`` is what the feeder knows of the whole
        video before the first chunk (audio: its length and statistics). The default keeps
        every chunk and extracts at close (memory grows with the video)."""
        self._require_loaded()
        return BufferedStream(self)

    def _join_chunks(self, chunks: list[Any]) -> Any:
        """The whole-video item made of the chunks a :class:`BufferedStream` kept (override per input)."""
        raise NotImplementedError(f"{type(self).__name__} does not join streamed chunks; give it a bounded open_stream.")

    # -- provenance ------------------------------------------------------------------------

    def provenance(self) -> dict[str, dict[str, Any]]:
        """JSON-ready provenance per output name, to be stored with that feature set."""
        self._require_loaded()
        model = self._model_provenance()
        libraries = library_versions(*self._libraries())
        result = {}
        for output_name, spec in self.output_specs().items():
            result[output_name] = {
                "extractor": self.name,
                "extractor_version": self.version,
                "output": output_name,
                "input": self.input.value,
                "kind": spec.kind.value,
                "model": model,
                "model_id": model.get("id") if isinstance(model, dict) else None,
                "config": self._config.to_dict(),
                "config_hash": self.config_hash,
                "depends_on": self.dependency_hashes,
                "dim": spec.dim,
                "rate": spec.rate,
                "dtype": spec.dtype,
                "columns": list(spec.columns) if spec.columns is not None else None,
                "description": spec.description,
                "libraries": libraries,
            }
        return result


class BufferedStream(Stream):
    """Keeps every chunk and extracts the whole video at close (memory grows with the video)."""

    def __init__(self, extractor: Extractor[Any]) -> None:
        self.extractor = extractor
        self._chunks: list[Any] = []

    def push(self, chunk: Any) -> Outputs:
        self._chunks.append(chunk)
        return {}

    def close(self) -> Outputs:
        item = self.extractor._join_chunks(self._chunks)
        self._chunks = []
        return self.extractor.extract(item)
