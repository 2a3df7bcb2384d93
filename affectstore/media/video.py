"""Video frames sampled at a chosen rate, each with its exact stream timestamp.

Container frame-rate metadata is never used for timing (EMI's says 25 to 1000 fps for
ordinary videos): every returned time is the decoded frame's own presentation
timestamp, ``pts * time_base`` in seconds, as the stream stores it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectstore.media.errors import CorruptMediaError
from affectstore.media.probe import open_media

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoFrames:
    """Decoded frames: ``times`` (N,) float64 seconds and ``images`` (N, H, W, 3) uint8 RGB."""

    times: np.ndarray
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


def iter_frames(
    path: str | Path,
    rate: float | None = None,
    size: tuple[int, int] | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time, image)`` for frames of ``path`` sampled at ``rate`` frames per second.

    ``rate=None`` yields every frame. Otherwise, with targets ``t0, t0 + 1/rate, ...``
    (``t0`` the first frame's time), each target takes the first frame at or after it;
    a frame is yielded once even where it meets several targets, so a rate above the
    source's gives the source's frames. ``size=(width, height)`` rescales. Images are
    uint8 RGB (H, W, 3). Raises `MediaError` subclasses for bad files.
    """
    if rate is not None and not (isinstance(rate, (int, float)) and rate > 0):
        raise ValueError(f"rate must be a positive number of frames per second or None. Got {rate!r} instead.")
    if size is not None and (len(size) != 2 or min(size) <= 0):
        raise ValueError(f"size must be (width, height) with positive integers. Got {size!r} instead.")
    n = 0
    with open_media(path, need="video") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = 1.0 / rate if rate else 0.0
        target = None
        previous = None
        for frame in container.decode(stream):
            time = frame.time
            if time is None:
                # No pts: fall back to the previous frame's time plus the stream's average
                # duration. Rare (raw streams); logged because these times are estimates.
                guess = 1.0 / float(stream.average_rate) if stream.average_rate else 0.04
                time = (previous + guess) if previous is not None else 0.0
                logger.warning("%s: frame without timestamp, estimated %.3f s", path, time)
            previous = time
            if rate is not None:
                if target is None:
                    target = time
                # A tiny tolerance keeps float rounding (5/30 vs 1/6) from skipping a frame.
                if time + 1e-6 < target:
                    continue
                while target <= time + 1e-6:
                    target += step
            if size is not None:
                image = frame.to_ndarray(format="rgb24", width=int(size[0]), height=int(size[1]))
            else:
                image = frame.to_ndarray(format="rgb24")
            n += 1
            yield float(time), image
    if n == 0:
        raise CorruptMediaError(path, "the video stream decoded to zero frames")


def sample_frames(
    path: str | Path,
    rate: float | None = None,
    size: tuple[int, int] | None = None,
) -> VideoFrames:
    """Decode frames of ``path`` at ``rate`` fps into one `VideoFrames` (see `iter_frames`).

    Holds every sampled frame in memory; iterate `iter_frames` for long videos.
    """
    times: list[float] = []
    images: list[np.ndarray] = []
    for time, image in iter_frames(path, rate=rate, size=size):
        times.append(time)
        images.append(image)
    return VideoFrames(times=np.asarray(times, dtype=np.float64), images=np.stack(images))


def frame_times(path: str | Path) -> np.ndarray:
    """Timestamps (float64 seconds) of every frame of ``path``'s video stream, in display order.

    Decodes the stream (no colour conversion), so it is exact where metadata is wrong.
    """
    times: list[float] = []
    with open_media(path, need="video") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if frame.time is not None:
                times.append(float(frame.time))
    if not times:
        raise CorruptMediaError(path, "the video stream decoded to zero frames")
    return np.sort(np.asarray(times, dtype=np.float64))


def video_frame_count(path: str | Path) -> int:
    """Number of frames of ``path``'s video stream: the container's count, else decoded timestamps.

    The header count (``nb_frames``) is free to read; containers that do not store it
    (some .avi/.mkv/.webm) report 0, and then every frame is decoded and counted.
    """
    with open_media(path, need="video") as container:
        n = int(container.streams.video[0].frames or 0)
    if n > 0:
        return n
    return int(len(frame_times(path)))


def video_duration(path: str | Path) -> float:
    """Duration of the video stream in seconds from its frame timestamps.

    The last frame's end is estimated with the median frame interval.
    """
    times = frame_times(path)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return float(times[-1] - min(times[0], 0.0) + step) if len(times) else 0.0
