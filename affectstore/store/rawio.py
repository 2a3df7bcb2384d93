"""Fast bulk reads and writes of uncompressed Zarr chunks on a local disk.

Reading through zarr-python costs one decode and one copy per chunk plus per-array
metadata parsing (about 2 ms a video). For uncompressed, little-endian chunks the file
on disk *is* the array's bytes in C order (plus a 4-byte CRC-32C), so the bytes are read
straight into the final buffer: one copy, which is what makes bulk loading beat a pickle.
Every file's size is checked against its shape and its checksum verified (CRC-32C runs at
about 10 GB/s), so a damaged chunk is refused here exactly as on the zarr path.
Anything not in that layout goes through zarr (`fallback`), so the result never depends
on the path.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import google_crc32c
import numpy as np
import zarr

from affectstore.store import chunks

_LITTLE = sys.byteorder == "little"
_CRC = struct.Struct("<I")
_PIECE = 1 << 20  # bytes read (and checksummed) at a time


class RawDamage(Exception):
    """A chunk file of video ``index`` (file ``name`` below its folder) that does not match its shape or checksum."""

    def __init__(self, index: int, name: str, problem: str) -> None:
        self.index, self.name, self.problem = index, name, problem
        super().__init__(f"{name}: {problem}")


# Chunk files whose checksum this process has verified, by path -> (inode, size, mtime, ctime).
# A file whose status is unchanged since is read again without recomputing its CRC: a
# training script that loads the same feature many times pays the checksum once. Any write
# changes ctime (which no user call can set back), so a rewritten or replaced file is
# checked again; `affect store verify` always recomputes everything. Only files last changed
# well before they were verified are remembered: file-system clocks tick coarsely (a few
# ms), and a file rewritten within the tick of its check (a reused inode, the same size)
# would otherwise look unchanged.
_VERIFIED: dict[str, tuple[int, int, int, int]] = {}
_VERIFIED_MAX = 500_000
_SETTLED_NS = 2_000_000_000


def _signature(f) -> tuple[int, int, int, int]:
    st = os.fstat(f.fileno())
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_checked(path: Path, out: np.ndarray, checksum: bool) -> str | None:
    """Read a chunk file into ``out`` (then its 4 checksum bytes); the problem in words, or None.

    The checksum is computed piece by piece as the bytes arrive, while they are still in
    the CPU cache: a second pass over a 16 MiB chunk from memory cost more than the CRC.
    """
    flat = out.reshape(-1).view(np.uint8)
    view = memoryview(flat)
    crc = 0
    try:
        with open(path, "rb", buffering=0) as f:
            signature = _signature(f) if checksum else None
            if checksum and _VERIFIED.get(str(path)) == signature:
                if signature[1] != len(view) + _CRC.size:  # cannot happen unchanged; cheap to be sure
                    return f"chunk file has {signature[1]} bytes, {len(view) + _CRC.size} expected"
                checksum = False  # verified earlier by this process, unchanged since
            got = 0
            while got < len(view):
                n = f.readinto(view[got : got + _PIECE])
                if not n:
                    return f"chunk file is truncated while reading ({got} of {len(view)} bytes)"
                if checksum:
                    crc = google_crc32c.extend(crc, flat[got : got + n])
                got += n
            if not checksum:
                return None
            tail = f.read(_CRC.size + 1)
    except FileNotFoundError:
        return "chunk file is missing (removed while reading)"
    if len(tail) != _CRC.size:
        return f"chunk file has {len(tail) - _CRC.size:+d} bytes around its checksum"
    (stored,) = _CRC.unpack(tail)
    if stored != crc:
        return f"checksum mismatch (stored {stored:08x}, computed {crc:08x})"
    if time.time_ns() - signature[3] > _SETTLED_NS:
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[str(path)] = signature
    return None


def read_raw_videos(
    dirs: list[Path],
    dtype: np.dtype,
    dim: int,
    checksum: bool,
    fallback: Callable[[str], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate the single-chunk `values` and `times` arrays of each video folder in `dirs`.

    Returns (values N x dim, times N, offsets len(dirs)+1). Videos without chunk files
    (empty ones, or damaged ones) are read through `fallback(key)`, which checks them.
    Raises `RawDamage` for a file whose size does not fit its partner's or whose checksum fails.
    """
    itemsize = np.dtype(dtype).itemsize
    extra = _CRC.size if checksum else 0
    lengths = np.zeros(len(dirs), dtype=np.int64)
    direct = np.zeros(len(dirs), dtype=bool)
    slow: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, d in enumerate(dirs):
        try:
            t_size = os.stat(d / "times" / "c" / "0").st_size
            v_size = os.stat(d / "values" / "c" / "0" / "0").st_size
        except FileNotFoundError:
            t_size = v_size = -1
        if _LITTLE and t_size >= 0:
            n, rest = divmod(t_size - extra, 8)
            if rest or n <= 0:
                raise RawDamage(i, "times/c/0", f"chunk file has {t_size} bytes, not 8 per frame{' plus 4' if extra else ''}")
            if v_size != n * dim * itemsize + extra:
                raise RawDamage(
                    i, "values/c/0/0",
                    f"chunk file has {v_size} bytes; {n} frames of {dim} x {np.dtype(dtype).name} need {n * dim * itemsize + extra}",
                )
            lengths[i] = n
            direct[i] = True
        else:  # no chunk files (an empty video, or a missing chunk): zarr's metadata decides
            v, t = fallback(d.name)
            slow[i] = (np.asarray(v, dtype=dtype), np.asarray(t, dtype=np.float64))
            lengths[i] = len(t)
    offsets = np.zeros(len(dirs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.empty((int(offsets[-1]), dim), dtype=dtype)
    times = np.empty(int(offsets[-1]), dtype=np.float64)
    for i, d in enumerate(dirs):
        a, b = offsets[i], offsets[i + 1]
        if direct[i]:
            for name, out in (("values/c/0/0", values[a:b]), ("times/c/0", times[a:b])):
                problem = _read_checked(d / name, out, checksum)
                if problem:
                    raise RawDamage(i, name, problem)
        else:
            values[a:b], times[a:b] = slow[i]
    return values, times, offsets


def read_raw_chunked(folder: Path, array: zarr.Array, dtype: np.dtype, dim: int) -> np.ndarray | None:
    """Read a 2-D array chunked by rows only, straight from its chunk files; None if its layout does not allow it.

    Raises `chunks.DamagedChunk` for a missing chunk, a chunk of the wrong size or a bad checksum.
    """
    plain, checksum = chunks.layout_of(array)
    if not _LITTLE or not plain or array.ndim != 2 or array.chunks[1] != max(dim, 1):
        return None
    n, rows = array.shape[0], array.chunks[0]
    extra = _CRC.size if checksum else 0
    out = np.empty((n, dim), dtype=dtype)
    full = rows * dim * np.dtype(dtype).itemsize + extra
    for i, start in enumerate(range(0, n, rows)):
        stop = min(start + rows, n)
        path = folder / "c" / str(i) / "0"
        key = f"{array.path}/c/{i}/0"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise chunks.DamagedChunk(key, "chunk file is missing") from None
        if size != full:
            kind = "truncated" if size < full else "too long"
            raise chunks.DamagedChunk(key, f"chunk file is {kind}: {size} bytes, its shape needs {full}")
        if stop - start == rows:
            problem = _read_checked(path, out[start:stop], checksum)
        else:  # the edge chunk is stored full-size: read it whole to check it, keep its head
            edge = np.empty((rows, dim), dtype=dtype)
            problem = _read_checked(path, edge, checksum)
            out[start:stop] = edge[: stop - start]
        if problem:
            raise chunks.DamagedChunk(key, problem)
    return out


def write_files(root: Path, files: list[tuple[str, bytes]]) -> None:
    """Write each ``(key, bytes)`` below ``root`` with plain file calls (folders made once each)."""
    made: set[Path] = set()
    for key, data in files:
        path = root / key
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        with open(path, "wb") as f:
            f.write(data)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file and a rename, so readers see all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` unless it exists (then leave it); True when this call created it.

    Exclusive and whole: the bytes go to a temp file first, then get their name by a hard
    link, which fails when the name exists (atomic on local disks and NFS), so of several
    processes creating one document exactly one succeeds and no one reads half of it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then write
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
    finally:
        tmp.unlink(missing_ok=True)


def remove_tree(path: Path) -> None:
    """Delete a folder and everything below it; a missing folder is fine."""
    shutil.rmtree(path, ignore_errors=True)
