"""HuBERT hidden states (registered as ``hubert``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affectstore.extract.base import register
from affectstore.extract.wav2vec2 import LayerSelectingExtractor, SpeechEncoderConfig


@dataclass(frozen=True, kw_only=True)
class HubertExtractorConfig(SpeechEncoderConfig):
    """HuBERT settings; ``layer`` as in :class:`~affectstore.extract.wav2vec2.Wav2Vec2ExtractorConfig`."""

    model: str = "facebook/hubert-large-ls960-ft"
    layer: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer is not None and (isinstance(self.layer, bool) or not isinstance(self.layer, int)):
            raise ValueError(f"layer must be None or an int. Got {self.layer!r} instead.")


@register
class HubertExtractor(LayerSelectingExtractor):
    """Hidden states of any HuBERT checkpoint (``HubertModel`` or ``HubertForCTC`` weights), ~50 Hz.

    Default model ``facebook/hubert-large-ls960-ft``: 1024-d last hidden state. The CTC head of
    fine-tuned checkpoints is ignored; only the encoder is loaded.
    """

    name = "hubert"
    config_class = HubertExtractorConfig
    model_types = ("hubert",)

    def _model_class(self, transformers: Any) -> Any:
        return transformers.HubertModel
