"""Loading Hugging Face checkpoints the same way for every family: a hub id or a local folder,
offline when HF_HUB_OFFLINE is set, safetensors weights only unless the user allows ``.bin``,
every weight checked, and the exact files used recorded for the provenance."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from affectstore.extract.base import weights_sha256
from affectstore.extract.config import ExtractorConfig, check_dtype
from affectstore.extract.errors import ModelLoadError, require

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class HubModelConfig(ExtractorConfig):
    """A model from the Hugging Face hub or a local folder.

    ``model``: hub id or folder; ``revision``: branch, tag or commit; ``dtype``: compute dtype on
    GPU (on CPU half precision is computed in float32 and stored as requested); ``cache_dir``: hub
    cache to read from (None: HF_HUB_CACHE / HF_HOME); ``allow_bin``: also load a folder whose only
    weights are a pickled ``pytorch_model.bin`` (read with ``weights_only=True``; off by default,
    since a pickle can run code when opened).
    """

    model: str
    revision: str | None = None
    dtype: str = "float32"
    cache_dir: str | None = None
    allow_bin: bool = False

    NON_OUTPUT_FIELDS: ClassVar[frozenset[str]] = ExtractorConfig.NON_OUTPUT_FIELDS | {"cache_dir", "allow_bin"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a hub id or a local folder path. Got {self.model!r} instead.")
        if self.revision is not None and (not isinstance(self.revision, str) or not self.revision):
            raise ValueError(f"revision must be None or a branch, tag or commit hash. Got {self.revision!r} instead.")
        check_dtype(self.dtype)
        if not isinstance(self.allow_bin, bool):
            raise ValueError(f"allow_bin must be true or false. Got {self.allow_bin!r} instead.")

    @property
    def store_dtype(self) -> str:
        """dtype of the stored arrays."""
        return "float16" if self.dtype == "float16" else "float32"


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def torch_device(torch: Any, device: str) -> Any:
    """The torch device of a setting, refusing CUDA where torch sees none."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0'. Got {device!r} instead.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but torch sees no CUDA device. Use device='cpu'.")
    return resolved


def compute_dtype(torch: Any, dtype: str, device: Any, name: str) -> Any:
    """Half precision on CPU is slow and some ops are unsupported there, so it computes in float32."""
    requested = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    if device.type == "cpu" and requested != torch.float32:
        logger.info("%s: computing in float32 on CPU; outputs are stored as %s", name, dtype)
        return torch.float32
    return requested


@dataclass(frozen=True)
class Source:
    """Where a checkpoint loads from: ``path`` (hub id or folder), whether it is ``local``, and the hub keywords."""

    path: str
    local: bool
    kwargs: dict[str, Any]


def source_of(config: HubModelConfig) -> Source:
    """The checkpoint location of a config, refusing a local folder whose weights are only pickles."""
    folder = Path(config.model).expanduser()
    local = folder.is_dir()
    path = str(folder) if local else config.model
    kwargs: dict[str, Any] = {"revision": config.revision, "local_files_only": local or is_offline()}
    if config.cache_dir is not None:
        kwargs["cache_dir"] = config.cache_dir
    if local:
        safetensors = list(folder.glob("*.safetensors"))
        pickles = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        if not safetensors and pickles and not config.allow_bin:
            raise ModelLoadError(
                f"{folder} holds only pickled weights ({', '.join(sorted(pickles))}), which can run code when opened; "
                f"affectstore loads .safetensors only. Convert them (e.g. load and save_pretrained(safe_serialization=True)) "
                f"or, if you trust the file, set allow_bin = true (it is then read with weights_only=True)."
            )
        if not safetensors and pickles:
            logger.warning("%s: loading pickled weights %s with weights_only=True (allow_bin = true)", folder, ", ".join(pickles))
    kwargs["use_safetensors"] = not config.allow_bin
    return Source(path, local, kwargs)


def load_config(transformers: Any, config: HubModelConfig, source: Source, expected: Iterable[str], extractor: str) -> Any:
    """The checkpoint's transformers config, refusing another model family with a message naming it."""
    kwargs = {k: v for k, v in source.kwargs.items() if k != "use_safetensors"}
    try:
        # AutoConfig reads model_type first, so a checkpoint of another family is named, not half-loaded.
        model_config = transformers.AutoConfig.from_pretrained(source.path, **kwargs)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"Could not read the model config of {config.model!r} (revision {config.revision!r}): {str(error).rstrip('.')}. "
            "Pass a hub id that is in the local cache (HF_HUB_OFFLINE=1 allows no download) or a folder "
            "holding config.json and the weights."
        ) from error
    expected = tuple(expected)
    model_type = getattr(model_config, "model_type", None)
    if model_type not in expected:
        raise ModelLoadError(
            f"Checkpoint {config.model!r} is a {model_type!r} model; the '{extractor}' extractor expects "
            f"{' or '.join(map(repr, expected))}."
        )
    return model_config


def load_weights(model_class: Any, config: HubModelConfig, source: Source, model_config: Any, dtype: Any) -> tuple[Any, dict[str, Any]]:
    """``from_pretrained`` with loading info, errors turned into ModelLoadError."""
    try:
        return model_class.from_pretrained(
            source.path, config=model_config, output_loading_info=True, dtype=dtype, **source.kwargs
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"Could not load the weights of {config.model!r} (revision {config.revision!r}): {error}") from error


