"""Extractors turn decoded media arrays into per-video feature arrays.

Registered names (see :func:`available_extractors`): ``wav2vec2``, ``vad``, ``hubert``,
``egemaps``. Importing this package registers them without importing torch, transformers
or opensmile; those load when an extractor is loaded. Typical use::

    from affectstore.extract import create_extractor
    extractor = create_extractor("vad", device="cuda", dtype="float16").load()
    results = extractor.extract_batch([waveform_a, waveform_b])   # float32 mono 16 kHz
    results[0]["vad"].values        # 1 x 3: arousal, dominance, valence
    results[0]["vad-frames"].times  # frame centres, seconds
"""

from affectstore.extract.base import (
    RESERVED_NAMES,
    SAMPLE_RATE,
    AudioExtractor,
    DuplicateExtractorError,
    Extractor,
    ExtractorConfig,
    ExtractorError,
    Features,
    FrameGeometry,
    Input,
    InputError,
    MissingDependencyError,
    ModelLoadError,
    OutputSpec,
    UnknownExtractorError,
    available_extractors,
    config_hash,
    create_extractor,
    get_extractor_class,
    register,
    unregister,
)
from affectstore.extract.egemaps import EgemapsExtractor, EgemapsExtractorConfig
from affectstore.extract.hubert import HubertExtractor, HubertExtractorConfig
from affectstore.extract.vad import VadExtractor, VadExtractorConfig
from affectstore.extract.wav2vec2 import (
    SpeechEncoderConfig,
    SpeechEncoderExtractor,
    Wav2Vec2Extractor,
    Wav2Vec2ExtractorConfig,
)

__all__ = [
    "RESERVED_NAMES",
    "SAMPLE_RATE",
    "AudioExtractor",
    "DuplicateExtractorError",
    "EgemapsExtractor",
    "EgemapsExtractorConfig",
    "Extractor",
    "ExtractorConfig",
    "ExtractorError",
    "Features",
    "FrameGeometry",
    "HubertExtractor",
    "HubertExtractorConfig",
    "Input",
    "InputError",
    "MissingDependencyError",
    "ModelLoadError",
    "OutputSpec",
    "SpeechEncoderConfig",
    "SpeechEncoderExtractor",
    "UnknownExtractorError",
    "VadExtractor",
    "VadExtractorConfig",
    "Wav2Vec2Extractor",
    "Wav2Vec2ExtractorConfig",
    "available_extractors",
    "config_hash",
    "create_extractor",
    "get_extractor_class",
    "register",
    "unregister",
]
