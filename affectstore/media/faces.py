"""Face crops (jpg/png files a dataset ships) loaded as uint8 RGB arrays."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from affectstore.media.errors import (
    CorruptMediaError,
    EmptyMediaError,
    UnsupportedMediaError,
)
from affectstore.media.probe import MissingMediaError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def load_face_crop(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """One face-crop image as (H, W, 3) uint8 RGB; ``size=(width, height)`` resizes (bilinear).

    Raises `MediaError` subclasses for missing, empty, unsupported or unreadable images.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Loading face crops needs Pillow: pip install 'affectstore[extract]'") from exc

    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise UnsupportedMediaError(
            path,
            f"extension {path.suffix or '(none)'!r} is not a face-crop image type",
            hint=f"Face crops must be one of {', '.join(sorted(IMAGE_EXTENSIONS))}.",
        )
    if not path.is_file():
        raise MissingMediaError(path, "face crop not found")
    if path.stat().st_size == 0:
        raise EmptyMediaError(path, "face crop is empty (0 bytes)")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if size is not None:
                image = image.resize((int(size[0]), int(size[1])), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise CorruptMediaError(path, f"cannot decode the image ({exc})") from exc


def load_face_crops(
    paths: Sequence[str | Path],
    times: Sequence[float] | np.ndarray | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load face-crop images; return ``(times, images)``.

    ``times`` (float64 seconds, one per path) is passed through as an array (``arange``
    frame indices where None). ``images`` is (N, H, W, 3) uint8 RGB; crops of different
    sizes need ``size=(width, height)``, which resizes every crop (bilinear). Raises
    `MediaError` subclasses for missing, empty or unreadable images. Needs Pillow
    (``pip install affectstore[extract]``).
    """
    paths = [Path(p) for p in paths]
    if times is None:
        out_times = np.arange(len(paths), dtype=np.float64)
    else:
        out_times = np.asarray(times, dtype=np.float64)
        if out_times.shape != (len(paths),):
            raise ValueError(f"times must hold one value per path ({len(paths)}). Got shape {out_times.shape} instead.")
    images: list[np.ndarray] = []
    for path in paths:
        array = load_face_crop(path, size)
        if images and array.shape != images[0].shape:
            raise ValueError(
                f"{path}: face crop is {array.shape[1]}x{array.shape[0]}, the first one is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; pass size=(width, height) to resize them all."
            )
        images.append(array)
    stacked = np.stack(images) if images else np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return out_times, stacked
