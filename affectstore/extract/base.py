"""The extractor contract: inputs, outputs, config dataclasses, config hash, provenance, registry.

An extractor turns one decoded input of a video (here: a float32 mono waveform at 16 kHz)
into one or more named outputs. Each output becomes its own feature set in the store and
is a :class:`Features` pair: ``values`` (T x D) and ``times`` (T, float64 seconds from the
clip start, frame centres). Extractors never see paths; the runner decodes each video once
and hands the same array to every extractor that declares the same :class:`Input`.

Output naming: the output named after the extractor is the result its model defines
(``wav2vec2``, ``hubert``: hidden states per frame; ``vad``: one arousal/dominance/valence
vector per video; ``egemaps``: the 88 functionals per video). Additional views carry a
suffix (``vad-frames``: the VAD head applied to every frame; ``egemaps-lld``: the 25
low-level descriptors per 10 ms). ``ExtractorConfig.name`` replaces the prefix, so two
runs of one extractor with different settings (say two wav2vec2 layers) can live side by
side as ``w2v-l6`` and ``w2v-l12``.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import importlib
import importlib.metadata
import json
import logging
import math
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

#: Every audio extractor receives mono float32 audio at this rate (samples per second).
SAMPLE_RATE = 16_000

#: Names kept for extractor families that come later; registering them is allowed,
#: asking for one before it is registered says it is planned rather than unknown.
RESERVED_NAMES: tuple[str, ...] = (
    "mobilevit",
    "mobilefacenet",
    "enet-b0",
    "fer",
    "vit-huge",
    "whisper",
    "gte",
    "roberta-goemotions",
    "minilm",
    "gigachat",
    "openai-small",
)

INSTALL_HINT = "pip install 'affectstore[extract]'"


# --------------------------------------------------------------------------- errors


class ExtractorError(Exception):
    """Base class of the errors raised by affectstore.extract."""


class UnknownExtractorError(ExtractorError, LookupError):
    """A name that no extractor is registered under."""


class DuplicateExtractorError(ExtractorError, ValueError):
    """A second registration under a name that is already taken."""


class MissingDependencyError(ExtractorError, ImportError):
    """An optional package an extractor needs is not installed."""


class ModelLoadError(ExtractorError, RuntimeError):
    """A checkpoint could not be loaded completely (missing or mismatched weights, bad config)."""


class InputError(ExtractorError, ValueError):
    """An input array an extractor cannot process (wrong shape, dtype, rate or too short)."""


def require(module: str, extra: str = "extract") -> ModuleType:
    """Import an optional heavy module, or fail with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"The '{module}' package is needed by this extractor but could not be imported ({error}). "
            f"Install it with: pip install 'affectstore[{extra}]'"
        ) from error


# --------------------------------------------------------------------------- inputs and outputs


class Input(str, Enum):
    """The decoded input an extractor needs; the runner decodes each kind once per video."""

    AUDIO = "audio"  # float32 mono waveform at SAMPLE_RATE
    FRAMES = "frames"  # video frames at a rate
    FACES = "faces"  # face crops
    TRANSCRIPT = "transcript"  # timed text segments


@dataclass(frozen=True)
class Features:
    """One output for one clip (or one chunk of it): ``values`` T x D, ``times`` T seconds (float64)."""

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
        """Join chunks of one output in time order (as yielded by ``stream``)."""
        if not chunks:
            raise ValueError("Features.concatenate needs at least one chunk, got none.")
        if len(chunks) == 1:
            return chunks[0]
        return Features(
            np.concatenate([c.values for c in chunks], axis=0),
            np.concatenate([c.times for c in chunks], axis=0),
        )


@dataclass(frozen=True)
class OutputSpec:
    """What an output holds: its feature-set name, dim, nominal rate (Hz; None for one row per video)."""

    name: str
    dim: int
    rate: float | None
    dtype: str
    columns: tuple[str, ...] | None = None
    description: str = ""

    @property
    def per_video(self) -> bool:
        """True for outputs with a single row per video (times holds the clip centre)."""
        return self.rate is None


# --------------------------------------------------------------------------- config


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal configs give byte-equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


C = TypeVar("C", bound="ExtractorConfig")


