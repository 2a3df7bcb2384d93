"""Speech arousal, dominance and valence from the audEERING wav2vec2 model (registered as ``vad``).

Model: ``audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim`` (licence CC BY-NC-SA 4.0,
non-commercial). It is not a stock transformers class: the checkpoint holds the encoder
under ``wav2vec2.*`` and a regression head under ``classifier.dense.*`` and
``classifier.out_proj.*``. The head, as the model card defines it: mean over frames of the
last hidden state -> dropout -> dense (hidden -> hidden) -> tanh -> dropout -> out_proj
(hidden -> 3), in the order arousal, dominance, valence. Dropout is inactive at inference.

Outputs:

- ``vad``: 1 x 3 per video (the model's own prediction), times = [clip centre];
- ``vad-frames``: T x 3 at ~50 Hz, the head applied to each frame's hidden state, as the
  seed papers did (they concatenated it to the 1024-d hidden states).

A class whose attribute names differ from the checkpoint's would load with a random head
while transformers only warns, so the loader refuses any checkpoint lacking a head weight.
Long clips are windowed like the encoder extractors; the per-video mean is then taken over
all windows' kept frames.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from affectstore.extract.base import OutputKind, OutputSpec
from affectstore.extract.errors import ModelLoadError, require
from affectstore.extract.registry import register
from affectstore.extract.wav2vec2 import SpeechEncoderConfig, SpeechEncoderExtractor

LABELS = ("arousal", "dominance", "valence")
HEAD_WEIGHTS = (
    "classifier.dense.weight",
    "classifier.dense.bias",
    "classifier.out_proj.weight",
    "classifier.out_proj.bias",
)


@functools.cache
def _model_class() -> type:
    """The audEERING model as a transformers class (built on first use: torch and transformers are heavy)."""
    torch = require("torch")
    transformers = require("transformers")

    class RegressionHead(torch.nn.Module):
        def __init__(self, config: Any) -> None:
            super().__init__()
            self.dense = torch.nn.Linear(config.hidden_size, config.hidden_size)
            self.dropout = torch.nn.Dropout(config.final_dropout)
            self.out_proj = torch.nn.Linear(config.hidden_size, config.num_labels)

        def forward(self, features: Any) -> Any:
            x = self.dropout(features)
            x = torch.tanh(self.dense(x))
            x = self.dropout(x)
            return self.out_proj(x)

    class Wav2Vec2ForVad(transformers.Wav2Vec2PreTrainedModel):
        """Encoder under ``wav2vec2``, head under ``classifier``: the checkpoint's key names."""

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.wav2vec2 = transformers.Wav2Vec2Model(config)
            self.classifier = RegressionHead(config)
            self.post_init()

        def forward(self, input_values: Any, attention_mask: Any = None) -> Any:
            hidden = self.wav2vec2(input_values, attention_mask=attention_mask).last_hidden_state
            return self.classifier(hidden.mean(dim=1))

    return Wav2Vec2ForVad


@dataclass(frozen=True, kw_only=True)
class VadExtractorConfig(SpeechEncoderConfig):
    """VAD settings (the head reads the last hidden state, so there is no layer choice)."""

    model: str = "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim"


@register
class VadExtractor(SpeechEncoderExtractor[VadExtractorConfig]):
    """Arousal, dominance, valence per video (``vad``) and per ~20 ms frame (``vad-frames``)."""

    name = "vad"
    config_class = VadExtractorConfig
    model_types = ("wav2vec2",)
    output_suffixes = ("", "-frames")
    pools = True

    def _model_class(self, transformers: Any) -> Any:
        return _model_class()

    def _encoder_from(self, model: Any) -> Any:
        return model.wav2vec2

    def _check_model(self, model: Any, loading_info: dict[str, Any]) -> None:
        missing_head = sorted(k for k in loading_info.get("missing_keys", ()) if k.startswith("classifier."))
        if missing_head:
            raise ModelLoadError(
                f"Checkpoint {self.config.model!r} has no regression head weight(s) {', '.join(missing_head)}; "
                f"the 'vad' extractor needs all of {', '.join(HEAD_WEIGHTS)} (keys of "
                "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim). Without them the head would be random."
            )
        super()._check_model(model, loading_info)
        outputs = model.classifier.out_proj.out_features
        if outputs != len(LABELS):
            raise ModelLoadError(
                f"The head of {self.config.model!r} gives {outputs} outputs; the 'vad' extractor expects "
                f"{len(LABELS)} ({', '.join(LABELS)})."
            )

    def _frame_outputs(self, hidden: Any) -> dict[str, Any]:
        return {"-frames": self._model.classifier(hidden)}

    def _video_outputs(self, mean_hidden: Any) -> dict[str, Any]:
        return {"": self._model.classifier(mean_hidden)}

    def output_specs(self) -> dict[str, OutputSpec]:
        self._require_loaded()
        video, frames = self.output_names
        return {
            video: OutputSpec(
                video, len(LABELS), None, self.store_dtype, LABELS, "regression head on the mean last hidden state",
                kind=OutputKind.VIDEO,
            ),
            frames: OutputSpec(
                frames,
                len(LABELS),
                self._geometry.rate,
                self.store_dtype,
                LABELS,
                "regression head applied to each frame's last hidden state",
                kind=OutputKind.FRAMES,
            ),
        }
