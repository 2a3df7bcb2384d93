"""Any Hugging Face vision encoder on face crops (registered as ``hf-image``), with presets.

``hf-image`` loads ViT, DINOv2, CLIP (the vision tower of a full CLIP checkpoint too) or any
``AutoModel`` image encoder from a hub id or a local folder, preprocesses each face with the
checkpoint's own image processor (Pillow backend: no torchvision), and pools one layer's
hidden states per face: ``cls`` (the first token), ``mean`` (all tokens) or ``pooler`` (the
model's pooled output). Presets:

- ``vit-huge``: ``google/vit-huge-patch14-224-in21k``, mean of the last hidden state, 1280-d
  (the ViT-Huge face embeddings of Hallmen et al.);
- ``dinov2-large``: ``facebook/dinov2-large``, CLS token of the last hidden state, 1024-d;
- ``clip-vit-b16``: ``openai/clip-vit-base-patch16``, vision tower's pooled output, 768-d.

On GPU ``dtype`` float16/bfloat16 is the compute dtype; batches hold faces of several videos.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from affectstore.extract.base import OutputSpec
from affectstore.extract.errors import ModelLoadError, require
from affectstore.extract.hf import (
    HubModelConfig,
    check_loading_info,
    compute_dtype,
    identify,
    load_config,
    load_weights,
    source_of,
    torch_device,
)
from affectstore.extract.images import ImageExtractor
from affectstore.extract.registry import register

logger = logging.getLogger(__name__)

POOLINGS = ("cls", "mean", "pooler")
#: Families whose encoder is loaded by AutoModel, plus CLIP's vision tower.
MODEL_TYPES = ("vit", "dinov2", "clip", "clip_vision_model", "deit", "beit", "swin", "convnext", "siglip", "siglip_vision_model")


@dataclass(frozen=True, kw_only=True)
class HfImageConfig(HubModelConfig):
    """``pooling``: ``cls``, ``mean`` or ``pooler``; ``layer``: None for the last hidden state, k for
    ``hidden_states[k]`` (0: the embeddings; negative counts from the end)."""

    model: str = "google/vit-base-patch16-224-in21k"
    pooling: str = "mean"
    layer: int | None = None
    batch_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}. Got {self.pooling!r} instead.")
        if self.layer is not None and (isinstance(self.layer, bool) or not isinstance(self.layer, int)):
            raise ValueError(f"layer must be None or an int. Got {self.layer!r} instead.")
        if self.pooling == "pooler" and self.layer is not None:
            raise ValueError("pooling 'pooler' is the model's own pooled output of the last layer; leave layer unset or pool 'cls'/'mean'.")


@register
class HfImageExtractor(ImageExtractor[HfImageConfig]):
    """One pooled embedding per face from a Hugging Face vision encoder (see the module docstring)."""

    name = "hf-image"
    version = "1"
    config_class = HfImageConfig

    def _load(self) -> None:
        torch = require("torch")
        transformers = require("transformers")
        cfg = self.config
        device = torch_device(torch, cfg.device)
        dtype = compute_dtype(torch, cfg.dtype, device, self.prefix)
        source = source_of(cfg)
        model_config = load_config(transformers, cfg, source, MODEL_TYPES, self.name)
        model_type = model_config.model_type
        if model_type == "clip":
            model_class, model_config = transformers.CLIPVisionModel, model_config.vision_config
        elif model_type == "siglip":
            model_class, model_config = transformers.SiglipVisionModel, model_config.vision_config
        elif model_type == "clip_vision_model":
            model_class = transformers.CLIPVisionModel
        else:
            model_class = transformers.AutoModel
        model, info = load_weights(model_class, cfg, source, model_config, dtype)
        # A vision tower loaded from a full CLIP checkpoint leaves the text weights unused, never missing.
        check_loading_info(model, info, cfg.model, f"a {model_type} vision encoder", ("pooler",) if cfg.pooling != "pooler" else ())
        kwargs = {k: v for k, v in source.kwargs.items() if k != "use_safetensors"}
        try:
            self._processor = transformers.AutoImageProcessor.from_pretrained(source.path, backend="pil", **kwargs)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"Checkpoint {cfg.model!r} has no image processor config (preprocessor_config.json) to resize and "
                f"normalise faces with: {error}"
            ) from error
        layers = int(getattr(model_config, "num_hidden_layers", 0) or 0)
        if cfg.layer is not None and not -(layers + 1) <= cfg.layer <= layers:
            raise ValueError(f"layer must be in the range [{-(layers + 1)}, {layers}] for {cfg.model!r}. Got {cfg.layer} instead.")
        model.eval().to(device)
        self._torch, self._model, self._device, self._dtype = torch, model, device, dtype
        self._dim = int(getattr(model_config, "hidden_size", 0) or getattr(model_config, "hidden_sizes", [0])[-1])
        self._model_type = model_type
        self._identity = identify(cfg, source, self.prefix)
        logger.info("%s: loaded %s (%s) on %s, pooling %s", self.prefix, cfg.model, type(model).__name__, device, cfg.pooling)

    def output_specs(self) -> dict[str, OutputSpec]:
        self._require_loaded()
        cfg = self.config
        where = "last hidden state" if cfg.layer is None else f"hidden_states[{cfg.layer}]"
        what = "pooled output" if cfg.pooling == "pooler" else f"{cfg.pooling} of the {where}"
        return {self.prefix: self._spec(self.prefix, self._dim, None, f"{cfg.model} {what} per face", cfg.store_dtype)}

    def _libraries(self) -> tuple[str, ...]:
        return ("torch", "transformers", "safetensors", "pillow")

    def _model_provenance(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "id": cfg.model,
            "revision": cfg.revision,
            **self._identity,
            "class": type(self._model).__name__,
            "model_type": self._model_type,
            "pooling": cfg.pooling,
            "layer": cfg.layer,
            "compute_dtype": str(self._dtype).replace("torch.", ""),
            "processor": type(self._processor).__name__,
        }

    def _forward(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        torch, cfg = self._torch, self.config
        pixels = self._processor(images=list(images), return_tensors="np")["pixel_values"]
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(pixels)).to(self._device, self._dtype)
            out = self._model(pixel_values=batch, output_hidden_states=cfg.layer is not None)
            if cfg.pooling == "pooler":
                pooled = out.pooler_output
            else:
                hidden = out.last_hidden_state if cfg.layer is None else out.hidden_states[cfg.layer]
                pooled = hidden[:, 0] if cfg.pooling == "cls" else hidden.mean(dim=1)
        return {self.prefix: pooled.float().cpu().numpy()}


@dataclass(frozen=True, kw_only=True)
class VitHugeConfig(HfImageConfig):
    """``vit-huge``: ``google/vit-huge-patch14-224-in21k``, mean of the last hidden state (1280-d)."""

    model: str = "google/vit-huge-patch14-224-in21k"
    pooling: str = "mean"


@register
class VitHugeExtractor(HfImageExtractor):
    """ViT-Huge face embeddings: mean of the last hidden state, 1280-d per face."""

    name = "vit-huge"
    config_class = VitHugeConfig


@dataclass(frozen=True, kw_only=True)
class Dinov2LargeConfig(HfImageConfig):
    """``dinov2-large``: ``facebook/dinov2-large``, CLS token of the last hidden state (1024-d)."""

    model: str = "facebook/dinov2-large"
    pooling: str = "cls"


@register
class Dinov2LargeExtractor(HfImageExtractor):
    """DINOv2-large face embeddings: CLS token of the last hidden state, 1024-d per face."""

    name = "dinov2-large"
    config_class = Dinov2LargeConfig


@dataclass(frozen=True, kw_only=True)
class ClipVitB16Config(HfImageConfig):
    """``clip-vit-b16``: ``openai/clip-vit-base-patch16`` vision tower, pooled output (768-d)."""

    model: str = "openai/clip-vit-base-patch16"
    pooling: str = "pooler"


@register
class ClipVitB16Extractor(HfImageExtractor):
    """CLIP ViT-B/16 vision tower face embeddings: pooled output, 768-d per face."""

    name = "clip-vit-b16"
    config_class = ClipVitB16Config
