"""The bytes of affectstore's Zarr arrays: metadata, chunks with crc32c checksums, checked reads.

Every array chunk is written as Zarr v3 writes an uncompressed array with the ``crc32c``
codec: the little-endian bytes of the chunk followed by their CRC-32C (4 bytes,
little-endian), so any Zarr client checks it too. Completion marks and packs also record
the size and CRC-32C of every file they cover, and small JSON documents carry a seal (the
CRC-32C of their canonical JSON), so `affect store verify` can name each damaged file.

This is the one module that imports zarr's internals (``zarr.core``): the fast local write
path builds the same documents and chunk bytes that zarr itself writes, which
tests/store compare byte for byte.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import google_crc32c
import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec
from zarr.core.buffer import cpu, default_buffer_prototype
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.core.dtype import get_data_type_from_native_dtype
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.core.sync import sync

__all__ = ["PROTOTYPE", "DamagedChunk", "buffer", "sync"]  # sync: zarr's event-loop bridge, re-exported

PROTOTYPE = default_buffer_prototype()
SEAL = "crc32c"
# Single uncompressed chunk per video array: float features barely compress, and raw
# chunks can be read straight into a preallocated buffer (see rawio). Each chunk ends in
# its CRC-32C. Feature sets made before checksums keep the older layout (no "checksum").
LAYOUT = {"video_chunks": "single", "codec": "raw", "checksum": "crc32c"}
LAYOUT_UNCHECKED = {"video_chunks": "single", "codec": "raw"}
_CRC = struct.Struct("<I")


class DamagedChunk(Exception):
    """A chunk or document whose bytes do not match what was written (raised to the store, which names the video)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


def buffer(data: bytes) -> Any:
    """``data`` as the buffer type zarr's store API takes."""
    return cpu.Buffer.from_bytes(data)


def crc32c(data: Any) -> int:
    """CRC-32C (Castagnoli) of a bytes-like object or a C-contiguous numpy array."""
    if isinstance(data, memoryview):
        data = bytes(data)
    return google_crc32c.value(data)


def file_sum(data: bytes) -> list[int]:
    """``[size, crc32c]`` of a file's bytes: what marks and packs record per file."""
    return [len(data), crc32c(data)]


