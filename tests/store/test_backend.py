"""Store locations: every wrong one is a clear message (exit 2 in the CLI); .zip stores are read-only archives."""

from __future__ import annotations

import importlib.util
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import FeatureStore, NotAStoreError, StoreError, encode_id
from affectstore.store import archive as archive_module
from affectstore.store.archive import archive_store

runner = CliRunner()
COMMANDS = [["store", "info", "{s}"], ["store", "ls", "{s}", "ds", "feat"], ["store", "verify", "{s}"],
            ["store", "pack", "{s}"], ["store", "rm", "{s}", "ds", "feat", "--yes"]]


def _prov() -> dict:
    return {"extractor": "synthetic", "config_hash": "h1", "dim": 2, "dtype": "float32", "kind": "frames", "rate": 10.0}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    store = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    store.create_feature("ds", "feat", _prov())
    for i in range(3):
        store.write_video("ds", "feat", f"v{i}", np.full((i + 1, 2), i), np.arange(i + 1) / 10, config_hash="h1")
    return tmp_path / "s.zarr"


def _run(args: list[str], store: Path | str):
    return runner.invoke(app, [a.format(s=store) for a in args])


def _zip_with(tmp_path: Path, folder: Path, extra: dict[str, bytes]) -> Path:
    path = tmp_path / "hostile.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are the point of one test
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
        for name, data in extra.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def test_pack_zip_round_trip_holds_only_complete_work(folder: Path, tmp_path: Path) -> None:
    (folder / "ds/feat/videos/leftover/values").mkdir(parents=True)  # a killed writer's arrays, no mark
    (folder / "ds/feat/videos/leftover/values/zarr.json").write_text("{}")
    (folder / ".claims/videos/ds").mkdir(parents=True)
    (folder / ".claims/videos/ds/v9.claim").write_text("{}")
    target = tmp_path / "out" / "s.zip"
    result = runner.invoke(app, ["store", "pack", str(folder), "--zip", str(target)])
    assert result.exit_code == 0, result.output
    assert "ds/feat: packed as n3x" in result.output and f"wrote {target} (" in result.output and "ds/feat: 3 videos" in result.output
    names = zipfile.ZipFile(target).namelist()
    assert not any("leftover" in n or ".claims" in n or n.endswith(".partial") for n in names)
    zipped = FeatureStore.open(target)
    assert zipped.completed("ds", "feat") == ["v0", "v1", "v2"]
    np.testing.assert_array_equal(zipped.load_feature("ds", "feat")["v2"].values, np.full((3, 2), 2))
    np.testing.assert_array_equal(zipped.read_video("ds", "feat", "v1").times, [0.0, 0.1])
    assert _run(["store", "verify", "{s}", "--no-progress"], target).exit_code == 0


