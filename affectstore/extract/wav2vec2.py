"""Self-supervised speech encoders (wav2vec2 family): hidden states per ~20 ms frame.

:class:`SpeechEncoderExtractor` holds everything wav2vec2, HuBERT and the audEERING VAD
model share: loading from a hub id or a local folder through one ``from_pretrained`` call,
checking that every weight was found, input normalisation, batching with padding and
attention masks, windowing of long clips, dtype handling. :class:`Wav2Vec2Extractor`
(registered as ``wav2vec2``) is the plain Wav2Vec2 encoder on top of it.

Why batched and windowed results match single-clip ones: with ``feat_extract_norm="layer"``
(the large/robust checkpoints) every stage is either per-frame (layer norms, projections),
a convolution whose padded positions are zeroed before the positional convolution, or
attention with the padded keys masked out; windows start on a frame boundary so each
computed frame covers exactly the samples it covers in the whole clip. Checkpoints with
``feat_extract_norm="group"`` (e.g. ``facebook/wav2vec2-base``) normalise the first
convolution over the whole input, so padding would change them: those are only batched
with inputs of equal length (in samples), as transformers' documentation advises, and a
clip's last segment runs to the clip's last sample, so the few trailing samples that make
no frame still count in that normalisation as they do when the model sees the whole clip.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from affectstore.extract.audio import (
    SAMPLE_RATE,
    AudioExtractor,
    AudioStream,
    FrameGeometry,
    Segment,
    WaveStats,
    normalize_waveform,
    plan_segments,
)
from affectstore.extract.base import Features, OutputKind, OutputSpec, batched
from affectstore.extract.hf import (
    HubModelConfig,
    Source,
    check_loading_info,
    compute_dtype,
    identify,
    load_config,
    load_weights,
    source_of,
    torch_device,
)
from affectstore.extract.errors import InputError, ModelLoadError, require
from affectstore.extract.registry import register

logger = logging.getLogger(__name__)

# Weights a checkpoint may legitimately lack: the SpecAugment mask embedding is only used
# in training and is absent from many fine-tuned checkpoints.
_OPTIONAL_WEIGHTS = ("masked_spec_embed",)


@dataclass(frozen=True, kw_only=True)
class SpeechEncoderConfig(HubModelConfig):
    """Settings of a transformer speech encoder.

    ``window_s`` seconds of frames are kept per window of a long clip, with ``context_s``
    seconds more computed (and dropped) on each side; clips up to
    ``window_s + 2 * context_s`` go through in one piece. ``normalize`` None follows the
    checkpoint's ``preprocessor_config.json`` (``do_normalize``). ``dtype`` is the compute
    dtype on GPU; on CPU half precision is computed in float32 (see the extractor docs).
    """

    window_s: float = 20.0
    context_s: float = 5.0
    normalize: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.window_s, int | float) or isinstance(self.window_s, bool) or not self.window_s > 0:
            raise ValueError(f"window_s must be a number of seconds > 0. Got {self.window_s!r} instead.")
        if not isinstance(self.context_s, int | float) or isinstance(self.context_s, bool) or not self.context_s >= 0:
            raise ValueError(f"context_s must be a number of seconds >= 0. Got {self.context_s!r} instead.")
        if self.normalize is not None and not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be None (follow the checkpoint), True or False. Got {self.normalize!r} instead.")


SC = TypeVar("SC", bound=SpeechEncoderConfig)


class SpeechEncoderExtractor(AudioExtractor[SC]):
    """Shared machinery of wav2vec2-style encoders; subclasses pick the model class and outputs."""

    version = "1"
    #: transformers config ``model_type`` values this extractor accepts.
    model_types: ClassVar[tuple[str, ...]] = ("wav2vec2",)
    #: Whether per-video outputs are computed from the mean of the last hidden state.
    pools: ClassVar[bool] = False

    # -- loading -----------------------------------------------------------------------

    def _model_class(self, transformers: Any) -> Any:
        return transformers.Wav2Vec2Model

    def _encoder_from(self, model: Any) -> Any:
        """The module that maps input_values to last_hidden_state (the model itself by default)."""
        return model

    def _check_model(self, model: Any, loading_info: dict[str, Any]) -> None:
        """Fail on weights the checkpoint lacks or has with other shapes (transformers only warns)."""
        check_loading_info(
            model, loading_info, self.config.model,
            f"a {'/'.join(self.model_types)} checkpoint meant for the '{self.name}' extractor", _OPTIONAL_WEIGHTS,
        )

    def _load(self) -> None:
        torch = require("torch")
        transformers = require("transformers")
        cfg = self.config

        device = torch_device(torch, cfg.device)
        compute = compute_dtype(torch, cfg.dtype, device, self.name)
        source = source_of(cfg)
        model_config = load_config(transformers, cfg, source, self.model_types, self.name)
        if getattr(model_config, "add_adapter", False):
            raise ModelLoadError(
                f"Checkpoint {cfg.model!r} has an adapter on top of the encoder (add_adapter=True), which changes "
                "the frame rate; such checkpoints are not supported."
            )
        model, info = load_weights(self._model_class(transformers), cfg, source, model_config, compute)
        self._check_model(model, info)
        model.eval()
        model.to(device)
        encoder = self._encoder_from(model)

        self._torch = torch
        self._device = device
        self._compute_dtype = compute
        self._model = model
        self._encoder = encoder
        self._model_config = model_config
        self._geometry = self._frame_geometry(model_config)
        self._check_geometry(encoder)
        self._mask = getattr(model_config, "feat_extract_norm", "group") == "layer"
        self._normalize = self._resolve_normalize(transformers, source, model_config)
        self._layer = self._select_layer(encoder, model_config)
        self._window_frames = max(1, round(cfg.window_s * self._geometry.rate))
        self._context_frames = round(cfg.context_s * self._geometry.rate)
        self._identity = identify(cfg, source, self.name)
        logger.info(
            "%s: loaded %s (%s, %d layers, hidden %d) on %s, compute %s, layer %d, normalize %s",
            self.name,
            cfg.model,
            type(model).__name__,
            model_config.num_hidden_layers,
            model_config.hidden_size,
            device,
            str(compute).replace("torch.", ""),
            self._layer,
            self._normalize,
        )

    @staticmethod
    def _frame_geometry(model_config: Any) -> FrameGeometry:
        stride, field = 1, 1
        for kernel, step in zip(model_config.conv_kernel, model_config.conv_stride, strict=True):
            field += (kernel - 1) * stride
            stride *= step
        return FrameGeometry(stride=stride, receptive_field=field)

    def _check_geometry(self, encoder: Any) -> None:
        # Windowing relies on our frame arithmetic; make sure it agrees with the model's own.
        torch = self._torch
        probe = [self._geometry.receptive_field, self._geometry.receptive_field + 3 * self._geometry.stride + 7, 48_123]
        theirs = encoder._get_feat_extract_output_lengths(torch.tensor(probe)).tolist()
        ours = [self._geometry.n_frames(n) for n in probe]
        if [int(t) for t in theirs] != ours:
            raise ModelLoadError(
                f"Frame count of {self.config.model!r} ({theirs} for {probe} samples) differs from the conv stack "
                f"arithmetic ({ours}); this checkpoint's front end is not supported."
            )

    def _resolve_normalize(self, transformers: Any, source: Source, model_config: Any) -> bool:
        cfg = self.config
        kwargs = {k: v for k, v in source.kwargs.items() if k != "use_safetensors"}
        try:
            feature_extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(source.path, **kwargs)
        except (OSError, ValueError):
            feature_extractor = None
        if feature_extractor is not None and int(feature_extractor.sampling_rate) != SAMPLE_RATE:
            raise ModelLoadError(
                f"Checkpoint {cfg.model!r} expects audio at {feature_extractor.sampling_rate} Hz; "
                f"affectstore feeds {SAMPLE_RATE} Hz."
            )
        if cfg.normalize is not None:
            return cfg.normalize
        if feature_extractor is not None:
            return bool(feature_extractor.do_normalize)
        # Without a preprocessor config, follow the convention of the released checkpoints:
        # layer-norm front ends were trained on normalised input, group-norm ones were not.
        guess = getattr(model_config, "feat_extract_norm", "group") == "layer"
        logger.warning(
            "%s: %r has no preprocessor_config.json; normalize=%s guessed from feat_extract_norm. "
            "Set normalize explicitly to silence this.",
            self.name,
            cfg.model,
            guess,
        )
        return guess

    def _select_layer(self, encoder: Any, model_config: Any) -> int:
        return int(model_config.num_hidden_layers)

    # -- outputs ------------------------------------------------------------------------

    @property
    def store_dtype(self) -> str:
        """dtype of the stored values: float16 when asked, otherwise float32 (numpy has no bfloat16)."""
        return self.config.store_dtype

    @property
    def min_samples(self) -> int:
        if self.loaded:
            return self._geometry.receptive_field
        return 400  # the conv stack of every released wav2vec2/HuBERT checkpoint

    @property
    def geometry(self) -> FrameGeometry:
        """Frame stride and receptive field of the loaded model (loads it if needed)."""
        self._require_loaded()
        return self._geometry

    def is_long(self, n_samples: int) -> bool:
        self._require_loaded()
        return self._geometry.n_frames(n_samples) > self._window_frames + 2 * self._context_frames

    @property
    def max_segment_samples(self) -> int:
        """Longest input (samples) one forward pass ever sees per item: a runner's memory bound."""
        self._require_loaded()
        frames = self._window_frames + 2 * self._context_frames
        return (frames - 1) * self._geometry.stride + self._geometry.receptive_field

    def _frame_outputs(self, hidden: Any) -> dict[str, Any]:
        """Per-frame outputs (suffix -> T x D tensor) from the selected hidden states."""
        return {"": hidden}

    def _video_outputs(self, mean_hidden: Any) -> dict[str, Any]:
        """Per-video outputs (suffix -> 1 x D tensor) from the mean last hidden state."""
        return {}

    def output_specs(self) -> dict[str, OutputSpec]:
        self._require_loaded()
        return {
            self.prefix: OutputSpec(
                self.prefix,
                int(self._model_config.hidden_size),
                self._geometry.rate,
                self.store_dtype,
                None,
                f"hidden states after transformer layer {self._layer} of {self._model_config.num_hidden_layers}",
                kind=OutputKind.FRAMES,
            )
        }

    def _libraries(self) -> tuple[str, ...]:
        return ("torch", "transformers", "safetensors")

    def _model_provenance(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "id": cfg.model,
            "revision": cfg.revision,
            # commit of the hub snapshot loaded (None for local folders) and SHA-256 of its weight files
            **self._identity,
            "class": type(self._model).__name__,
            "model_type": self._model_config.model_type,
            "architectures": list(getattr(self._model_config, "architectures", None) or []),
            "num_hidden_layers": int(self._model_config.num_hidden_layers),
            "hidden_size": int(self._model_config.hidden_size),
            "layer": self._layer,
            "normalize": self._normalize,
            "compute_dtype": str(self._compute_dtype).replace("torch.", ""),
            "frame_stride_samples": self._geometry.stride,
            "receptive_field_samples": self._geometry.receptive_field,
            "sample_rate": SAMPLE_RATE,
        }

    # -- running ------------------------------------------------------------------------

    def _prepare(self, waveform: np.ndarray) -> np.ndarray:
        array = self.validate(waveform)
        # Normalise over the whole clip before windowing, so windows see the same scale.
        return normalize_waveform(array) if self._normalize else array

    def _forward(self, inputs: Sequence[np.ndarray]) -> list[Any]:
        """Last hidden state (compute dtype, on device) of each input, trimmed to its own frames."""
        torch = self._torch
        lengths = [len(x) for x in inputs]
        longest = max(lengths)
        batch = np.zeros((len(inputs), longest), dtype=np.float32)
        for row, x in enumerate(inputs):
            batch[row, : len(x)] = x
        values = torch.from_numpy(batch).to(self._device, self._compute_dtype)
        mask = None
        if len(set(lengths)) > 1:
            if not self._mask:
                raise RuntimeError("group-norm models must only be batched with inputs of equal length")
            mask = torch.from_numpy(np.arange(longest)[None, :] < np.asarray(lengths)[:, None]).to(self._device, torch.long)
        with torch.inference_mode():
            hidden = self._encoder(values, attention_mask=mask).last_hidden_state
        return [hidden[row, : self._geometry.n_frames(n)] for row, n in enumerate(lengths)]

    def _input_range(self, segment: Segment, n_samples: int) -> tuple[int, int]:
        """Samples [start, stop) fed for a segment of a clip (or buffer) of ``n_samples`` samples.

        A segment ends with its last frame's receptive field, except the clip's last one,
        which runs to the clip end: the trailing samples (fewer than one stride) make no frame
        of their own, but a group-norm front end normalises over every input sample, so the
        whole clip must go in for its numbers to equal the model's on the whole clip.
        """
        start, stop = segment.sample_range(self._geometry)
        return start, (n_samples if segment.last else stop)

    def _batches(self, segments: Sequence[Segment], arrays: Sequence[np.ndarray]) -> Iterator[Sequence[Segment]]:
        """Batches of segments in the given order; group-norm models only batch inputs of equal length."""
        if self._mask:
            yield from batched(segments, self.config.batch_size)
            return

        def length(segment: Segment) -> int:
            start, stop = self._input_range(segment, len(arrays[segment.clip]))
            return stop - start

        run: list[Segment] = []
        for segment in segments:
            if run and (length(segment) != length(run[0]) or len(run) == self.config.batch_size):
                yield run
                run = []
            run.append(segment)
        if run:
            yield run

    def _run(self, segments: Sequence[Segment], arrays: Sequence[np.ndarray]) -> Iterator[tuple[Segment, dict[str, np.ndarray], Any]]:
        """Forward segments batch by batch; yield each with its kept frame outputs and hidden-state sum."""
        for group in self._batches(segments, arrays):
            inputs = []
            for s in group:
                start, stop = self._input_range(s, len(arrays[s.clip]))
                inputs.append(arrays[s.clip][start:stop])
            hidden = self._forward(inputs)
            for segment, h in zip(group, hidden, strict=True):
                kept = h[segment.keep_start - segment.start : segment.keep_stop - segment.start]
                with self._torch.inference_mode():
                    computed = self._frame_outputs(kept)
                outputs = {
                    suffix: t.float().cpu().numpy().astype(self.store_dtype, copy=False) for suffix, t in computed.items()
                }
                # The pooled mean must cover the whole clip, so windows add their kept frames' sums.
                total = kept.double().sum(dim=0).cpu() if self.pools else None
                yield segment, outputs, total

    def _finish(self, n_samples: int, n_frames: int, sums: Sequence[Any]) -> dict[str, Features]:
        """Per-video outputs of a clip from its hidden-state sums."""
        if not self.pools:
            return {}
        torch = self._torch
        mean = (torch.stack(list(sums)).sum(dim=0) / n_frames).to(self._device, self._compute_dtype)
        with torch.inference_mode():
            outputs = self._video_outputs(mean)
        centre = np.array([n_samples / SAMPLE_RATE / 2.0], dtype=np.float64)
        return {
            self.prefix + suffix: Features(t.reshape(1, -1).float().cpu().numpy().astype(self.store_dtype), centre)
            for suffix, t in outputs.items()
        }

    def extract_batch(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, Features]]:
        """Outputs of many clips (input order). Clips and windows of long clips are sorted by
        length and batched ``batch_size`` at a time, so similar lengths share a padded batch."""
        self._require_loaded()
        arrays = [self._prepare(w) for w in waveforms]
        segments = [
            s
            for clip, array in enumerate(arrays)
            for s in plan_segments(clip, len(array), self._geometry, self._window_frames, self._context_frames)
        ]
        # Longest first: the first batch shows at once whether memory suffices. Sorting by input
        # samples (not frames) puts the equal-length inputs a group-norm model batches side by side.
        def input_length(s: Segment) -> int:
            start, stop = self._input_range(s, len(arrays[s.clip]))
            return stop - start

        segments.sort(key=lambda s: (-input_length(s), s.clip, s.start))
        frame_parts: list[dict[int, dict[str, np.ndarray]]] = [{} for _ in arrays]
        sums: list[list[Any]] = [[] for _ in arrays]
        for segment, outputs, total in self._run(segments, arrays):
            frame_parts[segment.clip][segment.keep_start] = outputs
            if total is not None:
                sums[segment.clip].append(total)

        results = []
        for clip, array in enumerate(arrays):
            n_frames = self._geometry.n_frames(len(array))
            times = self._geometry.times(0, n_frames)
            parts = [frame_parts[clip][k] for k in sorted(frame_parts[clip])]
            result = {
                self.prefix + suffix: Features(np.concatenate([p[suffix] for p in parts], axis=0), times)
                for suffix in parts[0]
            }
            result.update(self._finish(len(array), n_frames, sums[clip]))
            results.append(result)
        return results

    def stream(self, waveform: np.ndarray) -> Iterator[dict[str, Features]]:
        """One clip in time-ordered chunks (``batch_size`` windows each); per-video outputs in the last chunk.

        Memory stays bounded by the window size and batch size however long the clip is,
        apart from the waveform itself and whatever the caller keeps of the chunks.
        """
        self._require_loaded()
        array = self._prepare(waveform)
        n_frames = self._geometry.n_frames(len(array))
        segments = plan_segments(0, len(array), self._geometry, self._window_frames, self._context_frames)
        sums: list[Any] = []
        pending: dict[str, list[Features]] = {}
        for segment, outputs, total in self._run(segments, [array]):
            times = self._geometry.times(segment.keep_start, segment.keep_stop)
            for suffix, values in outputs.items():
                pending.setdefault(self.prefix + suffix, []).append(Features(values, times))
            if total is not None:
                sums.append(total)
            # _run yields a batch's segments back to back; emit once a batch is complete.
            if segment.last or len(next(iter(pending.values()))) == self.config.batch_size:
                chunk = {name: Features.concatenate(parts) for name, parts in pending.items()}
                pending = {}
                if segment.last:
                    chunk.update(self._finish(len(array), n_frames, sums))
                yield chunk

    bounded_stream = True

    def open_stream(self, stats: WaveStats) -> AudioStream:
        """Feed a clip block by block: windows run as soon as their samples have arrived, so at most
        ``batch_size`` windows (plus one block) of samples are held, whatever the clip length.
        ``stats`` (length, mean, variance of the whole clip) give the same normalisation as
        :meth:`extract` on the whole array."""
        self._require_loaded()
        if stats.n_samples < self.min_samples:
            raise InputError(
                f"Clip too short for {self.name}: {stats.n_samples} samples ({stats.seconds:.3f} s), "
                f"need at least {self.min_samples} ({self.min_samples / self.sample_rate:.3f} s at {self.sample_rate} Hz)."
            )
        return _SpeechStream(self, stats)


