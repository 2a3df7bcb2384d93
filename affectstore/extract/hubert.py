"""HuBERT hidden states (registered as ``hubert``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affectstore.extract.registry import register
from affectstore.extract.wav2vec2 import LayeredEncoderConfig, LayerSelectingExtractor


@dataclass(frozen=True, kw_only=True)
class HubertExtractorConfig(LayeredEncoderConfig):
    """HuBERT settings; ``layer`` as in :class:`~affectstore.extract.wav2vec2.LayeredEncoderConfig`."""

    model: str = "facebook/hubert-large-ls960-ft"


@register
class HubertExtractor(LayerSelectingExtractor[HubertExtractorConfig]):
    """Hidden states of any HuBERT checkpoint (``HubertModel`` or ``HubertForCTC`` weights), ~50 Hz.

    Default model ``facebook/hubert-large-ls960-ft``: 1024-d last hidden state. The CTC head of
    fine-tuned checkpoints is ignored; only the encoder is loaded.
    """

    name = "hubert"
    config_class = HubertExtractorConfig
    model_types = ("hubert",)

    def _model_class(self, transformers: Any) -> Any:
        return transformers.HubertModel