# ------------------------------------------------------------------ documents
def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` plus its seal: the CRC-32C of its canonical JSON without the seal."""
    out = {k: v for k, v in doc.items() if k != SEAL}
    out[SEAL] = crc32c(canonical(out))
    return out


def seal_ok(doc: dict[str, Any]) -> bool | None:
    """True when the seal matches, False when it does not, None for a document made before seals."""
    if SEAL not in doc:
        return None
    return doc[SEAL] == crc32c(canonical({k: v for k, v in doc.items() if k != SEAL}))


def group_doc(attributes: dict) -> bytes:
    """The zarr.json of a group with ``attributes``."""
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attributes}).encode("utf-8")


# --------------------------------------------------------------------- arrays
def codecs(checksum: bool) -> tuple:
    return (BytesCodec(endian="little"), Crc32cCodec()) if checksum else (BytesCodec(endian="little"),)


@functools.lru_cache(maxsize=512)
def array_metadata(
    shape: tuple[int, ...], dtype: str, chunk_shape: tuple[int, ...], checksum: bool,
    dims: tuple[str, ...] | None = None, attributes: str = "{}",
) -> bytes:
    """zarr.json of an uncompressed array, made by Zarr itself (cached: the same shapes recur).

    ``dims``: the Zarr v3 ``dimension_names`` (xarray's dims); ``attributes``: a JSON object.
    """
    meta = ArrayV3Metadata(
        shape=shape,
        data_type=get_data_type_from_native_dtype(np.dtype(dtype)),
        chunk_grid=RegularChunkGrid(chunk_shape=chunk_shape),
        chunk_key_encoding=DefaultChunkKeyEncoding(separator="/"),
        fill_value=0,
        codecs=codecs(checksum),
        attributes=json.loads(attributes),
        dimension_names=dims,
    )
    return meta.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()


def string_array_files(path: str, values: tuple[str, ...], checksum: bool, dims: tuple[str, ...] | None) -> tuple[tuple[str, bytes], ...]:
    """Keys and bytes of a 1-D string array, written by zarr itself into memory (its string codec is zarr's to own)."""
    from zarr.storage import MemoryStore

    written: dict = {}
    group = zarr.open_group(MemoryStore(store_dict=written), mode="w")
    arr = group.create_array(
        "a", shape=(len(values),), chunks=(max(len(values), 1),), dtype=str, compressors=[Crc32cCodec()] if checksum else None,
        fill_value=None, dimension_names=dims, config={"write_empty_chunks": True},
    )
    if values:
        arr[...] = np.array(values, dtype=object)
    out = []
    for key, buf in sorted(written.items()):
        if key.startswith("a/"):
            out.append((f"{path}/{key[2:]}", buf.to_bytes()))
    return tuple(out)


def encode_chunk(data: np.ndarray, checksum: bool) -> bytes:
    """One chunk's file: the array's little-endian bytes in C order, then their CRC-32C."""
    raw = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).tobytes()
    return raw + _CRC.pack(crc32c(raw)) if checksum else raw


def array_files(
    path: str, data: np.ndarray, checksum: bool, chunk_rows: int | None = None,
    dims: tuple[str, ...] | None = None, attributes: dict | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Keys and bytes of an uncompressed array holding ``data``, as Zarr writes them.

    One chunk holds everything, or (``chunk_rows``) the array is chunked by rows only;
    the last chunk is stored full-size, padded with the fill value 0, as Zarr does.
    ``dims`` and ``attributes`` go into its metadata (see `array_metadata`).
    """
    if chunk_rows is None:
        chunk_shape = tuple(max(n, 1) for n in data.shape)
    else:
        chunk_shape = (max(1, chunk_rows), *(max(n, 1) for n in data.shape[1:]))
    attrs = json.dumps(attributes or {}, sort_keys=True)
    yield f"{path}/zarr.json", array_metadata(data.shape, data.dtype.str, chunk_shape, checksum, dims, attrs)
    if not data.size:
        return
    rows = chunk_shape[0]
    tail = "/".join(["0"] * (data.ndim - 1))
    for i, start in enumerate(range(0, data.shape[0], rows)):
        block = data[start : start + rows]
        if len(block) < rows:
            block = np.concatenate([block, np.zeros((rows - len(block), *data.shape[1:]), data.dtype)])
        key = f"{path}/c/{i}" + (f"/{tail}" if tail else "")
        yield key, encode_chunk(block, checksum)


def create_array(group: zarr.Group, name: str, data: np.ndarray, checksum: bool) -> zarr.Array:
    """A single-chunk array written through zarr itself (used for string arrays and other backends' odd cases)."""
    chunks = tuple(max(n, 1) for n in data.shape)
    arr = group.create_array(
        name, shape=data.shape, chunks=chunks, dtype=data.dtype if data.dtype != object else str,
        serializer="auto" if data.dtype == object else BytesCodec(endian="little"),
        compressors=[Crc32cCodec()] if checksum else None, fill_value=None if data.dtype == object else 0,
        config={"write_empty_chunks": True},
    )
    if data.size:
        arr[...] = data
    return arr


# ------------------------------------------------------------------- checking
def check_chunk(key: str, raw: bytes | None, nbytes: int | None, checksum: bool) -> bytes:
    """The data bytes of chunk ``key`` (its checksum removed); raises `DamagedChunk` saying what is wrong.

    ``nbytes``: the size its shape implies (None for variable-size chunks such as strings).
    """
    if raw is None:
        raise DamagedChunk(key, "chunk file is missing")
    extra = _CRC.size if checksum else 0
    if nbytes is not None and len(raw) != nbytes + extra:
        kind = "truncated" if len(raw) < nbytes + extra else "too long"
        raise DamagedChunk(key, f"chunk file is {kind}: {len(raw)} bytes, its shape needs {nbytes + extra}")
    if checksum:
        if len(raw) < extra:
            raise DamagedChunk(key, f"chunk file is truncated: {len(raw)} bytes, shorter than its checksum")
        (stored,) = _CRC.unpack_from(raw, len(raw) - extra)
        computed = crc32c(raw[:-extra])
        if stored != computed:
            raise DamagedChunk(key, f"checksum mismatch (stored {stored:08x}, computed {computed:08x})")
        return raw[:-extra]
    return raw


def layout_of(array: zarr.Array) -> tuple[bool, bool]:
    """(plain, checksum): plain means fixed-size little-endian values that numpy can decode directly."""
    names = [type(c) for c in array.metadata.codecs]
    checksum = bool(names) and names[-1] is Crc32cCodec
    first = array.metadata.codecs[0] if names else None
    plain = (
        isinstance(first, BytesCodec)
        and (first.endian is None or first.endian.value == "little")
        and names in ([BytesCodec], [BytesCodec, Crc32cCodec])
        and array.dtype != np.dtype(object)
        and getattr(array.metadata.chunk_key_encoding, "separator", "/") == "/"
        and array.metadata.chunk_key_encoding.name == "default"
    )
    return plain, checksum


def chunk_keys(array: zarr.Array) -> Iterator[tuple[tuple[slice, ...], str]]:
    """(selection in the array, store key) of every chunk."""
    shape, chunks = array.shape, array.chunks
    grid = [range(0, max(n, 0), c) for n, c in zip(shape, chunks)]
    for starts in np.ndindex(*(len(g) for g in grid)):
        coords = tuple(int(i) for i in starts)
        sel = tuple(slice(c * size, min((c + 1) * size, n)) for c, size, n in zip(coords, chunks, shape))
        yield sel, f"{array.path}/{array.metadata.encode_chunk_key(coords)}"


def _getter(source) -> Callable[[str], bytes | None]:
    """``source`` as a function key -> bytes (None when absent): a zarr store, or such a function already."""
    if callable(source):
        return source

    def get(key: str) -> bytes | None:
        buf = sync(source.get(key, prototype=PROTOTYPE))
        return None if buf is None else buf.to_bytes()

    return get


def read_array(array: zarr.Array, source, fetch_many: Callable[[list[str]], list] | None = None) -> np.ndarray:
    """All of ``array``, refusing missing chunks (Zarr would return zeros), wrong sizes and bad checksums.

    ``source``: the zarr store under the array, or a function key -> bytes reading it faster.
    ``fetch_many``: a function keys -> bytes of each, used to fetch a few chunks at a time
    concurrently from a remote store.
    """
    plain, checksum = layout_of(array)
    if array.size == 0:
        return np.zeros(array.shape, dtype=array.dtype if array.dtype != np.dtype(object) else object)
    get = _getter(source)
    if not plain:  # strings: check presence and checksum here, let zarr decode
        for _, key in chunk_keys(array):
            check_chunk(key, get(key), None, checksum)
        try:
            return array[...]
        except (ValueError, UnicodeDecodeError) as exc:
            raise DamagedChunk(array.path, f"cannot be decoded ({exc})") from exc
    dtype = np.dtype(array.dtype).newbyteorder("<")
    out = np.empty(array.shape, dtype=array.dtype)
    nbytes = int(np.prod(array.chunks)) * dtype.itemsize
    grid = list(chunk_keys(array))
    # A few chunks in flight at once (bounded: each may be 16 MiB) when fetching remotely.
    step = max(1, min(8, (256 << 20) // max(nbytes, 1))) if fetch_many is not None else 1
    for i in range(0, len(grid), step):
        part = grid[i : i + step]
        raws = fetch_many([k for _, k in part]) if fetch_many is not None and len(part) > 1 else [get(part[0][1])]
        for (sel, key), raw in zip(part, raws, strict=True):
            data = check_chunk(key, raw, nbytes, checksum)
            block = np.frombuffer(data, dtype=dtype).reshape(array.chunks)
            out[sel] = block[tuple(slice(0, s.stop - s.start) for s in sel)]
    return out


def verify_array(array: zarr.Array, source) -> list[DamagedChunk]:
    """Every problem of every chunk of ``array`` (nothing decoded beyond the checksum); ``source`` as in `read_array`."""
    plain, checksum = layout_of(array)
    if array.size == 0:
        return []
    nbytes = int(np.prod(array.chunks)) * np.dtype(array.dtype).itemsize if plain else None
    problems = []
    get = _getter(source)
    for _, key in chunk_keys(array):
        try:
            check_chunk(key, get(key), nbytes, checksum)
        except DamagedChunk as damage:
            problems.append(damage)
    return problems
