"""Face detection on RGB frames (OpenCV's Haar cascade, or MTCNN) and square face crops.

Every detector returns, per frame, the largest face as ``(x, y, w, h, score)`` in the frame's
pixels, or None. :func:`crop_face` cuts the box out with a margin, squared about its centre,
padding with black where the square leaves the frame, and resizes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

#: OpenCV 4.x ships these cascades in ``cv2.data.haarcascades`` (5.x dropped them).
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"


def _cv2():
    try:
        import cv2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"Face detection needs OpenCV ({error}). Install it with: pip install 'affectstore[faces]' "
            "(opencv-python-headless below 5, which ships the Haar cascades)."
        ) from error
    return cv2


def cascade_path(name: str) -> Path:
    """The cascade file: a path as given, else a file of that name in OpenCV's own cascade folder."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    cv2 = _cv2()
    folder = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or ".")
    candidate = folder / name
    if candidate.is_file():
        return candidate
    known = sorted(p.name for p in folder.glob("haarcascade_*.xml")) if folder.is_dir() else []
    raise FileNotFoundError(
        f"Haar cascade {name!r} not found (tried {path} and {candidate}). "
        + (f"OpenCV ships: {', '.join(known)}." if known else "This OpenCV ships no cascades: install opencv-python-headless<5.")
    )


class HaarDetector:
    """OpenCV's Viola-Jones cascade. ``min_face`` is the smallest face as a fraction of the frame's
    shorter side; frames wider than ``detect_width`` are shrunk for detection (boxes are scaled back).
    The score is the cascade's level weight of the chosen face (higher: more certain)."""

    def __init__(
        self,
        cascade: str = DEFAULT_CASCADE,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face: float = 0.08,
        detect_width: int = 640,
    ) -> None:
        cv2 = _cv2()
        self.path = cascade_path(cascade)
        self._classifier = cv2.CascadeClassifier(str(self.path))
        if self._classifier.empty():
            raise ValueError(f"{self.path} is not a Haar cascade OpenCV can read.")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face = min_face
        self.detect_width = detect_width

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """The largest face of each RGB frame as (x, y, w, h, score), or None."""
        cv2 = _cv2()
        out: list[np.ndarray | None] = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            scale = 1.0
            if gray.shape[1] > self.detect_width:
                scale = self.detect_width / gray.shape[1]
                gray = cv2.resize(gray, (self.detect_width, max(1, round(gray.shape[0] * scale))), interpolation=cv2.INTER_AREA)
            smallest = max(1, int(self.min_face * min(gray.shape)))
            rects, _, weights = self._classifier.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(smallest, smallest), outputRejectLevels=True,
            )
            if len(rects) == 0:
                out.append(None)
                continue
            rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
            k = int(np.argmax(rects[:, 2] * rects[:, 3]))
            score = float(np.asarray(weights, dtype=np.float64).ravel()[k])
            out.append(np.array([*(rects[k] / scale), score], dtype=np.float64))
        return out


def square_box(box: Sequence[float], margin: float) -> tuple[int, int, int]:
    """``(x0, y0, side)`` of the square around a (x, y, w, h) box grown by ``margin`` of its size on each side."""
    x, y, w, h = (float(v) for v in box[:4])
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), max(1, int(round(side)))


def crop_face(image: np.ndarray, box: Sequence[float], margin: float, size: int) -> np.ndarray:
    """A ``size`` x ``size`` RGB crop of the square around ``box`` (black where it leaves the frame)."""
    cv2 = _cv2()
    x0, y0, side = square_box(box, margin)
    height, width = image.shape[:2]
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(width, x0 + side), min(height, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    if side == size:
        return canvas
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interpolation)