def check_loading_info(model: Any, info: dict[str, Any], model_id: str, expected: str, optional: Iterable[str] = ()) -> None:
    """Fail on weights the checkpoint lacks or has with other shapes (transformers only warns)."""
    optional = tuple(optional)
    missing = [k for k in info.get("missing_keys", ()) if not any(o in k for o in optional)]
    mismatched = list(info.get("mismatched_keys", ()))
    if missing:
        shown = ", ".join(sorted(missing)[:8]) + (" ..." if len(missing) > 8 else "")
        raise ModelLoadError(
            f"Checkpoint {model_id!r} lacks {len(missing)} weight(s) that {type(model).__name__} needs "
            f"({shown}); transformers would fill them with random values. Check that it is {expected}."
        )
    if mismatched:
        shown = ", ".join(str(m) for m in mismatched[:8])
        raise ModelLoadError(f"Checkpoint {model_id!r} has weight(s) whose shapes do not match its config: {shown}.")


def identify(config: HubModelConfig, source: Source, name: str) -> dict[str, Any]:
    """Exact weights used: SHA-256 of the weight files, plus the snapshot commit for hub ids.

    from_pretrained has just placed the files in the hub cache, so the snapshot folder that
    the requested revision points to now is the one that was loaded.
    """
    if source.local:
        return {"commit": None, "weights_sha256": weights_sha256(source.path)}
    hub = require("huggingface_hub")
    cached = hub.try_to_load_from_cache(source.path, "config.json", cache_dir=config.cache_dir, revision=config.revision or "main")
    if not isinstance(cached, str):
        logger.warning("%s: could not find %r in the hub cache; provenance has no commit or weight hashes", name, source.path)
        return {"commit": None, "weights_sha256": None}
    snapshot = Path(cached).parent
    return {"commit": snapshot.name, "weights_sha256": weights_sha256(snapshot)}


def _auto_map_refs(doc: dict[str, Any]) -> list[str]:
    refs: list[str] = []
    for value in (doc.get("auto_map") or {}).values():
        refs.extend(v for v in (value if isinstance(value, list | tuple) else [value]) if isinstance(v, str))
    return refs


def checkpoint_json(config: HubModelConfig, source: Source, filename: str) -> dict[str, Any] | None:
    """A JSON file of the checkpoint (local folder or hub cache), None when it is not there."""
    import json

    if source.local:
        path: Path | None = Path(source.path) / filename
    else:
        hub = require("huggingface_hub")
        cached = hub.try_to_load_from_cache(source.path, filename, cache_dir=config.cache_dir, revision=config.revision or "main")
        path = Path(cached) if isinstance(cached, str) else None
    if path is None or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path} is not a JSON file transformers can read: {error}") from error
    return doc if isinstance(doc, dict) else None


def remote_code(config: HubModelConfig, source: Source, trust: bool, prefix: str) -> tuple[Source, dict[str, Any]]:
    """The checkpoint's own Python code (``auto_map`` in config.json or tokenizer_config.json), and what to record of it.

    Such code runs with the user's permissions, so it is refused unless ``trust`` is set, the
    model is a local folder, and every class it names lives in a ``.py`` file of that folder
    (a reference into another hub repository, ``repo--module.Class``, would fetch and run code
    that is not there to read). Returns the source with ``trust_remote_code`` added to its
    loading keywords, and the provenance: whether code ran and the SHA-256 of each ``.py`` file.
    """
    from affectstore.extract.base import sha256_file

    refs = [r for name in ("config.json", "tokenizer_config.json") for r in _auto_map_refs(checkpoint_json(config, source, name) or {})]
    if not refs:
        if trust:
            logger.info("%s: trust_remote_code is set but %s has no code of its own; loading it with transformers' classes", prefix, config.model)
        return source, {"trust_remote_code": False}
    setting = f"--set {prefix}.trust_remote_code=true (or trust_remote_code = true in the recipe's [extractors.{prefix}] table)"
    if not trust:
        raise ModelLoadError(
            f"Checkpoint {config.model!r} needs its own Python code to load ({', '.join(sorted(set(refs)))}), which runs with "
            "your permissions; affectstore runs it only from a local folder and only when told to.",
            advice=f"Read the .py files in the folder, then pass {setting}.",
        )
    if not source.local:
        raise ModelLoadError(
            f"trust_remote_code is allowed only for a local folder, not the hub id {config.model!r}.",
            advice="Put the snapshot (config.json, weights, tokenizer files and the .py files its auto_map names) in a folder, "
            f"read the code, and pass that folder: --set {prefix}.model=/path/to/folder.",
        )
    folder = Path(source.path)
    for ref in refs:
        module = ref.rpartition(".")[0]
        if "--" in ref or not module or not (folder / f"{module.replace('.', '/')}.py").is_file():
            raise ModelLoadError(
                f"The auto_map of {folder} names {ref!r}, which is not a .py file in that folder (a 'repo--module.Class' "
                "reference fetches code from another hub repository). Copy that module into the folder and name it "
                "there, e.g. 'modeling.NewModel' for modeling.py.",
                advice="Alibaba-NLP's GTE checkpoints keep their code in the hub repository Alibaba-NLP/new-impl: copy its "
                "configuration.py and modeling.py into the model folder and set auto_map to 'configuration.NewConfig' / 'modeling.NewModel'.",
            )
    code = {p.name: sha256_file(p) for p in sorted(folder.glob("*.py"))}
    logger.warning("%s: running the model code in %s (trust_remote_code = true): %s", prefix, folder, ", ".join(code))
    kwargs = {**source.kwargs, "trust_remote_code": True}
    return Source(source.path, source.local, kwargs), {"trust_remote_code": True, "code_sha256": code}
