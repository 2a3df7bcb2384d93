"""The bytes affectstore writes itself are exactly the bytes zarr writes, checksums included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec

from affectstore.store import chunks


def _zarr_files(tmp_path: Path, data: np.ndarray, chunk_shape: tuple[int, ...], checksum: bool) -> dict[str, bytes]:
    group = zarr.open_group(tmp_path / "z.zarr", mode="w")
    arr = group.create_array(
        "a", shape=data.shape, chunks=chunk_shape, dtype=data.dtype, serializer=BytesCodec(endian="little"),
        compressors=[Crc32cCodec()] if checksum else None, fill_value=0, config={"write_empty_chunks": True},
    )
    if data.size:
        arr[...] = data
    root = tmp_path / "z.zarr"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "a").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("checksum", [True, False])
@pytest.mark.parametrize(
    "data",
    [
        np.arange(12, dtype=np.float16).reshape(4, 3),
        np.linspace(0, 1, 7),
        np.zeros((0, 5), np.float32),
        np.arange(5, dtype=np.int64),
    ],
    ids=["values-f16", "times-f64", "empty", "offsets-i64"],
)
def test_single_chunk_arrays_match_zarr(tmp_path, data, checksum):
    ours = dict(chunks.array_files("a", data, checksum))
    theirs = _zarr_files(tmp_path, data, tuple(max(n, 1) for n in data.shape), checksum)
    assert ours == theirs


@pytest.mark.parametrize("checksum", [True, False])
def test_row_chunked_arrays_match_zarr_edge_chunk_included(tmp_path, checksum):
    data = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    ours = dict(chunks.array_files("a", data, checksum, chunk_rows=4))
    theirs = _zarr_files(tmp_path, data, (4, 3), checksum)
    assert ours == theirs and "a/c/2/0" in ours  # the last chunk is padded to full size, as zarr does
    group = zarr.open_group(tmp_path / "z.zarr", mode="r")
    np.testing.assert_array_equal(chunks.read_array(group["a"], group.store), data)


def test_checked_read_refuses_what_zarr_would_accept(tmp_path):
    group = zarr.open_group(tmp_path / "z.zarr", mode="w")
    chunks.create_array(group, "a", np.ones((3, 2), np.float32), checksum=True)
    chunk = tmp_path / "z.zarr" / "a" / "c" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[5] ^= 0x01
    chunk.write_bytes(bytes(raw))
    with pytest.raises(chunks.DamagedChunk, match=r"a/c/0/0: checksum mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\)"):
        chunks.read_array(group["a"], group.store)
    with pytest.raises(ValueError, match="checksum do not match"):  # zarr's own check agrees
        group["a"][...]
    chunk.unlink()
    np.testing.assert_array_equal(group["a"][...], np.zeros((3, 2)))  # zarr: a missing chunk reads as zeros
    with pytest.raises(chunks.DamagedChunk, match="a/c/0/0: chunk file is missing"):
        chunks.read_array(group["a"], group.store)


def test_strings_carry_a_checksum_too(tmp_path):
    group = zarr.open_group(tmp_path / "z.zarr", mode="w")
    chunks.create_array(group, "t", np.array(["well, I", "é 你好"], dtype=object), checksum=True)
    assert [str(t) for t in chunks.read_array(group["t"], group.store)] == ["well, I", "é 你好"]
    chunk = tmp_path / "z.zarr" / "t" / "c" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[-6] ^= 0x20
    chunk.write_bytes(bytes(raw))
    assert [str(p) for p in chunks.verify_array(group["t"], group.store)][0].startswith("t/c/0: checksum mismatch")


def test_seals():
    doc = chunks.seal({"id": "a", "frames": 3})
    assert chunks.seal_ok(doc) is True
    assert chunks.seal_ok({**doc, "frames": 4}) is False
    assert chunks.seal_ok({"id": "a"}) is None  # written before seals