def test_an_interrupted_pack_leaves_the_old_archive(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "s.zip"
    archive_store(FeatureStore.open(folder, mode="a"), target)
    before = target.read_bytes()
    FeatureStore.open(folder, mode="a").write_video("ds", "feat", "v3", np.ones((1, 2)), [0.0], config_hash="h1")
    real = zipfile.ZipFile.writestr
    calls = []

    def killed(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", killed)
    with pytest.raises(KeyboardInterrupt):
        archive_store(FeatureStore.open(folder, mode="a"), target)
    assert target.read_bytes() == before and list(tmp_path.glob("*.partial")) == []
    assert archive_module.archive_store is archive_store


def test_zip_stores_are_never_written_in_place(folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "s.zip"
    archive_store(FeatureStore.open(folder, mode="a"), target)
    message = r"{0}.zip is a .zip store: affectstore reads it but never writes it in place .*`affect store pack .*{0}.zarr .*{0}.zip`"
    with pytest.raises(StoreError, match=message.format("s")):
        FeatureStore.open(target, mode="a")
    with pytest.raises(StoreError, match=message.format("new")):
        FeatureStore.open(tmp_path / "new.zip", mode="a")  # extraction into a new .zip: refused too
    for args in (["store", "rm", "{s}", "ds", "feat", "--yes"], ["store", "pack", "{s}"], ["store", "verify", "{s}", "--repair"]):
        result = _run(args, target)
        assert result.exit_code == 2 and "never writes it in place" in result.output and "Traceback" not in result.output


def test_a_cut_short_zip_is_a_message(folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "s.zip"
    archive_store(FeatureStore.open(folder, mode="a"), target)
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    for args in COMMANDS[:3]:
        result = _run(args, target)
        assert result.exit_code == 2, result.output
        assert "s.zip is not a readable zip archive (File is not a zip file): it may have been cut short" in result.output


@pytest.mark.parametrize("entry", ["../evil/zarr.json", "/abs/zarr.json", "ds/feat/done/../../../x/zarr.json",
                                   "ds\\feat\\done\\spoof\\zarr.json", "C:/windows/zarr.json", "ds//feat/zarr.json"])
def test_hostile_zip_entries_are_refused_and_never_listed(folder: Path, tmp_path: Path, entry: str) -> None:
    path = _zip_with(tmp_path, folder, {entry: b'{"zarr_format": 3, "node_type": "group", "attributes": {"id": "spoof"}}'})
    with pytest.raises(NotAStoreError, match=r"holds 1 entries that are absolute or leave the store \(e.g. .*\); refusing to open it"):
        FeatureStore.open(path)
    for args in COMMANDS[:3]:
        result = _run(args, path)
        assert result.exit_code == 2 and "refusing to open it" in result.output and "spoof" not in result.output.split("e.g.")[0]
    assert _run(COMMANDS[3], path).exit_code == 2  # pack: refused as a write to a .zip before it is read


def test_duplicate_zip_entries_are_refused(folder: Path, tmp_path: Path) -> None:
    spoof = f"ds/feat/done/{encode_id('v0')}/zarr.json"
    path = _zip_with(tmp_path, folder, {spoof: b"{}"})
    with pytest.raises(NotAStoreError, match=r"holds 1 entries twice \(e.g. 'ds/feat/done/v0/zarr.json'\)"):
        FeatureStore.open(path)


@pytest.mark.parametrize("args", COMMANDS, ids=[c[1] for c in COMMANDS])
def test_a_store_path_that_is_a_file(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "features.csv"
    path.write_text("a,b\n")
    result = _run(args, path)
    assert result.exit_code == 2
    assert "features.csv is a file, not a store: a store is a folder" in result.output.replace("\n", " ")


def test_a_non_store_folder_is_never_turned_into_a_store(tmp_path: Path) -> None:
    data = tmp_path / "my-videos"
    data.mkdir()
    (data / "clip.mp4").write_bytes(b"x")
    with pytest.raises(NotAStoreError, match=r"my-videos is a folder that holds other files \(e.g. 'clip.mp4'\) and no store; refusing to turn it into a store in place"):
        FeatureStore.open(data, mode="a")
    result = _run(["store", "pack", "{s}"], data)
    assert result.exit_code == 2 and "refusing to turn it into a store in place" in result.output
    result = _run(["store", "info", "{s}"], data)
    assert result.exit_code == 2 and "is not an affectstore store" in result.output
    assert sorted(p.name for p in data.iterdir()) == ["clip.mp4"]
    (tmp_path / "empty").mkdir()
    assert FeatureStore.open(tmp_path / "empty", mode="a").datasets() == []  # an empty folder is fine


@pytest.mark.parametrize("url,package,extra", [("s3://bucket/team.zarr", "s3fs", "s3"), ("http://example.org/team.zarr", "aiohttp", "http")])
def test_remote_stores_without_their_extra(url: str, package: str, extra: str) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    result = runner.invoke(app, ["store", "info", url])
    assert result.exit_code == 2
    assert f"the {url.split(':')[0]}:// file system is not installed" in result.output and f"pip install 'affectstore[{extra}]'" in result.output
    with pytest.raises(StoreError, match=r"unknown URL scheme 'foo'"):
        FeatureStore.open("foo://x/y.zarr")
    with pytest.raises(StoreError, match=r"http:// stores are read-only"):
        FeatureStore.open("http://example.org/team.zarr", mode="a")
