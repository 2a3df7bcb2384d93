"""Sharing stores: pack -> unpack round trip, hostile archives, merge rules, imports of others' features."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import DamagedStoreError, FeatureStore, StoreError, encode_id
from affectstore.store.archive import archive_store
from affectstore.store.importers import ImportSourceError, import_features
from affectstore.store.listing import LISTING
from affectstore.store.share import merge_stores, parse_renames, unpack_archive

runner = CliRunner()
IDS = ["82557/Visite 1/q 1.mp4", "82557/Visite 1/q 2.mp4", "élan vital.mp4"]


def _prov(h: str = "h1", **config) -> dict:
    return {"extractor": "hubert", "config_hash": h, "dim": 3, "dtype": "float32", "kind": "frames", "rate": 50.0,
            "config": {"layer": 6, **config}}


def _make(path: Path, ids=IDS, h: str = "h1", scale: float = 1.0, feature: str = "hubert") -> Path:
    store = FeatureStore.open(path, mode="a")
    store.create_feature("bah", feature, _prov(h, scale=scale))
    for i, vid in enumerate(ids):
        n = i + 2
        store.write_video("bah", feature, vid, scale * np.arange(n * 3).reshape(n, 3) + i, np.arange(n) / 50, config_hash=h)
    store.record_failure("bah", feature, "bad/zero.mp4", "decode", "zero-byte file", config_hash=h)
    return path


def _tables(path: Path | str, feature: str = "hubert") -> dict[str, np.ndarray]:
    store = FeatureStore.open(path)
    table = store.load_feature("bah", feature, pack=False)
    return {vid: (table[vid].values.copy(), table[vid].times.copy()) for vid in table}


def _equal(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for vid in a:
        np.testing.assert_array_equal(a[vid][0], b[vid][0])
        np.testing.assert_array_equal(a[vid][1], b[vid][1])


def test_pack_unpack_round_trip_is_equal(tmp_path: Path) -> None:
    folder = _make(tmp_path / "a.zarr")
    out = tmp_path / "a.zip"
    result = runner.invoke(app, ["store", "pack", str(folder), str(out)])
    assert result.exit_code == 0, result.output
    assert LISTING in zipfile.ZipFile(out).namelist()
    result = runner.invoke(app, ["store", "unpack", str(out), str(tmp_path / "b.zarr")])
    assert result.exit_code == 0, result.output
    assert "bah/hubert: 3 videos" in result.output
    _equal(_tables(folder), _tables(tmp_path / "b.zarr"))
    _equal(_tables(folder), _tables(out))
    back = FeatureStore.open(tmp_path / "b.zarr")
    assert back.provenance("bah", "hubert") == FeatureStore.open(folder).provenance("bah", "hubert")
    assert [f.video_id for f in back.failures("bah", "hubert")] == ["bad/zero.mp4"]
    assert runner.invoke(app, ["store", "verify", str(tmp_path / "b.zarr"), "--no-progress"]).exit_code == 0


def test_an_archive_without_packs_holds_the_arrays_once(tmp_path: Path) -> None:
    folder = _make(tmp_path / "a.zarr")
    FeatureStore.open(folder, mode="a").pack("bah", "hubert")
    result = runner.invoke(app, ["store", "pack", str(folder), str(tmp_path / "a.zip"), "--without-packs"])
    assert result.exit_code == 0, result.output
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert not any("/packed/n" in n for n in names)
    _equal(_tables(tmp_path / "a.zip"), _tables(folder))
    assert FeatureStore.open(tmp_path / "a.zip").packs("bah", "hubert") == {}


def test_packing_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    folder = _make(tmp_path / "a.zarr")
    store = FeatureStore.open(folder, mode="a")
    store.pack("bah", "hubert")
    archive_store(store, tmp_path / "1.zip")
    archive_store(store, tmp_path / "2.zip")
    one, two = zipfile.ZipFile(tmp_path / "1.zip"), zipfile.ZipFile(tmp_path / "2.zip")
    assert [i.filename for i in one.infolist()] == [i.filename for i in two.infolist()]
    for info in one.infolist():
        if info.filename != LISTING:  # holds its creation time
            assert one.read(info) == two.read(info), info.filename


def test_unpack_refuses_a_changed_entry(tmp_path: Path) -> None:
    folder = _make(tmp_path / "a.zarr")
    out = tmp_path / "a.zip"
    archive_store(FeatureStore.open(folder, mode="a"), out)
    # Rewrite one chunk with a flipped byte, keeping the manifest: unpack names the entry.
    bad = tmp_path / "bad.zip"
    key = f"bah/hubert/videos/{encode_id(IDS[1])}/values/c/0/0"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == key:
                data = bytes([data[0] ^ 1]) + data[1:]
            dst.writestr(info.filename, data)
    with pytest.raises(DamagedStoreError, match=f"{key}: size or checksum differs from the manifest"):
        unpack_archive(bad, tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists() and not list(tmp_path.glob("c.zarr.*"))


@pytest.mark.parametrize("entry", ["../evil.txt", "/etc/evil", "bah/../../evil", "C:/evil"])
def test_unpack_refuses_hostile_archives(tmp_path: Path, entry: str) -> None:
    folder = _make(tmp_path / "a.zarr")
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(hostile, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
        zf.writestr(zipfile.ZipInfo(entry), b"owned")
    result = runner.invoke(app, ["store", "unpack", str(hostile), str(tmp_path / "out.zarr")])
    assert result.exit_code == 2
    assert "absolute or leave the store" in result.output and repr(entry) in result.output
    assert not (tmp_path / "out.zarr").exists() and not (tmp_path / "evil.txt").exists()


def test_unpack_refuses_a_full_folder(tmp_path: Path) -> None:
    archive_store(FeatureStore.open(_make(tmp_path / "a.zarr"), mode="a"), tmp_path / "a.zip")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="exists and is not an empty folder"):
        unpack_archive(tmp_path / "a.zip", tmp_path / "full")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_merge_is_the_union_of_same_config_sets(tmp_path: Path) -> None:
    a = _make(tmp_path / "a.zarr", IDS[:2])
    b = _make(tmp_path / "b.zarr", IDS[1:])
    archive_store(FeatureStore.open(b, mode="a"), tmp_path / "b.zip")
    result = runner.invoke(app, ["store", "merge", str(a), str(tmp_path / "b.zip"), "--out", str(tmp_path / "c.zarr")])
    assert result.exit_code == 0, result.output
    assert "3 videos copied" not in result.output and "1 already there" in result.output
    merged = _tables(tmp_path / "c.zarr")
    assert sorted(merged) == sorted(IDS)
    _equal({k: v for k, v in merged.items() if k in IDS[:2]}, _tables(a))
    # b's third video was b's index 1: its values are b's, not recomputed
    np.testing.assert_array_equal(merged[IDS[2]][0], _tables(b)[IDS[2]][0])
    c = FeatureStore.open(tmp_path / "c.zarr")
    assert c.packs("bah", "hubert") and all(p["current"] for p in c.packs("bah", "hubert").values())
    assert runner.invoke(app, ["store", "verify", str(tmp_path / "c.zarr"), "--no-progress"]).exit_code == 0


def test_merge_refuses_another_config_and_shows_both(tmp_path: Path) -> None:
    a = _make(tmp_path / "a.zarr", IDS[:1], h="h1", scale=1.0)
    b = _make(tmp_path / "b.zarr", IDS[1:], h="h2", scale=2.0)
    result = runner.invoke(app, ["store", "merge", str(a), str(b), "--out", str(tmp_path / "c.zarr")])
    assert result.exit_code == 2
    assert "config hash h1 vs h2" in result.output
    assert '"scale": 1.0' in result.output and '"scale": 2.0' in result.output
    assert "--rename bah/hubert=NEW_NAME" in result.output


def test_merge_keeps_another_config_apart_under_a_given_name(tmp_path: Path) -> None:
    a = _make(tmp_path / "a.zarr", IDS[:1], h="h1", scale=1.0)
    b = _make(tmp_path / "b.zarr", IDS[1:], h="h2", scale=2.0)
    summary = merge_stores([a, b], tmp_path / "c.zarr", parse_renames(["bah/hubert=hubert_b"]))
    assert [(m.feature, m.target) for m in summary.merged] == [("hubert", "hubert"), ("hubert", "hubert_b")]
    c = FeatureStore.open(tmp_path / "c.zarr")
    assert c.features("bah") == ["hubert", "hubert_b"]
    assert c.provenance("bah", "hubert_b")["config_hash"] == "h2"
    _equal(_tables(tmp_path / "c.zarr", "hubert_b"), _tables(b))
    _equal(_tables(tmp_path / "c.zarr", "hubert"), _tables(a))


def test_merge_refuses_a_damaged_source_video(tmp_path: Path) -> None:
    a = _make(tmp_path / "a.zarr")
    chunk = a / "bah/hubert/videos" / encode_id(IDS[0]) / "values/c/0/0"
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0x10
    chunk.write_bytes(bytes(data))
    with pytest.raises(DamagedStoreError, match=r"82557/Visite 1/q 1.mp4.*values/c/0/0: size or checksum differs"):
        merge_stores([a], tmp_path / "c.zarr")


def test_parse_renames_names_the_bad_item() -> None:
    with pytest.raises(ValueError, match=r"DATASET/FEATURE=NEW_NAME.*Got 'hubert=x'"):
        parse_renames(["hubert=x"])


# ----------------------------------------------------------------------- imports
def test_import_npy_folder_with_slashes_spaces_and_provenance(tmp_path: Path) -> None:
    src = tmp_path / "feats"
    arrays = {"82557/Visite 1/q 1": np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32),
              "élan": np.ones((2, 4), np.float32)}
    for vid, arr in arrays.items():
        (src / vid).parent.mkdir(parents=True, exist_ok=True)
        np.save(src / f"{vid}.npy", arr)
    result = runner.invoke(app, ["store", "import", str(tmp_path / "s.zarr"), "bah", "theirs", str(src), "--rate", "25",
                                 "-p", "model=wav2vec2-large", "-p", "by=team b", "--config", '{"layer": 12}'])
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(tmp_path / "s.zarr")
    prov = store.provenance("bah", "theirs")
    assert prov["import"]["provenance"] == {"model": "wav2vec2-large", "by": "team b"} and prov["config"] == {"layer": 12}
    assert prov["kind"] == "frames" and prov["rate"] == 25.0 and prov["dim"] == 4
    for vid, arr in arrays.items():
        got = store.read_video("bah", "theirs", vid)
        np.testing.assert_array_equal(got.values, arr)
        np.testing.assert_allclose(got.times, np.arange(len(arr)) / 25)
    again = runner.invoke(app, ["store", "import", str(tmp_path / "s.zarr"), "bah", "theirs", str(src), "--rate", "25",
                                "--config", '{"layer": 12}'])
    assert "imported 0 videos (2 already there)" in again.output
    other = runner.invoke(app, ["store", "import", str(tmp_path / "s.zarr"), "bah", "theirs", str(src), "--rate", "25",
                                "--config", '{"layer": 6}'])
    assert other.exit_code == 2 and "refusing to mix" in other.output


def test_import_pt_file_and_folder(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    data = {"a/1": torch.arange(6, dtype=torch.float32).reshape(3, 2),
            "b 2": {"values": torch.ones(2, 2), "times": torch.tensor([0.5, 1.5])}}
    torch.save(data, tmp_path / "f.pt")
    summary = import_features(tmp_path / "s.zarr", "ds", "pt", tmp_path / "f.pt", rate=10.0)
    store = FeatureStore.open(tmp_path / "s.zarr")
    assert summary.imported == 2 and store.completed("ds", "pt") == ["a/1", "b 2"]
    np.testing.assert_array_equal(store.read_video("ds", "pt", "a/1").values, np.arange(6).reshape(3, 2))
    np.testing.assert_array_equal(store.read_video("ds", "pt", "b 2").times, [0.5, 1.5])
    folder = tmp_path / "pts"
    (folder / "x").mkdir(parents=True)
    torch.save(torch.zeros(4), folder / "x" / "v.pt")
    import_features(tmp_path / "s.zarr", "ds", "vec", folder)
    got = FeatureStore.open(tmp_path / "s.zarr")
    assert got.provenance("ds", "vec")["kind"] == "video" and got.read_video("ds", "vec", "x/v").values.shape == (1, 4)


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_import_pt_refuses_pickled_objects(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"v": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ImportSourceError, match=r"weights_only=True\) refused it"):
        import_features(tmp_path / "s.zarr", "ds", "x", tmp_path / "evil.pt")


def test_import_hdf5_datasets_and_groups(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["82557/Visite 1/q 1"] = np.full((3, 2), 7.0)
        g = f.create_group("other clip")
        g["values"] = np.zeros((2, 2))
        g["times"] = np.array([0.0, 0.04])
    import_features(tmp_path / "s.zarr", "ds", "h5", tmp_path / "f.h5", rate=25.0)
    store = FeatureStore.open(tmp_path / "s.zarr")
    assert store.completed("ds", "h5") == ["82557/Visite 1/q 1", "other clip"]
    np.testing.assert_array_equal(store.read_video("ds", "h5", "82557/Visite 1/q 1").values, np.full((3, 2), 7.0))
    np.testing.assert_array_equal(store.read_video("ds", "h5", "other clip").times, [0.0, 0.04])


def test_import_pickle_only_when_trusted_and_warns_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from affectstore.store import importers

    monkeypatch.setattr(importers, "_warned", False)
    with open(tmp_path / "f.pkl", "wb") as f:
        pickle.dump({"v1": np.ones(3), "v2": np.zeros(3)}, f)
    with pytest.raises(ImportSourceError, match="--trust-pickle"):
        import_features(tmp_path / "s.zarr", "ds", "pk", tmp_path / "f.pkl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import_features(tmp_path / "s.zarr", "ds", "pk", tmp_path / "f.pkl", trust_pickle=True)
        import_features(tmp_path / "s.zarr", "ds", "pk2", tmp_path / "f.pkl", trust_pickle=True)
    assert sum("unpickling" in str(w.message) for w in caught) == 1
    assert FeatureStore.open(tmp_path / "s.zarr").completed("ds", "pk") == ["v1", "v2"]


def test_import_needs_times_or_a_rate(tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    np.save(tmp_path / "n" / "v.npy", np.ones((3, 2)))
    with pytest.raises(ImportSourceError, match=r"without times; pass --rate HZ"):
        import_features(tmp_path / "s.zarr", "ds", "x", tmp_path / "n")


def test_verify_of_an_archive_checks_its_manifest(tmp_path: Path) -> None:
    from affectstore.store.verify import verify_store

    folder = _make(tmp_path / "a.zarr")
    out = tmp_path / "a.zip"
    archive_store(FeatureStore.open(folder, mode="a"), out)
    assert verify_store(FeatureStore.open(out)).ok
    bad = tmp_path / "bad.zip"
    key = "zarr.json"  # the root document: no mark or seal covers it, only the manifest
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == key:
                assert b'"format": 1' in data
                data = data.replace(b'"format": 1', b'"format": 0')
            dst.writestr(info.filename, data)
    report = verify_store(FeatureStore.open(bad))
    assert not report.ok and report.errors == ["(archive): zarr.json: entry differs from the archive's manifest"]