class _SpeechStream(AudioStream):
    """Windowed streaming for speech encoders (see :meth:`SpeechEncoderExtractor.open_stream`)."""

    def __init__(self, extractor: SpeechEncoderExtractor[Any], stats: WaveStats) -> None:
        super().__init__(extractor, stats)
        self._encoder = ex = extractor
        self._geometry = ex._geometry
        self._scale = (stats.mean, math.sqrt(stats.var + 1e-7)) if ex._normalize else None
        self._todo: deque[Segment] = deque(
            plan_segments(0, stats.n_samples, ex._geometry, ex._window_frames, ex._context_frames)
        )
        self._ready: list[Segment] = []
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # clip sample index of self._buffer[0]; always a frame boundary
        self._sums: list[Any] = []

    def push(self, block: np.ndarray) -> dict[str, Features]:
        array = self._accept(block)
        if self._scale is not None:
            array = ((array - self._scale[0]) / self._scale[1]).astype(np.float32)
        self._buffer = np.concatenate([self._buffer, array]) if self._buffer.size else array
        return self._drain(final=False)

    def close(self) -> dict[str, Features]:
        self._check_complete()
        outputs = self._drain(final=True)
        ex = self._encoder
        outputs.update(ex._finish(self.stats.n_samples, self._geometry.n_frames(self.stats.n_samples), self._sums))
        self._buffer = np.zeros(0, dtype=np.float32)
        return outputs

    def _drain(self, final: bool) -> dict[str, Features]:
        ex = self._encoder
        # A segment is ready once its input has arrived; the last one's input runs to the clip end.
        while self._todo and ex._input_range(self._todo[0], self.stats.n_samples)[1] <= self.received:
            self._ready.append(self._todo.popleft())
        parts: dict[str, list[Features]] = {}
        size = ex.config.batch_size
        while self._ready and (final or len(self._ready) >= size):
            group, self._ready = self._ready[:size], self._ready[size:]
            offset = self._buffer_start // self._geometry.stride
            relative = [
                Segment(0, s.start - offset, s.stop - offset, s.keep_start - offset, s.keep_stop - offset, s.last)
                for s in group
            ]
            for segment, outputs, total in ex._run(relative, [self._buffer]):
                start, stop = segment.keep_start + offset, segment.keep_stop + offset
                times = self._geometry.times(start, stop)
                for suffix, values in outputs.items():
                    parts.setdefault(ex.prefix + suffix, []).append(Features(values, times))
                if total is not None:
                    self._sums.append(total)
            # Drop the samples no later window needs (windows start on frame boundaries).
            upcoming = self._ready[0] if self._ready else self._todo[0] if self._todo else None
            keep_from = upcoming.start * self._geometry.stride if upcoming is not None else self.received
            self._buffer = self._buffer[keep_from - self._buffer_start :].copy()
            self._buffer_start = keep_from
        return {name: Features.concatenate(chunks) for name, chunks in parts.items()}


