"""The image contract: face crops (or sampled video frames) with their times, fed in batches.

An item is an :class:`ImageBatch`: ``times`` (N,) float64 seconds and ``images``, N uint8
RGB arrays (H x W x 3; sizes may differ between items). :class:`ImageExtractor` runs its model
on every image of a pool of videos in forward passes of ``batch_size`` images (batching
across videos), then splits the rows back per video. Every output is per image, so a long
video streams chunk by chunk with bounded memory (:class:`ImageStream`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from affectstore.extract.base import Extractor, Features, Input, OutputKind, OutputSpec, Outputs, Stream
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import InputError

C = TypeVar("C", bound=ExtractorConfig)

#: AffectNet's eight classes in the order EmotiEffLib's models emit them.
AFFECTNET_EMOTIONS = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")


@dataclass(frozen=True)
class ImageBatch:
    """Images of one video (or one chunk of it) with their times in seconds from the video start."""

    times: np.ndarray
    images: Sequence[np.ndarray]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.images):
            raise ValueError(f"ImageBatch needs one time per image. Got {len(self.times)} times and {len(self.images)} images.")

    def __len__(self) -> int:
        return len(self.images)

    @staticmethod
    def concatenate(chunks: Sequence[ImageBatch]) -> ImageBatch:
        if len(chunks) == 1:
            return chunks[0]
        return ImageBatch(np.concatenate([c.times for c in chunks]), [im for c in chunks for im in c.images])


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize to ``size`` x ``size`` (OpenCV, as EmotiEffLib and fer do)."""
    import cv2

    if image.shape[0] == size and image.shape[1] == size:
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


class ImageExtractor(Extractor[C]):
    """An extractor over images: one row per image in every output (kind ``segments``, times of the images)."""

    input: ClassVar[Input] = Input.FACES
    bounded_stream = True

    def validate(self, item: Any) -> ImageBatch:
        if not isinstance(item, ImageBatch):
            raise InputError(f"{self.name} takes an ImageBatch (times + images), got {type(item).__name__}.")
        if len(item) == 0:
            raise InputError(f"{self.name}: no images to process.")
        for image in item.images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise InputError(
                    f"{self.name} takes uint8 RGB images (H x W x 3); got shape {image.shape}, dtype {image.dtype}."
                )
        return item

    @abc.abstractmethod
    def _forward(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on at most ``batch_size`` images: output name -> (N x D) float array."""

    def extract_batch(self, items: Sequence[ImageBatch]) -> list[Outputs]:
        """Every image of every item, in forward passes of ``batch_size`` images across items."""
        self._require_loaded()
        images = [im for item in items for im in item.images]
        parts: dict[str, list[np.ndarray]] = {}
        size = self.config.batch_size
        for start in range(0, len(images), size):
            for name, rows in self._forward(images[start : start + size]).items():
                parts.setdefault(name, []).append(np.asarray(rows, dtype=np.float32))
        joined = {name: np.concatenate(rows, axis=0) for name, rows in parts.items()}
        out: list[Outputs] = []
        offset = 0
        for item in items:
            n = len(item)
            times = np.asarray(item.times, dtype=np.float64)
            out.append({name: Features(rows[offset : offset + n], times) for name, rows in joined.items()})
            offset += n
        return out

    def open_stream(self, info: Any) -> Stream:
        self._require_loaded()
        return ImageStream(self)

    def _join_chunks(self, chunks: list[Any]) -> ImageBatch:
        return ImageBatch.concatenate(chunks)

    def _spec(self, name: str, dim: int, columns: tuple[str, ...] | None, description: str, dtype: str = "float32") -> OutputSpec:
        return OutputSpec(name, dim, None, dtype, columns, description, kind=OutputKind.SEGMENTS)


class ImageStream(Stream):
    """Per-chunk extraction: image outputs need nothing from other chunks, so memory stays at one chunk."""

    def __init__(self, extractor: ImageExtractor[Any]) -> None:
        self.extractor = extractor

    def push(self, chunk: ImageBatch) -> Outputs:
        return self.extractor.extract_batch([self.extractor.validate(chunk)])[0]

    def close(self) -> Outputs:
        return {}
