"""Stores readable without affectstore: xarray opens video groups and packs with named dims,
times in seconds and column names; packs take the bytes of their data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec

from affectstore.store import FeatureStore, encode_id
from affectstore.store import chunks
from affectstore.store.pack import PACK_CHUNK_BYTES, rows_per_chunk

VID = "82557/Visite 1/q 1.mp4"
COLUMNS = [f"F{i}_sma3" for i in range(88)]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    store = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    store.create_feature("bah", "egemaps", {"extractor": "egemaps", "config_hash": "h", "dim": 88, "dtype": "float32",
                                            "kind": "frames", "rate": 100.0, "columns": COLUMNS})
    for i in range(12):
        vid = VID if i == 0 else f"clip {i}.wav"
        store.write_video("bah", "egemaps", vid, np.full((5, 88), i, np.float32), np.arange(5) / 100, config_hash="h")
    store.pack("bah", "egemaps")
    return tmp_path / "s.zarr"


def _plain(script: str) -> dict:
    """Run ``script`` in a fresh interpreter that never imports affectstore; it prints one JSON line."""
    guard = "\nimport sys\nassert not any(m.startswith('affectstore') for m in sys.modules), 'affectstore was imported'\n"
    done = subprocess.run([sys.executable, "-c", script + guard], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_xarray_opens_a_video_group_with_named_dims_times_and_columns(store_path: Path) -> None:
    pytest.importorskip("xarray")
    group = store_path / "bah/egemaps/videos" / encode_id(VID)
    got = _plain(f"""
import json, xarray as xr
ds = xr.open_zarr({str(group)!r}, consolidated=False, zarr_format=3)
print(json.dumps({{"dims": dict(ds.sizes), "values": list(ds["values"].dims), "coords": sorted(ds.coords),
                  "units": ds["times"].attrs.get("units"), "columns": [str(c) for c in ds["column"].values],
                  "times": ds["times"].values.tolist(), "sum": float(ds["values"].sum()), "id": ds.attrs.get("id")}}))
""")
    assert got["dims"] == {"time": 5, "column": 88} and got["values"] == ["time", "column"]
    assert got["coords"] == ["column", "times"] and got["units"] == "s"
    assert got["columns"] == COLUMNS and got["times"] == [0.0, 0.01, 0.02, 0.03, 0.04]
    assert got["sum"] == 0.0 and got["id"] == VID


def test_xarray_opens_a_pack_as_rows(store_path: Path) -> None:
    pytest.importorskip("xarray")
    store = FeatureStore.open(store_path)
    name = next(iter(store.packs("bah", "egemaps")))
    group = store_path / "bah/egemaps/packed" / name
    got = _plain(f"""
import json, xarray as xr
ds = xr.open_zarr({str(group)!r}, consolidated=False, zarr_format=3)
print(json.dumps({{"dims": dict(ds.sizes), "keys": [str(k) for k in ds["keys"].values],
                  "offsets": ds["offsets"].values.tolist(), "last": float(ds["values"][-1, 0]),
                  "columns": [str(c) for c in ds["column"].values]}}))
""")
    assert got["dims"] == {"row": 60, "column": 88, "video_edge": 13, "video": 12}
    assert got["keys"] == store.done_keys("bah", "egemaps") and got["offsets"] == list(range(0, 61, 5))
    last = store.completed("bah", "egemaps")[-1]
    assert got["last"] == store.read_video("bah", "egemaps", last).values[0, 0] and got["columns"] == COLUMNS


def test_plain_zarr_reads_values_and_times(store_path: Path) -> None:
    group = zarr.open_group(store_path / "bah/egemaps/videos" / encode_id(VID), mode="r")
    assert group["values"].metadata.dimension_names == ("time", "column")
    assert group["times"].attrs["units"] == "s"
    np.testing.assert_array_equal(group["times"][:], np.arange(5) / 100)


def test_dimension_names_and_attributes_are_zarrs_own_bytes(tmp_path: Path) -> None:
    data = np.arange(6, dtype=np.float32).reshape(3, 2)
    root = zarr.open_group(tmp_path / "z.zarr", mode="w")
    root.create_array("a", shape=data.shape, chunks=data.shape, dtype=data.dtype, serializer=BytesCodec(endian="little"),
                      compressors=[Crc32cCodec()], fill_value=0, dimension_names=("time", "column"),
                      attributes={"coordinates": "times"})
    ours = dict(chunks.array_files("a", data, True, dims=("time", "column"), attributes={"coordinates": "times"}))
    assert ours["a/zarr.json"] == (tmp_path / "z.zarr/a/zarr.json").read_bytes()


def test_packs_take_the_bytes_of_their_data(store_path: Path) -> None:
    name = next(iter(FeatureStore.open(store_path).packs("bah", "egemaps")))
    chunk = store_path / "bah/egemaps/packed" / name / "values/c/0/0"
    assert chunk.stat().st_size == 60 * 88 * 4 + 4  # one chunk of exactly the 60 rows, plus its checksum
    for n_rows, row_bytes in [(1, 352), (12, 352), (100_000, 4096), (4097, 4096), (10**6, 2048)]:
        rows = rows_per_chunk(n_rows, row_bytes)
        n_chunks = -(-n_rows // rows)
        assert rows * row_bytes <= PACK_CHUNK_BYTES or rows == 1
        assert n_chunks * rows - n_rows < n_chunks  # padding under one row per chunk
