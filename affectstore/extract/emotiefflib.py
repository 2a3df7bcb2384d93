"""EmotiEffLib facial-emotion models (HSEmotion): embeddings and logits per face, from their ONNX files.

Registered names and their EmotiEffLib model (datasets.md):

- ``enet-b0``: ``enet_b0_8_best_vgaf``, 224 px, ImageNet normalisation, 1280-d embedding + 8 logits;
- ``mobilevit``: ``mobilevit_va_mtl``, 224 px, ImageNet normalisation, 768-d + 10 logits;
- ``mobilefacenet``: ``mbf_va_mtl``, 112 px, mean/std 0.5, 512-d + 10 logits;
- ``emotiefflib``: any other EmotiEffLib ONNX model by ``model_name``.

Each writes ``<name>`` (the embedding: the input of the model's final Gemm, its classifier)
and ``<name>-logits`` (the Gemm's output). Logits are in AffectNet's order (Anger, Contempt,
Disgust, Fear, Happiness, Neutral, Sadness, Surprise; ``_7`` models drop Contempt), then
valence and arousal for the ``_mtl`` models; the reordering to Aff-Wild2's classes is the
EXPR task's business, not the store's.

The ONNX files are read from ``~/.emotiefflib/<model_name>.onnx`` (EmotiEffLib's own cache;
``$EMOTIEFFLIB_HOME`` moves it) or the path in ``model``; they run with onnxruntime, and the
``emotiefflib`` package is not needed. Preprocessing as EmotiEffLib's ONNX engine does it:
bilinear resize (OpenCV) of the RGB crop to the model's size, scale to [0, 1], normalise per
channel.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from affectstore.extract.base import OutputSpec, sha256_file
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import ModelLoadError, require
from affectstore.extract.images import AFFECTNET_EMOTIONS, ImageExtractor, resize
from affectstore.extract.registry import register

logger = logging.getLogger(__name__)

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
DOWNLOAD = "https://github.com/sb-ai-lab/EmotiEffLib/tree/main/models/affectnet_emotions/onnx"


def model_home() -> Path:
    """EmotiEffLib's model folder."""
    return Path(os.environ.get("EMOTIEFFLIB_HOME") or Path.home() / ".emotiefflib").expanduser()


def class_names(model_name: str) -> tuple[str, ...]:
    """Column names of a model's logits, from EmotiEffLib's naming (``_7``: no Contempt; ``_mtl``: + valence, arousal)."""
    emotions = tuple(e for e in AFFECTNET_EMOTIONS if e != "Contempt") if "_7" in model_name else AFFECTNET_EMOTIONS
    return emotions + (("valence", "arousal") if "_mtl" in model_name else ())


def preprocessing(model_name: str) -> tuple[int, tuple[tuple[float, ...], tuple[float, ...]]]:
    """Input size and (mean, std) of a model, from EmotiEffLib's naming rules."""
    if "mbf_" in model_name:
        return 112, HALF
    if "_b2_" in model_name:
        return 260, IMAGENET
    if "ddamfnet" in model_name:
        return 112, IMAGENET
    return 224, IMAGENET


@dataclass(frozen=True, kw_only=True)
class EmotiEffLibConfig(ExtractorConfig):
    """``model_name``: the EmotiEffLib model; ``model``: its ONNX file (None: ``~/.emotiefflib/<model_name>.onnx``);
    ``threads``: onnxruntime intra-op threads (0: its default)."""

    model_name: str = "enet_b0_8_best_vgaf"
    model: str | None = None
    threads: int = 0
    batch_size: int = 32

    NON_OUTPUT_FIELDS: ClassVar[frozenset[str]] = ExtractorConfig.NON_OUTPUT_FIELDS | {"threads", "model"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model_name, str) or not self.model_name.strip() or "/" in self.model_name:
            raise ValueError(f"model_name must be an EmotiEffLib model name such as 'mbf_va_mtl'. Got {self.model_name!r} instead.")
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise ValueError(f"model must be None or the path of an .onnx file. Got {self.model!r} instead.")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"threads must be an int >= 0. Got {self.threads!r} instead.")

    @property
    def path(self) -> Path:
        return Path(self.model).expanduser() if self.model else model_home() / f"{self.model_name}.onnx"


