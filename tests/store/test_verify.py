"""Checksums at write time; verify names every damaged byte; readers refuse damage; --repair redoes exactly those."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import DamagedStoreError, FeatureStore, encode_id
from affectstore.store import chunks
from affectstore.store import store as store_module
from affectstore.store.verify import verify_store

runner = CliRunner()
VIDEOS = ["a/1 x.mp4", "b/2.mp4", "c"]


def _prov(dim=4, dtype="float16", kind="frames", config_hash="h1"):
    return {"extractor": "synthetic", "config_hash": config_hash, "dim": dim, "dtype": dtype, "kind": kind, "rate": 50.0}


@pytest.fixture
def built(tmp_path: Path) -> Path:
    path = tmp_path / "s.zarr"
    store = FeatureStore.open(path, mode="a")
    store.create_feature("ds", "feat", _prov())
    for i, vid in enumerate(VIDEOS):
        store.write_video("ds", "feat", vid, np.full((i + 3, 4), i + 0.5), np.arange(i + 3) / 50, config_hash="h1")
    store.pack("ds", "feat")
    store.create_feature("ds", "asr", _prov(0, "str", "text"))
    store.write_text("ds", "asr", "a/1 x.mp4", [0.0, 1.5], [1.5, 2.0], ["hello there", "é"], config_hash="h1")
    store.record_failure("ds", "feat", "bad.mp4", "decode", "empty file", config_hash="h1")
    return path


def _pack(path: Path) -> str:
    return next(p.name for p in (path / "ds/feat/packed").iterdir() if p.is_dir())


def _flip(file: Path, offset: int | None = None) -> None:
    data = bytearray(file.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    file.write_bytes(bytes(data))


V = encode_id("b/2.mp4")
# (file below the store, what verify must name); {pack} is the pack's folder name.
FILES = [
    (f"ds/feat/videos/{V}/values/c/0/0", "ds/feat video 'b/2.mp4': ds/feat/videos/b%2F2.mp4/values/c/0/0: checksum mismatch"),
    (f"ds/feat/videos/{V}/times/c/0", "ds/feat video 'b/2.mp4': ds/feat/videos/b%2F2.mp4/times/c/0: checksum mismatch"),
    (f"ds/feat/videos/{V}/values/zarr.json", "ds/feat video 'b/2.mp4': ds/feat/videos/b%2F2.mp4/values/zarr.json: checksum mismatch"),
    (f"ds/feat/videos/{V}/times/zarr.json", "ds/feat video 'b/2.mp4': ds/feat/videos/b%2F2.mp4/times/zarr.json: checksum mismatch"),
    (f"ds/feat/videos/{V}/zarr.json", "ds/feat video 'b/2.mp4': ds/feat/videos/b%2F2.mp4/zarr.json: checksum mismatch"),
    (f"ds/feat/done/{V}/zarr.json", "ds/feat video 'b/2.mp4': ds/feat/done/b%2F2.mp4/zarr.json: "),
    (f"ds/asr/videos/{encode_id('a/1 x.mp4')}/text/c/0", "ds/asr video 'a/1 x.mp4': ds/asr/videos/a%2F1%20x.mp4/text/c/0: checksum mismatch"),
    (f"ds/asr/videos/{encode_id('a/1 x.mp4')}/start/c/0", "ds/asr video 'a/1 x.mp4': ds/asr/videos/a%2F1%20x.mp4/start/c/0: checksum mismatch"),
    ("ds/feat/packed/{pack}/values/c/0/0", "ds/feat pack {pack}: ds/feat/packed/{pack}/values/c/0/0: checksum mismatch"),
    ("ds/feat/packed/{pack}/times/c/0", "ds/feat pack {pack}: ds/feat/packed/{pack}/times/c/0: checksum mismatch"),
    ("ds/feat/packed/{pack}/offsets/c/0", "ds/feat pack {pack}: ds/feat/packed/{pack}/offsets/c/0: checksum mismatch"),
    ("ds/feat/packed/{pack}/keys/c/0", "ds/feat pack {pack}: ds/feat/packed/{pack}/keys/c/0: checksum mismatch"),
    ("ds/feat/packed/{pack}/values/zarr.json", "ds/feat pack {pack}: ds/feat/packed/{pack}/values/zarr.json: checksum mismatch"),
    ("ds/feat/packed/{pack}/zarr.json", "ds/feat pack {pack}: ds/feat/packed/{pack}/zarr.json: "),
    ("ds/feat/zarr.json", "ds/feat: ds/feat/zarr.json: "),
    ("ds/feat/done/zarr.json", "ds/feat: ds/feat/done/zarr.json: "),
    ("ds/zarr.json", "ds: ds/zarr.json: "),
    (f"ds/feat/failed/{encode_id('bad.mp4')}/zarr.json", "ds/feat video 'bad.mp4': ds/feat/failed/bad.mp4/zarr.json: unreadable failure record"),
]


def test_a_clean_store_verifies(built: Path) -> None:
    report = verify_store(FeatureStore.open(built))
    assert report.ok and report.checked == 4 and report.damages == [] and report.warnings == []


@pytest.mark.parametrize("rel,message", FILES, ids=[f[0].split("/", 2)[-1] for f in FILES])
def test_one_flipped_byte_in_each_kind_of_file_is_named(built: Path, rel: str, message: str) -> None:
    pack = _pack(built)
    _flip(built / rel.format(pack=pack))
    report = verify_store(FeatureStore.open(built))
    assert not report.ok
    assert any(e.startswith(message.format(pack=pack)) for e in report.errors), report.errors
    result = runner.invoke(app, ["store", "verify", str(built), "--no-progress"])
    assert result.exit_code == 1 and "ERROR: checked" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("rel,message", [f for f in FILES if "/feat/videos/" in f[0] and "/c/" in f[0] or "/feat/packed/{pack}/values" in f[0]])
def test_readers_refuse_the_damaged_chunk(built: Path, rel: str, message: str) -> None:
    pack = _pack(built)
    _flip(built / rel.format(pack=pack))
    store = FeatureStore.open(built)
    with pytest.raises(DamagedStoreError, match=r"affect store verify .*`--repair` drops the damaged videos"):
        store.load_feature("ds", "feat", pack="packed" in rel)
    if "videos" in rel:
        with pytest.raises(DamagedStoreError, match=r"ds/feat video 'b/2.mp4': ds/feat/videos/b%2F2.mp4/"):
            store.read_video("ds", "feat", "b/2.mp4")
        np.testing.assert_array_equal(store.read_video("ds", "feat", "c").values, np.full((5, 4), 2.5))


@pytest.mark.parametrize("how", ["truncate", "delete", "extend"])
def test_truncated_missing_or_grown_chunks(built: Path, how: str) -> None:
    chunk = built / f"ds/feat/videos/{V}/values/c/0/0"
    if how == "truncate":
        chunk.write_bytes(chunk.read_bytes()[:-10])
        expected = r"file is truncated: 26 bytes, 36 were written"
    elif how == "delete":
        chunk.unlink()
        expected = r"file is missing"
    else:
        chunk.write_bytes(chunk.read_bytes() + b"\0\0")
        expected = r"file is longer than written: 38 bytes, 36 were written"
    store = FeatureStore.open(built)
    errors = verify_store(store).errors
    assert errors == [f"ds/feat video 'b/2.mp4': ds/feat/videos/b%2F2.mp4/values/c/0/0: {expected}"]
    with pytest.raises(DamagedStoreError, match=r"ds/feat video 'b/2.mp4': .*values/c/0/0: chunk file (is missing|is truncated|has|is too long)"):
        store.load_feature("ds", "feat", pack=False)
    with pytest.raises(DamagedStoreError, match=r"values/c/0/0: chunk file (is missing|is truncated|is too long)"):
        store.read_video("ds", "feat", "b/2.mp4")


def test_unreadable_metadata_is_a_message_not_a_traceback(built: Path) -> None:
    (built / f"ds/feat/done/{V}/zarr.json").write_text('{"zarr_format": 3, "node_ty')
    (built / "ds/asr/zarr.json").write_text("{not json")
    report = verify_store(FeatureStore.open(built))
    assert "ds/feat video 'b/2.mp4': ds/feat/done/b%2F2.mp4/zarr.json: unreadable completion mark (not valid JSON)" in report.errors
    assert any(e.startswith("ds/asr: ds/asr/zarr.json: unreadable provenance") for e in report.errors)
    for args in (["store", "verify", str(built), "--no-progress"], ["store", "info", str(built)], ["store", "ls", str(built), "ds", "asr"]):
        result = runner.invoke(app, args)
        assert result.exit_code in (1, 2) and "Traceback" not in result.output and not isinstance(result.exception, ValueError)
    result = runner.invoke(app, ["store", "ls", str(built), "ds", "asr"])
    assert result.exit_code == 2 and "ds/asr/zarr.json: unreadable metadata (JSONDecodeError" in result.output
    (built / "zarr.json").write_text("{")
    result = runner.invoke(app, ["store", "info", str(built)])
    assert result.exit_code == 2 and "the store's root metadata zarr.json is unreadable" in result.output


def test_repair_drops_exactly_the_damaged_videos(built: Path) -> None:
    _flip(built / f"ds/feat/videos/{V}/values/c/0/0")
    _flip(built / f"ds/feat/packed/{_pack(built)}/offsets/c/0")
    _flip(built / f"ds/feat/failed/{encode_id('bad.mp4')}/zarr.json", offset=3)
    result = runner.invoke(app, ["store", "verify", str(built), "--repair", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "REPAIRED: checked 4 complete videos, 3 errors" in result.output
    assert "removed the marks and arrays of 1 damaged videos ('b/2.mp4'); the next `affect extract` redoes exactly those" in result.output
    assert "removed damaged pack" in result.output and "removed the unreadable failure record of 'bad.mp4'" in result.output
    store = FeatureStore.open(built, mode="a")
    assert store.completed("ds", "feat") == ["a/1 x.mp4", "c"]
    assert not store.is_done("ds", "feat", "b/2.mp4", "h1")  # what a resumed extract checks
    assert verify_store(store).ok
    store.write_video("ds", "feat", "b/2.mp4", np.full((4, 4), 1.5), np.arange(4) / 50, config_hash="h1")
    assert store.load_feature("ds", "feat")["b/2.mp4"].values[0, 0] == 1.5
    assert verify_store(store).ok


def test_a_damaged_provenance_cannot_be_repaired(built: Path) -> None:
    doc = json.loads((built / "ds/feat/zarr.json").read_text())
    doc["attributes"]["affectstore"]["provenance"]["dim"] = 5
    (built / "ds/feat/zarr.json").write_text(json.dumps(doc))
    result = runner.invoke(app, ["store", "verify", str(built), "--repair", "--no-progress"])
    assert result.exit_code == 1
    assert "not repaired: ds/feat: ds/feat/zarr.json: provenance does not match its checksum" in result.output
    assert "delete the feature set with `affect store rm STORE ds feat` and extract it again" in result.output


def test_repair_of_a_zip_store_is_refused(built: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["store", "pack", str(built), "--zip", str(tmp_path / "s.zip")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["store", "verify", str(tmp_path / "s.zip"), "--no-progress"])
    assert result.exit_code == 0 and result.output.startswith("OK: checked 4 complete videos"), result.output
    result = runner.invoke(app, ["store", "verify", str(tmp_path / "s.zip"), "--repair"])
    assert result.exit_code == 2 and "is a .zip store: affectstore reads it but never writes it in place" in result.output


def test_stores_written_before_checksums_still_read_and_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "LAYOUT", chunks.LAYOUT_UNCHECKED)
    store = FeatureStore.open(tmp_path / "old.zarr", mode="a")
    store.create_feature("ds", "feat", _prov())
    store.write_video("ds", "feat", "v", np.ones((3, 4)), [0, 1, 2], config_hash="h1")
    monkeypatch.undo()
    assert (tmp_path / "old.zarr/ds/feat/videos/v/values/c/0/0").stat().st_size == 24  # no checksum bytes
    store.write_video("ds", "feat", "w", np.ones((2, 4)), [0, 1], config_hash="h1")  # the set keeps its layout
    assert (tmp_path / "old.zarr/ds/feat/videos/w/values/c/0/0").stat().st_size == 16
    assert store.load_feature("ds", "feat").values.shape == (5, 4)
    report = verify_store(store)
    assert report.ok and report.warnings == ["ds/feat: written before checksums: sizes and structure are checked, contents cannot be"]
    shutil.copy(tmp_path / "old.zarr/ds/feat/videos/w/values/c/0/0", tmp_path / "old.zarr/ds/feat/videos/v/values/c/0/0")
    with pytest.raises(DamagedStoreError, match="values/c/0/0: chunk file has 16 bytes; 3 frames of 4 x float16 need 24"):
        store.load_feature("ds", "feat", pack=False)


def test_a_chunk_changed_after_a_checked_read_is_refused_on_the_next(tmp_path, monkeypatch):
    """Repeated reads skip the CRC of files this process verified, only while their status is unchanged."""
    import time

    import numpy as np
    import pytest

    from affectstore.store import DamagedStoreError, FeatureStore, encode_id, rawio

    monkeypatch.setattr(rawio, "_SETTLED_NS", -1)  # remember files just written (normally: older than 2 s)

    store = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    store.create_feature("ds", "f", {"extractor": "x", "config_hash": "h", "dim": 2, "dtype": "float32", "kind": "frames", "rate": 1.0})
    store.write_video("ds", "f", "a/b c", np.ones((4, 2)), np.arange(4.0), config_hash="h")
    store.load_feature("ds", "f", pack=False)
    store.load_feature("ds", "f", pack=False)  # the second read trusts the verified, unchanged file
    chunk = tmp_path / "s.zarr/ds/f/videos" / encode_id("a/b c") / "values/c/0/0"
    assert str(chunk) in rawio._VERIFIED
    time.sleep(0.05)  # past the file system's clock tick, so the rewrite gets a new ctime
    data = bytearray(chunk.read_bytes())
    data[1] ^= 0x20
    chunk.write_bytes(bytes(data))  # same size, new ctime: checked again
    with pytest.raises(DamagedStoreError, match=r"ds/f video 'a/b c'.*values/c/0/0: checksum mismatch"):
        store.load_feature("ds", "f", pack=False)
