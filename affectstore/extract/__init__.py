"""Extractors turn decoded media arrays into per-video feature arrays.

Registered names (see :func:`available_extractors`): audio ``wav2vec2``, ``vad``, ``hubert``,
``egemaps``, ``compare``, ``whisper`` (transcripts), ``whisper-encoder``; dataset transcripts
``dataset-transcript``, ``bah-transcript``; faces ``face-boxes``, ``fer``, ``enet-b0``, ``mobilevit``, ``mobilefacenet``,
``hf-image``, ``vit-huge``, ``dinov2-large``, ``clip-vit-b16``; text (from a stored
transcript) ``minilm``, ``gte``, ``gte-large``, ``e5``, ``roberta-goemotions``, ``hf-text``,
``openai-small``, ``gigachat``. Importing this package
registers them without importing torch, transformers, onnxruntime or opensmile; those load
when an extractor is loaded. Typical use::

    from affectstore.extract import create_extractor
    extractor = create_extractor("vad", device="cuda", dtype="float16").load()
    results = extractor.extract_batch([waveform_a, waveform_b])   # float32 mono 16 kHz
    results[0]["vad"].values        # 1 x 3: arousal, dominance, valence
    results[0]["vad-frames"].times  # frame centres, seconds

A new extractor is one module (a config dataclass and an :class:`Extractor` subclass of the
right input, decorated with :func:`register`) plus its import line below.
"""

from affectstore.extract.audio import SAMPLE_RATE, AudioExtractor, FrameGeometry, WaveStats
from affectstore.extract.base import Extractor, Features, Input, OutputKind, OutputSpec, Text
from affectstore.extract.config import ExtractorConfig, config_hash
from affectstore.extract.errors import (
    DuplicateExtractorError,
    ExtractionError,
    ExtractorError,
    InputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownExtractorError,
)
from affectstore.extract.images import ImageBatch, ImageExtractor
from affectstore.extract.registry import (
    RESERVED_NAMES,
    available_extractors,
    create_extractor,
    get_extractor_class,
    register,
    unregister,
)

# One import line per extractor module: importing registers its names.
from affectstore.extract.opensmile import CompareExtractor, EgemapsExtractor, EgemapsExtractorConfig  # noqa: E402
from affectstore.extract.hubert import HubertExtractor, HubertExtractorConfig  # noqa: E402
from affectstore.extract.vad import VadExtractor, VadExtractorConfig  # noqa: E402
from affectstore.extract.wav2vec2 import (  # noqa: E402
    SpeechEncoderConfig,
    SpeechEncoderExtractor,
    Wav2Vec2Extractor,
    Wav2Vec2ExtractorConfig,
)
from affectstore.extract.face_boxes import FaceBoxesConfig, FaceBoxesExtractor  # noqa: E402
from affectstore.extract.fer import FerConfig, FerExtractor  # noqa: E402
from affectstore.extract.emotiefflib import EmotiEffLibConfig, EmotiEffLibExtractor  # noqa: E402
from affectstore.extract.hf_image import HfImageConfig, HfImageExtractor  # noqa: E402
from affectstore.extract.whisper import WhisperConfig, WhisperExtractor  # noqa: E402
from affectstore.extract.whisper_encoder import WhisperEncoderConfig, WhisperEncoderExtractor  # noqa: E402
from affectstore.extract.dataset_transcript import DatasetTranscriptExtractor  # noqa: E402
from affectstore.extract.hf_text import HfTextConfig, HfTextExtractor  # noqa: E402
from affectstore.extract.hosted_text import HostedEmbeddingConfig, HostedEmbeddingExtractor  # noqa: E402

__all__ = [
    "RESERVED_NAMES",
    "SAMPLE_RATE",
    "AudioExtractor",
    "DuplicateExtractorError",
    "CompareExtractor",
    "DatasetTranscriptExtractor",
    "EgemapsExtractor",
    "EgemapsExtractorConfig",
    "ExtractionError",
    "Extractor",
    "ExtractorConfig",
    "ExtractorError",
    "EmotiEffLibConfig",
    "EmotiEffLibExtractor",
    "FaceBoxesConfig",
    "FaceBoxesExtractor",
    "Features",
    "FerConfig",
    "FerExtractor",
    "HfImageConfig",
    "HfImageExtractor",
    "HfTextConfig",
    "HfTextExtractor",
    "HostedEmbeddingConfig",
    "HostedEmbeddingExtractor",
    "FrameGeometry",
    "HubertExtractor",
    "HubertExtractorConfig",
    "ImageBatch",
    "ImageExtractor",
    "Input",
    "InputError",
    "MissingDependencyError",
    "ModelLoadError",
    "OutputKind",
    "OutputSpec",
    "SpeechEncoderConfig",
    "SpeechEncoderExtractor",
    "Text",
    "UnknownExtractorError",
    "VadExtractor",
    "VadExtractorConfig",
    "WhisperConfig",
    "WhisperEncoderConfig",
    "WhisperEncoderExtractor",
    "WhisperExtractor",
    "Wav2Vec2Extractor",
    "Wav2Vec2ExtractorConfig",
    "WaveStats",
    "available_extractors",
    "config_hash",
    "create_extractor",
    "get_extractor_class",
    "register",
    "unregister",
]