@register
class EmotiEffLibExtractor(ImageExtractor[EmotiEffLibConfig]):
    """Any EmotiEffLib ONNX model by ``model_name`` (see the module docstring)."""

    name = "emotiefflib"
    version = "1"
    config_class = EmotiEffLibConfig
    output_suffixes = ("", "-logits")

    def _load(self) -> None:
        onnx = require("onnx", extra="faces")
        ort = require("onnxruntime", extra="faces")
        cfg = self.config
        path = cfg.path
        if not path.is_file():
            raise ModelLoadError(
                f"EmotiEffLib model file {path} not found",
                advice=f"Get {cfg.model_name}.onnx on a machine with internet (pip install emotiefflib, then "
                f"`python -c \"from emotiefflib.utils import get_model_path_onnx; print(get_model_path_onnx('{cfg.model_name}'))\"`, "
                f"or download it from {DOWNLOAD}) and copy it to {model_home()}/, or pass its path: "
                f"--set {self.prefix}.model=/path/{cfg.model_name}.onnx",
            )
        try:
            graph = onnx.load(str(path))
        except Exception as error:  # noqa: BLE001 - onnx raises several types for a bad file
            raise ModelLoadError(f"{path} is not an ONNX model onnx can read: {error}") from error
        head = graph.graph.node[-1] if graph.graph.node else None
        if head is None or head.op_type != "Gemm" or len(head.input) < 2:
            raise ModelLoadError(
                f"{path}: the last node is {head.op_type if head is not None else 'missing'}, not the Gemm classifier "
                "EmotiEffLib models end with; cannot find the embedding."
            )
        weights = {t.name: t for t in graph.graph.initializer}.get(head.input[1])
        if weights is None or len(weights.dims) != 2:
            raise ModelLoadError(f"{path}: the classifier's weights {head.input[1]!r} are not a 2-D initializer.")
        trans_b = next((a.i for a in head.attribute if a.name == "transB"), 0)
        n_logits, dim = (weights.dims[0], weights.dims[1]) if trans_b else (weights.dims[1], weights.dims[0])
        columns = class_names(cfg.model_name)
        if n_logits != len(columns):
            raise ModelLoadError(
                f"{path} gives {n_logits} logits; model name {cfg.model_name!r} means {len(columns)} ({', '.join(columns)}). "
                "Set model_name to the file's EmotiEffLib name."
            )
        # The embedding is the classifier's input: expose it as a second graph output, so one
        # run gives both (EmotiEffLib instead cuts the Gemm off and applies it in numpy).
        graph.graph.output.append(onnx.helper.make_tensor_value_info(head.input[0], onnx.TensorProto.FLOAT, None))
        options = ort.SessionOptions()
        if cfg.threads:
            options.intra_op_num_threads = cfg.threads
        providers = ["CPUExecutionProvider"]
        if cfg.device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelLoadError(
                    f"device {cfg.device!r} needs onnxruntime's CUDAExecutionProvider, which this onnxruntime lacks "
                    f"(available: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use device='cpu'."
                )
            index = int(cfg.device.partition(":")[2] or 0)
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        self._session = ort.InferenceSession(graph.SerializeToString(), options, providers=providers)
        (inp,) = self._session.get_inputs()
        self._input = inp.name
        self._fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self._size, (mean, std) = preprocessing(cfg.model_name)
        self._mean = np.asarray(mean, np.float32)
        self._std = np.asarray(std, np.float32)
        self._dim, self._columns, self._path = int(dim), columns, path
        self._outputs = [graph.graph.output[0].name, head.input[0]]

    def output_specs(self) -> dict[str, OutputSpec]:
        self._require_loaded()
        embedding, logits = self.output_names
        model = self.config.model_name
        return {
            embedding: self._spec(embedding, self._dim, None, f"{model} embedding (classifier input) per face"),
            logits: self._spec(logits, len(self._columns), self._columns, f"{model} logits per face (AffectNet order)"),
        }

    def _libraries(self) -> tuple[str, ...]:
        return ("onnxruntime", "onnx", "opencv-python-headless")

    def _model_provenance(self) -> dict[str, Any]:
        return {
            "id": f"emotiefflib/{self.config.model_name}",
            "revision": None,
            "commit": None,
            "weights_sha256": {self._path.name: sha256_file(self._path)},
            "input_size": self._size,
            "mean": self._mean.tolist(),
            "std": self._std.tolist(),
        }

    def _forward(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        batch = np.stack([resize(im, self._size) for im in images]).astype(np.float32) / 255.0
        batch = ((batch - self._mean) / self._std).transpose(0, 3, 1, 2).astype(np.float32)
        if self._fixed_batch is not None and self._fixed_batch != len(batch):
            parts = [self._session.run(self._outputs, {self._input: batch[k : k + 1]}) for k in range(len(batch))]
            logits, embedding = (np.concatenate([p[j] for p in parts]) for j in range(2))
        else:
            logits, embedding = self._session.run(self._outputs, {self._input: batch})
        names = self.output_names
        return {names[0]: embedding.reshape(len(batch), -1), names[1]: logits.reshape(len(batch), -1)}


@dataclass(frozen=True, kw_only=True)
class EnetB0Config(EmotiEffLibConfig):
    """``enet-b0``: EmotiEffLib ``enet_b0_8_best_vgaf`` (settings as in :class:`EmotiEffLibConfig`)."""

    model_name: str = "enet_b0_8_best_vgaf"


@register
class EnetB0Extractor(EmotiEffLibExtractor):
    """EmotiEffLib enet_b0_8_best_vgaf: 1280-d embedding + 8 AffectNet logits per face."""

    name = "enet-b0"
    config_class = EnetB0Config


@dataclass(frozen=True, kw_only=True)
class MobileVitConfig(EmotiEffLibConfig):
    """``mobilevit``: EmotiEffLib ``mobilevit_va_mtl`` (settings as in :class:`EmotiEffLibConfig`)."""

    model_name: str = "mobilevit_va_mtl"


@register
class MobileVitExtractor(EmotiEffLibExtractor):
    """EmotiEffLib mobilevit_va_mtl: 768-d embedding + 8 emotions, valence, arousal per face."""

    name = "mobilevit"
    config_class = MobileVitConfig


@dataclass(frozen=True, kw_only=True)
class MobileFaceNetConfig(EmotiEffLibConfig):
    """``mobilefacenet``: EmotiEffLib ``mbf_va_mtl``, 112 px (settings as in :class:`EmotiEffLibConfig`)."""

    model_name: str = "mbf_va_mtl"


@register
class MobileFaceNetExtractor(EmotiEffLibExtractor):
    """EmotiEffLib mbf_va_mtl: 512-d embedding + 8 emotions, valence, arousal per face (112 px)."""

    name = "mobilefacenet"
    config_class = MobileFaceNetConfig
