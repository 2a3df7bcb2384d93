"""openSMILE acoustic parameters: eGeMAPS (registered as ``egemaps``) and ComParE 2016 (``compare``).

Outputs of ``egemaps``:

- ``egemaps``: the 88 eGeMAPSv02 functionals, 1 x 88 per video, times = [clip centre];
- ``egemaps-lld``: the 25 low-level descriptors per 10 ms frame, times at frame centres.

Outputs of ``compare``: ``compare`` (the 6,373 ComParE_2016 functionals per video) and
``compare-lld`` (its 65 low-level descriptors per 10 ms frame).

Licence: openSMILE (the ``opensmile`` package) is distributed by audEERING under its own
licence, free for private, research and educational use only; commercial use needs a
licence from audEERING. Features computed with it inherit that restriction.

openSMILE runs on the CPU, one clip at a time, and cannot run in threads (opensmile-python
issue 41): use ``--jobs N`` for worker processes. ``device``, ``batch_size`` and window
settings do not apply. It processes the whole array in one call, so a long clip is held
whole (the runner logs it).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from affectstore.extract.audio import SAMPLE_RATE, AudioExtractor
from affectstore.extract.base import Features, OutputKind, OutputSpec
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import InputError, require
from affectstore.extract.registry import register

logger = logging.getLogger(__name__)

GEMAPS_SETS = ("eGeMAPSv02", "eGeMAPSv01b", "GeMAPSv01b")
COMPARE_SETS = ("ComParE_2016",)


@dataclass(frozen=True, kw_only=True)
class EgemapsExtractorConfig(ExtractorConfig):
    """openSMILE settings: the GeMAPS-family feature set (default eGeMAPSv02)."""

    feature_set: str = "eGeMAPSv02"

    FEATURE_SETS: ClassVar[tuple[str, ...]] = GEMAPS_SETS

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.feature_set not in self.FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {', '.join(self.FEATURE_SETS)}. Got {self.feature_set!r} instead.")


@dataclass(frozen=True, kw_only=True)
class CompareExtractorConfig(EgemapsExtractorConfig):
    """openSMILE ComParE settings: the feature set (ComParE_2016)."""

    feature_set: str = "ComParE_2016"

    FEATURE_SETS: ClassVar[tuple[str, ...]] = COMPARE_SETS


def _seconds(index: Any) -> np.ndarray:
    return np.asarray(index.total_seconds(), dtype=np.float64)


@register
class EgemapsExtractor(AudioExtractor[EgemapsExtractorConfig]):
    """eGeMAPS functionals per video (``egemaps``) and low-level descriptors per 10 ms (``egemaps-lld``)."""

    name = "egemaps"
    version = "1"
    config_class = EgemapsExtractorConfig
    output_suffixes = ("", "-lld")
    devices = ("cpu",)

    #: 0.1 s: shorter clips give no complete LLD frame and all-NaN functionals.
    min_samples = SAMPLE_RATE // 10

    def _load(self) -> None:
        opensmile = require("opensmile")
        feature_set = getattr(opensmile.FeatureSet, self.config.feature_set)
        self._functionals = opensmile.Smile(feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals)
        self._lld = opensmile.Smile(feature_set=feature_set, feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
        self._opensmile_version = getattr(opensmile, "__version__", None)

    def output_specs(self) -> dict[str, OutputSpec]:
        self._require_loaded()
        func, lld = self.output_names
        return {
            func: OutputSpec(
                func,
                len(self._functionals.feature_names),
                None,
                "float32",
                tuple(self._functionals.feature_names),
                f"openSMILE {self.config.feature_set} functionals over the whole clip",
                kind=OutputKind.VIDEO,
            ),
            lld: OutputSpec(
                lld,
                len(self._lld.feature_names),
                100.0,
                "float32",
                tuple(self._lld.feature_names),
                f"openSMILE {self.config.feature_set} low-level descriptors, 10 ms hop",
                kind=OutputKind.FRAMES,
            ),
        }

    def _libraries(self) -> tuple[str, ...]:
        return ("opensmile",)

    def _model_provenance(self) -> dict[str, Any]:
        return {
            "id": f"opensmile/{self.config.feature_set}",
            "revision": self._opensmile_version,
            "commit": None,
            "weights_sha256": None,
            "licence": "openSMILE: research, non-commercial (audEERING)",
            "sample_rate": SAMPLE_RATE,
        }

    def _extract_one(self, waveform: np.ndarray) -> dict[str, Features]:
        array = self.validate(waveform)
        with warnings.catch_warnings():
            # opensmile warns (and fills NaN) on very short segments; turn that into an error below.
            warnings.simplefilter("ignore", UserWarning)
            lld = self._lld.process_signal(array, SAMPLE_RATE)
            func = self._functionals.process_signal(array, SAMPLE_RATE)
        func_values = func.to_numpy(dtype=np.float32)
        if func_values.shape[0] != 1 or np.isnan(func_values).all():
            raise InputError(
                f"openSMILE returned no usable functionals for a clip of {len(array)} samples "
                f"({len(array) / SAMPLE_RATE:.3f} s); the clip is too short or silent."
            )
        starts = _seconds(lld.index.get_level_values("start"))
        ends = _seconds(lld.index.get_level_values("end"))
        # openSMILE clips the last frame's end to the clip end; centre every frame with the
        # nominal frame length so times stay evenly spaced.
        frame = float(np.max(ends - starts)) if len(starts) else 0.0
        func_name, lld_name = self.output_names
        return {
            func_name: Features(func_values, np.array([len(array) / SAMPLE_RATE / 2.0], dtype=np.float64)),
            lld_name: Features(lld.to_numpy(dtype=np.float32), starts + frame / 2.0),
        }

    def extract_batch(self, waveforms: Sequence[np.ndarray]) -> list[dict[str, Features]]:
        """Outputs of many clips, processed one by one (openSMILE has no batching)."""
        self._require_loaded()
        return [self._extract_one(w) for w in waveforms]


@register
class CompareExtractor(EgemapsExtractor):
    """ComParE 2016 functionals per video (``compare``, 6,373) and low-level descriptors per 10 ms (``compare-lld``, 65)."""

    name = "compare"
    config_class = CompareExtractorConfig
