"""Challenge submission files, byte for byte.

Formats (see ../shared/datasets.md):

- EMI: header ``Filename,Admiration,Amusement,Determination,Empathic Pain,Excitement,Joy``,
  one row per test video: ``<id>,<six intensities>``.
- BAH: no header; one line per frame ``<video path>/frame-<N>.jpg,<0|1>``.
- EXPR: header ``image_location,Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other``;
  one line per frame ``<video>/<i:05d>.jpg,<class>`` where class is the single
  integer 0..7. The header lists the class names but each row carries one label,
  which is the format of the ABAW expression-challenge sample submissions.
- VA: header ``image_location,valence,arousal``; lines ``<video>/<i:05d>.jpg,<v>,<a>``.
- AU: header ``image_location,AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26``; lines
  ``<video>/<i:05d>.jpg,<12 x 0|1>``.

Choices, made once here:
- Floats are written with 6 decimals (``%.6f``): the precision of the challenge
  label files, far below any metric's resolution, stable across platforms and
  numpy versions (unlike shortest round-trip repr), and easy to diff. ``-0.000000``
  is written as ``0.000000``.
- Lines end in ``\\n`` (also after the last line), UTF-8, no BOM, no quoting: the
  challenge parsers split on commas, so ids or paths containing a comma, quote or
  newline are refused instead of silently quoted. Spaces (BAH paths) are kept.
- Non-finite values are refused: a NaN in a submission is always a bug upstream.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from affectstore.train.metrics import AU_NAMES, EMI_EMOTIONS, EXPR_CLASSES

logger = logging.getLogger(__name__)

EMI_HEADER = "Filename," + ",".join(EMI_EMOTIONS)
EXPR_HEADER = "image_location," + ",".join(EXPR_CLASSES)
VA_HEADER = "image_location,valence,arousal"
AU_HEADER = "image_location," + ",".join(AU_NAMES)


def _fmt(x: float) -> str:
    s = f"{x:.6f}"
    return "0.000000" if s == "-0.000000" else s


def _check_names(names: Sequence[str], what: str) -> list[str]:
    out = []
    for n in names:
        if not isinstance(n, str):
            raise ValueError(f"{what} must be strings. Got {n!r} ({type(n).__name__}); format ids as text first.")
        if any(c in n for c in ',"\n\r'):
            raise ValueError(f"{what} {n!r} contains a comma, quote or line break, which the challenge CSV cannot hold.")
        out.append(n)
    return out


def _check_floats(values, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 + len(shape_tail) or v.shape[1:] != shape_tail:
        raise ValueError(f"{what} must have shape (N, {', '.join(map(str, shape_tail))}). Got {v.shape} instead.")
    if not np.isfinite(v).all():
        bad = int(np.flatnonzero(~np.isfinite(v).reshape(len(v), -1).all(axis=1))[0])
        raise ValueError(f"{what} row {bad} holds NaN or infinity; fill or fix predictions before writing.")
    return v


def _check_labels(labels, allowed: Sequence[int], what: str, n: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise ValueError(f"{what} must hold one label per row ({n}). Got shape {lab.shape} instead.")
    if lab.dtype == bool:
        lab = lab.astype(np.int64)
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"{what} must be integers {list(allowed)}. Got dtype {lab.dtype}; threshold or argmax first.")
    bad = ~np.isin(lab, allowed)
    if bad.any():
        raise ValueError(f"{what} must be in {list(allowed)}. Got {np.unique(lab[bad])[:10].tolist()} instead.")
    return lab


def _check_frames(videos, frames, n_min: int, what: str) -> tuple[list[str], np.ndarray]:
    vids = _check_names(list(videos), "Video names")
    fr = np.asarray(frames)
    if fr.shape != (len(vids),) or not np.issubdtype(fr.dtype, np.integer):
        raise ValueError(f"frames must be {len(vids)} integer frame numbers, one per row. Got {fr.dtype} {fr.shape}.")
    if len(fr) and fr.min() < n_min:
        raise ValueError(f"{what} frame numbers start at {n_min}. Got {int(fr.min())}.")
    return vids, fr


def format_emi_submission(video_ids: Sequence[str], predictions) -> str:
    """EMI CSV text: header + ``<id>,<6 intensities>`` per video."""
    ids = _check_names(list(video_ids), "Video ids")
    p = _check_floats(predictions, (len(EMI_EMOTIONS),), "EMI predictions")
    if len(ids) != len(p):
        raise ValueError(f"Got {len(ids)} video ids but {len(p)} prediction rows.")
    if len(set(ids)) != len(ids):
        raise ValueError("Video ids must be unique: one row per test video.")
    lines = [EMI_HEADER] + [vid + "," + ",".join(_fmt(x) for x in row) for vid, row in zip(ids, p)]
    return "\n".join(lines) + "\n"


def format_bah_submission(videos: Sequence[str], frames, labels) -> str:
    """BAH text: ``<video path>/frame-<N>.jpg,<0|1>`` per frame, no header (N from 0)."""
    vids, fr = _check_frames(videos, frames, 0, "BAH")
    lab = _check_labels(labels, (0, 1), "BAH labels", len(vids))
    return "".join(f"{v}/frame-{int(n)}.jpg,{int(y)}\n" for v, n, y in zip(vids, fr, lab))


def format_expr_submission(videos: Sequence[str], frames, labels) -> str:
    """EXPR CSV text: header + ``<video>/<i:05d>.jpg,<class 0..7>`` per frame (i from 1)."""
    vids, fr = _check_frames(videos, frames, 1, "Aff-Wild2")
    lab = _check_labels(labels, tuple(range(len(EXPR_CLASSES))), "EXPR labels", len(vids))
    rows = [f"{v}/{int(n):05d}.jpg,{int(y)}" for v, n, y in zip(vids, fr, lab)]
    return "\n".join([EXPR_HEADER] + rows) + "\n"


def format_va_submission(videos: Sequence[str], frames, valence_arousal) -> str:
    """VA CSV text: header + ``<video>/<i:05d>.jpg,<valence>,<arousal>`` per frame (i from 1)."""
    vids, fr = _check_frames(videos, frames, 1, "Aff-Wild2")
    va = _check_floats(valence_arousal, (2,), "VA predictions")
    if len(va) != len(vids):
        raise ValueError(f"Got {len(vids)} frames but {len(va)} prediction rows.")
    rows = [f"{v}/{int(n):05d}.jpg,{_fmt(a)},{_fmt(b)}" for v, n, (a, b) in zip(vids, fr, va)]
    return "\n".join([VA_HEADER] + rows) + "\n"


def format_au_submission(videos: Sequence[str], frames, labels) -> str:
    """AU CSV text: header + ``<video>/<i:05d>.jpg,<12 x 0|1>`` per frame (i from 1)."""
    vids, fr = _check_frames(videos, frames, 1, "Aff-Wild2")
    lab = np.asarray(labels)
    if lab.shape != (len(vids), len(AU_NAMES)):
        raise ValueError(f"AU labels must have shape ({len(vids)}, {len(AU_NAMES)}). Got {lab.shape} instead.")
    flat = _check_labels(lab.reshape(-1), (0, 1), "AU labels", lab.size).reshape(lab.shape)
    rows = [f"{v}/{int(n):05d}.jpg," + ",".join(str(int(x)) for x in row) for v, n, row in zip(vids, fr, flat)]
    return "\n".join([AU_HEADER] + rows) + "\n"


def _write(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # newline="" stops Python translating "\n" on Windows: the bytes are exactly `text`.
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    logger.info("Wrote submission %s (%d lines).", path, text.count("\n"))
    return path


def write_emi_submission(path: str | Path, video_ids: Sequence[str], predictions) -> Path:
    """Write the EMI submission CSV; returns its path."""
    return _write(path, format_emi_submission(video_ids, predictions))


def write_bah_submission(path: str | Path, videos: Sequence[str], frames, labels) -> Path:
    """Write the BAH submission file; returns its path."""
    return _write(path, format_bah_submission(videos, frames, labels))


def write_expr_submission(path: str | Path, videos: Sequence[str], frames, labels) -> Path:
    """Write the EXPR submission CSV; returns its path."""
    return _write(path, format_expr_submission(videos, frames, labels))


def write_va_submission(path: str | Path, videos: Sequence[str], frames, valence_arousal) -> Path:
    """Write the VA submission CSV; returns its path."""
    return _write(path, format_va_submission(videos, frames, valence_arousal))


def write_au_submission(path: str | Path, videos: Sequence[str], frames, labels) -> Path:
    """Write the AU submission CSV; returns its path."""
    return _write(path, format_au_submission(videos, frames, labels))