@dataclass(frozen=True, kw_only=True)
class ExtractorConfig:
    """Settings shared by every extractor. Subclasses add the fields their model needs.

    ``device``, ``batch_size`` and ``name`` do not change the numbers an extractor writes,
    so they are left out of :meth:`config_hash`; every other field is in it.
    """

    #: torch device string (``cpu``, ``cuda``, ``cuda:1``); ignored by CPU-only extractors.
    device: str = "cpu"
    #: Segments (clips or windows of long clips) per forward pass.
    batch_size: int = 8
    #: Feature-set name prefix; None uses the extractor's registered name.
    name: str | None = None

    #: Fields that never change the output and so stay out of the hash.
    NON_OUTPUT_FIELDS: ClassVar[frozenset[str]] = frozenset({"device", "batch_size", "name"})

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not self.device.strip():
            raise ValueError(f"device must be a non-empty string such as 'cpu' or 'cuda:0'. Got {self.device!r} instead.")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1. Got {self.batch_size!r} instead.")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip() or "/" in self.name):
            raise ValueError(f"name must be None or a non-empty string without '/'. Got {self.name!r} instead.")

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-ready values (saved next to the output)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def output_fields(self) -> dict[str, Any]:
        """The fields that change the output: what the config hash covers."""
        return {k: v for k, v in self.to_dict().items() if k not in self.NON_OUTPUT_FIELDS}

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build from a mapping (a recipe table, a stored config); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown setting(s) {', '.join(map(repr, unknown))} for {cls.__name__}. "
                f"Valid settings: {', '.join(sorted(known))}."
            )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)


def config_hash(extractor_name: str, extractor_version: str, config: ExtractorConfig) -> str:
    """Hash of extractor name, version and output-changing config fields (the store's
    :func:`affectstore.store.config_hash`: SHA-256 of canonical JSON, first 16 hex digits).

    Computable before any model is loaded, so a runner can decide what to skip cheaply.
    A local model folder is hashed as the path string; the weights' own SHA-256 is in the
    provenance.
    """
    from affectstore.store.provenance import config_hash as store_config_hash

    payload = {"extractor": extractor_name, "version": extractor_version, "config": config.output_fields()}
    # canonical_json first: it rejects NaN and non-JSON values, which the store's hash would stringify.
    return store_config_hash(json.loads(canonical_json(payload)))


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


# --------------------------------------------------------------------------- extractor base classes


class Extractor(abc.ABC):
    """Base of all extractors.

    Lifecycle: construct with a config (cheap, no model loaded; :attr:`config_hash` and
    :attr:`output_names` work already), :meth:`load` once (heavy), then call the
    input-specific methods of the subclass. :meth:`output_specs` and :meth:`provenance`
    need the model loaded, since dims and rates come from it.
    """

    #: Registry key, the short name users type.
    name: ClassVar[str]
    #: Bump when the numbers an extractor writes change for the same config.
    version: ClassVar[str]
    #: The decoded input this extractor needs.
    input: ClassVar[Input]
    #: The config dataclass of this extractor.
    config_class: ClassVar[type[ExtractorConfig]]
    #: Output name suffixes; "" is the main output, named like the extractor.
    output_suffixes: ClassVar[tuple[str, ...]] = ("",)

    def __init__(self, config: ExtractorConfig | None = None, **overrides: Any) -> None:
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
        self._config = config
        self._loaded = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._config!r})"

    @property
    def config(self) -> ExtractorConfig:
        return self._config

    @property
    def config_hash(self) -> str:
        """Stable hash of the settings that change the output (see :func:`config_hash`)."""
        return config_hash(self.name, self.version, self._config)

    @property
    def prefix(self) -> str:
        return self._config.name or self.name

    @property
    def output_names(self) -> tuple[str, ...]:
        """Feature-set names this extractor writes, main output first."""
        return tuple(self.prefix + suffix for suffix in self.output_suffixes)

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> Extractor:
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
                "model": model,
                "config": self._config.to_dict(),
                "config_hash": self.config_hash,
                "dim": spec.dim,
                "rate": spec.rate,
                "dtype": spec.dtype,
                "columns": list(spec.columns) if spec.columns is not None else None,
                "description": spec.description,
                "libraries": libraries,
            }
        return result