@dataclass(frozen=True, kw_only=True)
class LayeredEncoderConfig(SpeechEncoderConfig):
    """A speech encoder whose output is one layer's hidden states. ``layer``: None or -1 for the
    last hidden state; k >= 1 for the output of transformer layer k; 0 for the input of the
    first transformer layer (as transformers' ``hidden_states[k]``). Negative values count from
    the end like Python indices. The last layer (None, -1 or k = num_hidden_layers) is always
    ``last_hidden_state``, which for stable-layer-norm checkpoints (large, robust) includes the
    encoder's final layer norm, as ``hidden_states[-1]`` did in transformers 4 (transformers 5
    records it without that norm)."""

    layer: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer is not None and (isinstance(self.layer, bool) or not isinstance(self.layer, int)):
            raise ValueError(f"layer must be None or an int. Got {self.layer!r} instead.")


@dataclass(frozen=True, kw_only=True)
class Wav2Vec2ExtractorConfig(LayeredEncoderConfig):
    """wav2vec2 settings; ``layer`` as in :class:`LayeredEncoderConfig`."""

    model: str = "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim"


LC = TypeVar("LC", bound=LayeredEncoderConfig)


class LayerSelectingExtractor(SpeechEncoderExtractor[LC]):
    """A speech encoder whose output is the hidden state of a chosen layer."""

    def _select_layer(self, encoder: Any, model_config: Any) -> int:
        layers = int(model_config.num_hidden_layers)
        requested = self.config.layer
        if requested is None:
            return layers
        if not -(layers + 1) <= requested <= layers:
            raise ValueError(
                f"layer must be in the range [{-(layers + 1)}, {layers}] for {self.config.model!r} "
                f"({layers} transformer layers). Got {requested} instead."
            )
        layer = requested if requested >= 0 else layers + 1 + requested
        if layer < layers:
            # Drop the layers above the chosen one (saves their compute and memory). The
            # stable-layer-norm encoder applies a final layer norm after the last layer that
            # belongs to the full model's output only, so it goes too.
            torch = require("torch")
            encoder.encoder.layers = encoder.encoder.layers[:layer]
            if getattr(model_config, "do_stable_layer_norm", False):
                encoder.encoder.layer_norm = torch.nn.Identity()
        return layer


@register
class Wav2Vec2Extractor(LayerSelectingExtractor[Wav2Vec2ExtractorConfig]):
    """Hidden states of any Wav2Vec2 checkpoint (hub id or local folder), ~50 Hz, one row per frame.

    Default model: ``audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim`` (1024-d,
    licence CC BY-NC-SA 4.0). Output ``wav2vec2``: T x hidden_size, times at frame centres
    (``(i * 320 + 200) / 16000`` s for the standard conv stack).
    """

    name = "wav2vec2"
    config_class = Wav2Vec2ExtractorConfig
    model_types = ("wav2vec2",)
