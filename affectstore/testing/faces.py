"""Drawn faces that OpenCV's Haar cascade detects, and videos of them, for tests and benchmarks.

A face is a skin-coloured ellipse with eyes, brows, a nose and a mouth on a grey
background; the frontal-face cascade finds it at any position and most sizes. Videos move the
face across the frame and can leave it out for chosen stretches of time (frames without a
face) or encode a label in its brightness.
"""

from __future__ import annotations

import fractions
from collections.abc import Callable
from pathlib import Path

import numpy as np


def draw_face(size: tuple[int, int] = (320, 240), centre: tuple[int, int] | None = None, scale: int = 60, skin: float = 1.0) -> np.ndarray:
    """An RGB frame (height x width x 3, uint8) with one drawn face of half-height ``scale`` at ``centre``."""
    import cv2

    width, height = size
    cx, cy = centre if centre is not None else (width // 2, height // 2)
    s = int(scale)
    image = np.full((height, width, 3), 110, np.uint8)
    tone = tuple(int(min(255, c * skin)) for c in (200, 170, 150))
    cv2.ellipse(image, (cx, cy), (int(s * 0.8), s), 0, 0, 360, tone, -1)
    for dx in (-0.35, 0.35):
        ex, ey = int(cx + dx * s), int(cy - 0.25 * s)
        cv2.ellipse(image, (ex, ey), (int(0.16 * s), int(0.08 * s)), 0, 0, 360, (40, 30, 30), -1)
        cv2.line(image, (ex - int(0.2 * s), ey - int(0.2 * s)), (ex + int(0.2 * s), ey - int(0.22 * s)), (60, 40, 30), max(1, int(0.06 * s)))
    cv2.line(image, (cx, cy - int(0.1 * s)), (cx, cy + int(0.2 * s)), (150, 120, 100), max(1, int(0.05 * s)))
    cv2.ellipse(image, (cx, cy + int(0.45 * s)), (int(0.3 * s), int(0.1 * s)), 0, 0, 360, (120, 50, 50), -1)
    return image


def make_face_video(
    path: str | Path,
    duration: float = 2.0,
    *,
    fps: float = 10.0,
    size: tuple[int, int] = (320, 240),
    face: Callable[[float], bool] | bool = True,
    skin: Callable[[float], float] | float = 1.0,
    audio: bool = False,
    sample_rate: int = 16_000,
) -> Path:
    """Encode an H.264 video (.mp4/.mkv) of a drawn face moving left to right.

    ``face(t)`` False leaves the face out of the frame at time ``t`` (a frame without a face);
    ``skin(t)`` scales its brightness. ``audio`` adds a quiet AAC sine track. Frames have pts
    ``i / fps``.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = int(size[0]) // 2 * 2, int(size[1]) // 2 * 2
    n_frames = max(1, round(duration * fps))
    rate = fractions.Fraction(fps).limit_denominator(1001)
    container = av.open(str(path), mode="w")
    try:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        scale = height // 4
        for i in range(n_frames):
            t = i / fps
            shown = face(t) if callable(face) else face
            if shown:
                cx = int(scale + (width - 2 * scale) * (i % 50) / 49)
                image = draw_face((width, height), (cx, height // 2), scale, skin(t) if callable(skin) else skin)
            else:
                image = np.full((height, width, 3), 110, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if audio:
            astream = container.add_stream("aac", rate=sample_rate)
            astream.layout = "mono"
            samples = (0.1 * np.sin(2 * np.pi * 220 * np.arange(round(duration * sample_rate)) / sample_rate)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                block = av.AudioFrame.from_ndarray(samples[None, start : start + 1024].copy(), format="fltp", layout="mono")
                block.sample_rate = sample_rate
                block.pts = start
                for packet in astream.encode(block):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    finally:
        container.close()
    return path