class AudioExtractor(Extractor):
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

    def extract(self, waveform: np.ndarray) -> dict[str, Features]:
        """Outputs of one clip."""
        return self.extract_batch([waveform])[0]

    @abc.abstractmethod
    def extract_batch(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, Features]]:
        """Outputs of many clips, one dict per clip in input order."""

    def stream(self, waveform: np.ndarray) -> Iterator[dict[str, Features]]:
        """Outputs of one clip in chunks (time order); per-video outputs in the last chunk."""
        yield self.extract(waveform)

    def is_long(self, n_samples: int) -> bool:
        """Whether a clip this long is processed in several windows (runner: prefer :meth:`stream`)."""
        return False

    #: True when :meth:`open_stream` holds a bounded number of samples whatever the clip length.
    bounded_stream: ClassVar[bool] = False

    def open_stream(self, stats: WaveStats) -> AudioStream:
        """Start feeding one clip of known length and statistics in consecutive blocks (see :class:`AudioStream`).

        The default keeps every block and extracts at :meth:`AudioStream.close`, so its memory
        grows with the clip; extractors with ``bounded_stream = True`` process windows as the
        blocks arrive. ``stats`` must describe the whole clip (a first pass over it).
        """
        self._require_loaded()
        if stats.n_samples < self.min_samples:
            raise InputError(
                f"Clip too short for {self.name}: {stats.n_samples} samples, need at least {self.min_samples}."
            )
        return BufferedStream(self, stats)


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


class AudioStream(abc.ABC):
    """One clip fed to an extractor in consecutive blocks: :meth:`push` each block in order, then :meth:`close`.

    Each call returns the outputs completed so far (output name -> :class:`Features`, rows in
    time order, possibly none); per-video outputs come from :meth:`close`. Joining everything
    returned equals ``extractor.extract(whole clip)`` to float tolerance.
    """

    def __init__(self, extractor: AudioExtractor, stats: WaveStats) -> None:
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


class BufferedStream(AudioStream):
    """Keeps every block and extracts the whole clip at close (memory grows with the clip)."""

    def __init__(self, extractor: AudioExtractor, stats: WaveStats) -> None:
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


# --------------------------------------------------------------------------- registry


E = TypeVar("E", bound=type[Extractor])

_REGISTRY: dict[str, type[Extractor]] = {}


def register(cls: E) -> E:
    """Class decorator: make an extractor available under ``cls.name``. A taken name is an error."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} must set a class attribute 'name' (the short name users type) before registering.")
    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        raise TypeError(f"Only Extractor subclasses can be registered, got {cls!r}.")
    existing = _REGISTRY.get(name)
    if existing is not None:
        raise DuplicateExtractorError(
            f"Extractor name '{name}' is already registered by {existing.__module__}.{existing.__qualname__}; "
            f"cannot register {cls.__module__}.{cls.__qualname__} under it. Choose another name."
        )
    _REGISTRY[name] = cls
    logger.debug("registered extractor %r -> %s", name, cls.__qualname__)
    return cls


def unregister(name: str) -> None:
    """Remove a registration (for tests and plugins that replace an extractor)."""
    if name not in _REGISTRY:
        raise UnknownExtractorError(_unknown_message(name))
    del _REGISTRY[name]


def available_extractors() -> list[str]:
    """Registered extractor names, sorted."""
    return sorted(_REGISTRY)


def _unknown_message(name: str) -> str:
    known = ", ".join(available_extractors()) or "(none)"
    if name in RESERVED_NAMES:
        return f"Extractor '{name}' is planned but not available yet. Available extractors: {known}."
    return f"Unknown extractor '{name}'. Known extractors: {known}."


def get_extractor_class(name: str) -> type[Extractor]:
    """The class registered under ``name``; unknown names raise an error listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownExtractorError(_unknown_message(name)) from None


def create_extractor(
    name: str, config: ExtractorConfig | Mapping[str, Any] | None = None, /, **overrides: Any
) -> Extractor:
    """Instantiate the extractor registered under ``name`` (model not loaded yet).

    ``config`` is its config dataclass or a mapping of settings (as in a recipe);
    keyword overrides win over both, e.g. ``create_extractor("hubert", device="cuda")``.
    ``name`` and ``config`` are positional-only, so every config field, including the
    feature-set ``name``, can be given as a keyword: ``create_extractor("wav2vec2", name="w2v-l6", layer=6)``.
    """
    cls = get_extractor_class(name)
    if config is None:
        config = cls.config_class(**overrides)
    elif isinstance(config, Mapping):
        config = cls.config_class.from_dict({**config, **overrides})
    elif overrides:
        config = config.replace(**overrides)
    return cls(config)


# --------------------------------------------------------------------------- small numeric helpers


def normalize_waveform(waveform: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole clip (float32), as wav2vec2 feature extractors do.

    Statistics are accumulated in float64 so that long clips do not lose precision; the
    1e-7 floor matches transformers' Wav2Vec2FeatureExtractor so outputs agree with it.
    """
    mean = float(np.mean(waveform, dtype=np.float64))
    var = float(np.var(waveform, dtype=np.float64))
    return ((waveform - mean) / math.sqrt(var + 1e-7)).astype(np.float32)


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]

