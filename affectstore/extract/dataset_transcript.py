"""A dataset's own transcripts as a text feature set (registered as ``dataset-transcript`` and ``bah-transcript``).

BAH ships timed transcripts (``transcription/<video>/<stem>.yml``, chunk timestamps that restart
about every 30 s; the adapter adds the running offsets). Storing them as a feature set lets
text extractors read them exactly as they read a Whisper transcript:
``--features bah-transcript,minilm --set minilm.transcript=bah-transcript``. A dataset without
transcripts fails each video with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from affectstore.extract.base import Extractor, Input, OutputKind, OutputSpec, Outputs, Text
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import InputError
from affectstore.extract.registry import register


@dataclass(frozen=True, kw_only=True)
class DatasetTranscriptConfig(ExtractorConfig):
    """No settings beyond the common ones: the segments are the adapter's."""


@register
class DatasetTranscriptExtractor(Extractor[DatasetTranscriptConfig]):
    """The dataset's transcript segments, stored unchanged (start, end, text)."""

    name = "dataset-transcript"
    version = "1"
    input = Input.TRANSCRIPT
    config_class = DatasetTranscriptConfig
    devices = ("cpu",)

    def _load(self) -> None:
        pass

    def output_specs(self) -> dict[str, OutputSpec]:
        return {self.prefix: OutputSpec(self.prefix, 0, None, "str", None, "the dataset's own transcript segments", kind=OutputKind.TEXT)}

    def _libraries(self) -> tuple[str, ...]:
        return ()

    def _model_provenance(self) -> dict[str, Any]:
        return {"id": "dataset", "revision": None, "commit": None, "weights_sha256": None}

    def validate(self, item: Any) -> Any:
        if not hasattr(item, "text"):
            raise InputError(f"{self.name} takes transcript segments, got {type(item).__name__}.")
        return item

    def extract_batch(self, items: Sequence[Any]) -> list[Outputs]:
        return [{self.prefix: Text(np.asarray(s.start, np.float64), np.asarray(s.end, np.float64), tuple(s.text))} for s in items]


@register
class BahTranscriptExtractor(DatasetTranscriptExtractor):
    """BAH's timed transcripts (chunk offsets added by the adapter)."""

    name = "bah-transcript"
