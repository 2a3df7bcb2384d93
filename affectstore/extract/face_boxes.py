"""Face detection as a feature set (registered as ``face-boxes``): the largest face per sampled frame.

Outputs:

- ``face-boxes``: one row per sampled frame that has a face, ``x, y, w, h, score`` in the
  frame's pixels, times = the frame's presentation time. Frames without a face are simply
  absent; a video with no face in any sampled frame fails with that reason.
- ``face-boxes-coverage``: one row per video, ``sampled``, ``with_face``, ``fraction``: how
  many frames were sampled and how many had a face (``affect store info`` prints their means). The boxes are
kept so every run can be audited, and so later runs crop the same faces without detecting
again.

The faces feeder runs this extractor itself while it decodes a video for the face models
(one decode for detection and crops); on its own (``--features face-boxes``) it runs on the
frames feeder. The crop settings (``margin``, ``crop_size``) are part of its config, so the
face models that read these boxes change their config hash when the crops would change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from affectstore.extract.base import Extractor, Features, Input, OutputKind, OutputSpec, Outputs, Stream, sha256_file
from affectstore.extract.config import ExtractorConfig
from affectstore.extract.errors import InputError, ModelLoadError
from affectstore.extract.images import ImageBatch
from affectstore.extract.registry import register

COLUMNS = ("x", "y", "w", "h", "score")
COVERAGE = ("sampled", "with_face", "fraction")
DETECTORS = ("haar",)


@dataclass(frozen=True, kw_only=True)
class FaceBoxesConfig(ExtractorConfig):
    """Detection settings: ``detector`` (``haar``: OpenCV's cascade ``cascade``), ``rate`` (frames
    sampled per second), ``min_face`` (smallest face, fraction of the frame's shorter side),
    ``scale_factor`` and ``min_neighbors`` (the cascade's), ``detect_width`` (wider frames are
    shrunk for detection); crops: ``margin`` (added on each side, fraction of the box) and
    ``crop_size`` (pixels of the square crop handed to face models)."""

    detector: str = "haar"
    rate: float = 5.0
    min_face: float = 0.08
    scale_factor: float = 1.1
    min_neighbors: int = 5
    detect_width: int = 640
    cascade: str = "haarcascade_frontalface_default.xml"
    margin: float = 0.2
    crop_size: int = 224

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}. Got {self.detector!r} instead.")
        for name, low in (("rate", 0.0), ("scale_factor", 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > low:
                raise ValueError(f"{name} must be a number > {low:g}. Got {value!r} instead.")
        if isinstance(self.min_face, bool) or not isinstance(self.min_face, int | float) or not 0 < self.min_face < 1:
            raise ValueError(f"min_face must be a fraction in (0, 1) of the frame's shorter side. Got {self.min_face!r} instead.")
        if isinstance(self.margin, bool) or not isinstance(self.margin, int | float) or not 0 <= self.margin <= 1:
            raise ValueError(f"margin must be a fraction in [0, 1] of the box size. Got {self.margin!r} instead.")
        for name, low in (("min_neighbors", 0), ("detect_width", 32), ("crop_size", 16)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}. Got {value!r} instead.")


@register
class FaceBoxesExtractor(Extractor[FaceBoxesConfig]):
    """The largest face of each sampled frame (see the module docstring)."""

    name = "face-boxes"
    version = "1"
    input = Input.FRAMES
    config_class = FaceBoxesConfig
    output_suffixes = ("", "-coverage")
    devices = ("cpu",)
    bounded_stream = True

    @property
    def frame_rate(self) -> float:
        """Frames per second the feeder samples for detection."""
        return float(self.config.rate)

    def _load(self) -> None:
        from affectstore.media.detect import HaarDetector

        cfg = self.config
        try:
            self._detector = HaarDetector(cfg.cascade, cfg.scale_factor, cfg.min_neighbors, cfg.min_face, cfg.detect_width)
        except ImportError as error:
            raise ModelLoadError(str(error)) from error
        except (FileNotFoundError, ValueError) as error:
            raise ModelLoadError(str(error)) from error

    def output_specs(self) -> dict[str, OutputSpec]:
        boxes, coverage = self.output_names
        return {
            boxes: OutputSpec(
                boxes, len(COLUMNS), None, "float32", COLUMNS,
                f"largest face per frame sampled at {self.config.rate:g} fps ({self.config.detector}), frame pixels",
                kind=OutputKind.SEGMENTS,
            ),
            coverage: OutputSpec(
                coverage, len(COVERAGE), None, "float32", COVERAGE,
                "frames sampled, frames with a face, and their fraction, per video", kind=OutputKind.VIDEO,
            ),
        }

    def _libraries(self) -> tuple[str, ...]:
        return ("opencv-python-headless", "av")

    def _model_provenance(self) -> dict[str, Any]:
        path = self._detector.path
        return {"id": f"opencv/{path.name}", "revision": None, "commit": None, "weights_sha256": {path.name: sha256_file(path)}}

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """The largest face of each frame as (x, y, w, h, score), or None."""
        self._require_loaded()
        return self._detector.detect(images)

    def crop(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """The square face crop models are fed (``margin``, ``crop_size`` of the config)."""
        from affectstore.media.detect import crop_face

        return crop_face(image, box, self.config.margin, self.config.crop_size)

    def boxes(self, frames: ImageBatch) -> Features:
        """Rows for the frames of ``frames`` that hold a face."""
        found = self.detect(frames.images)
        keep = [k for k, box in enumerate(found) if box is not None]
        values = np.stack([found[k] for k in keep]).astype(np.float32) if keep else np.zeros((0, len(COLUMNS)), np.float32)
        return Features(values, np.asarray(frames.times, dtype=np.float64)[keep])

    def validate(self, item: Any) -> ImageBatch:
        if not isinstance(item, ImageBatch) or len(item) == 0:
            raise InputError(f"{self.name} takes the sampled frames of a video; got none.")
        return item

    def outputs(self, boxes: Sequence[Features], sampled: int, first: float, last: float) -> Outputs:
        """Both outputs of one video from its boxes chunk by chunk; InputError when no frame had a face."""
        joined = Features.concatenate(list(boxes))
        if len(joined) == 0:
            raise InputError(no_face_message(sampled, self.config))
        names = self.output_names
        row = np.array([[sampled, len(joined), len(joined) / sampled]], dtype=np.float32)
        return {names[0]: joined, names[1]: Features(row, np.array([(first + last) / 2.0]))}

    def extract_batch(self, items: Sequence[ImageBatch]) -> list[Outputs]:
        return [self.outputs([self.boxes(item)], len(item), float(item.times[0]), float(item.times[-1])) for item in items]

    def open_stream(self, info: Any) -> Stream:
        self._require_loaded()
        return _BoxStream(self)


def no_face_message(n_frames: int, config: FaceBoxesConfig) -> str:
    return (
        f"no face found in {n_frames} frames sampled at {config.rate:g} fps ({config.detector} detector, "
        f"min_face {config.min_face:g}); the video has no visible face, or lower face-boxes.min_face / min_neighbors"
    )


class _BoxStream(Stream):
    """Boxes chunk by chunk; both outputs (or the no-face failure) at close."""

    def __init__(self, extractor: FaceBoxesExtractor) -> None:
        self.extractor = extractor
        self.boxes: list[Features] = []
        self.sampled = 0
        self.first = self.last = 0.0

    def push(self, chunk: ImageBatch) -> Outputs:
        if self.sampled == 0:
            self.first = float(chunk.times[0])
        self.boxes.append(self.extractor.boxes(chunk))
        self.sampled += len(chunk)
        self.last = float(chunk.times[-1])
        return {}

    def close(self) -> Outputs:
        return self.extractor.outputs(self.boxes, self.sampled, self.first, self.last)
