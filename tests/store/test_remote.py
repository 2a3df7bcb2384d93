"""Remote read-only stores: a real HTTP server on localhost (a folder and a .zip), and S3 through moto's server.

BAH ids hold "/" and spaces: their keys hold "%2F" and "%20", which a server decodes once,
so these tests fail if a key is not percent-encoded into its URL.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from affectstore.cli import app
from affectstore.store import FeatureStore, StoreError, encode_id
from affectstore.store.archive import archive_store
from affectstore.store.listing import LISTING, write_listing
from affectstore.store.verify import verify_store
from affectstore.testing.datasets import make_bah_dataset
from affectstore.testing.http import serve_folder

pytest.importorskip("aiohttp")
runner = CliRunner()
QUIET_MLP = {"max_epochs": 30, "patience": 5, "batch_size": 256}


def _carrying(target, times, dim, rng, noise):
    values = rng.normal(0, noise, size=(len(times), dim)).astype(np.float32)
    for i, t in enumerate(times):
        values[i, 0] += 2.0 * target(t)
    return values, np.asarray(times, dtype=np.float64)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A BAH root and a store of one planted-signal feature, packed with its listing and as a .zip."""
    base = tmp_path_factory.mktemp("remote")
    built = make_bah_dataset(base / "data", n_train=6, n_val=4, duration=1.0)
    assert any("/" in v and " " in v for v in built.ids)
    frames = built.frame_labels["bah"]
    rng = np.random.default_rng(3)
    store = FeatureStore.open(base / "www" / "bah.zarr", mode="a")
    prov = {"extractor": "synthetic", "config_hash": "h", "dim": 4, "dtype": "float32", "kind": "frames", "rate": 50.0}
    store.create_feature("bah", "wav2vec2", prov)
    for v in built.ids:
        values, times = _carrying(lambda t, v=v: frames[v][min(int(t * 24), len(frames[v]) - 1), 0], np.arange(50) / 50, 4, rng, 0.6)
        store.write_video("bah", "wav2vec2", v, values, times, config_hash="h")
    store.pack("bah", "wav2vec2")
    write_listing(store)
    archive_store(store, base / "www" / "bah.zip")
    return built, base / "www"


def _train(store, built, out: Path) -> dict:
    from affectstore.train.run import train_task

    result = train_task("bah", store, features="wav2vec2", out=out, data_root=built.root, overrides={"params": QUIET_MLP})
    return result.metrics["results"]


@pytest.mark.slow
def test_training_over_http_gives_the_local_scores(published, tmp_path: Path) -> None:
    built, www = published
    local = _train(www / "bah.zarr", built, tmp_path / "local")
    with serve_folder(www) as url:
        remote = _train(f"{url}/bah.zarr", built, tmp_path / "http")
        zipped = _train(f"{url}/bah.zip", built, tmp_path / "zip")
    assert local["bah"]["report"]["weighted_f1"] > 0.6  # it learned something: equal scores are not two failures
    assert json.dumps(remote, sort_keys=True) == json.dumps(local, sort_keys=True)
    assert json.dumps(zipped, sort_keys=True) == json.dumps(local, sort_keys=True)


@pytest.mark.parametrize("name", ["bah.zarr", "bah.zip"])
def test_info_ls_verify_over_http(published, name: str) -> None:
    built, www = published
    with serve_folder(www) as url:
        info = runner.invoke(app, ["store", "info", f"{url}/{name}"])
        assert info.exit_code == 0, info.output
        assert f"wav2vec2: {len(built.ids)} complete, 0 failed" in info.output
        listed = runner.invoke(app, ["store", "ls", f"{url}/{name}", "bah", "wav2vec2"])
        assert sorted(line.split("\t")[0] for line in listed.output.splitlines()) == sorted(built.ids)
        verified = runner.invoke(app, ["store", "verify", f"{url}/{name}", "--no-progress"])
        assert verified.exit_code == 0 and verified.output.startswith(f"OK: checked {len(built.ids)} complete videos")
        store = FeatureStore.open(f"{url}/{name}")
        vid = next(v for v in built.ids if " " in v)
        np.testing.assert_array_equal(store.read_video("bah", "wav2vec2", vid).values,
                                      FeatureStore.open(www / "bah.zarr").read_video("bah", "wav2vec2", vid).values)


def test_verify_over_http_names_a_flipped_byte(published, tmp_path: Path) -> None:
    built, www = published
    copy = tmp_path / "www"
    shutil.copytree(www / "bah.zarr", copy / "bah.zarr")
    vid = next(v for v in built.ids if " " in v)
    chunk = copy / "bah.zarr/bah/wav2vec2/videos" / encode_id(vid) / "times/c/0"
    data = bytearray(chunk.read_bytes())
    data[5] ^= 0x04
    chunk.write_bytes(bytes(data))
    with serve_folder(copy) as url:
        report = verify_store(FeatureStore.open(f"{url}/bah.zarr"))
    assert not report.ok and report.damaged_videos() == {("bah", "wav2vec2"): [vid]}
    assert any("times/c/0: checksum mismatch" in e for e in report.errors)


def test_a_folder_without_listing_over_http_says_how_to_publish(published, tmp_path: Path) -> None:
    _, www = published
    shutil.copytree(www / "bah.zarr", tmp_path / "bare.zarr")
    (tmp_path / "bare.zarr" / LISTING).unlink()
    with serve_folder(tmp_path) as url:
        with pytest.raises(StoreError, match=r"cannot list its folders .*`affect store pack STORE`"):
            FeatureStore.open(f"{url}/bare.zarr").datasets()


def test_http_stores_are_read_only(published) -> None:
    _, www = published
    with serve_folder(www) as url:
        with pytest.raises(StoreError, match="http:// stores are read-only"):
            FeatureStore.open(f"{url}/bah.zarr", mode="a")


# ---------------------------------------------------------------------------------- S3
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(published):
    """A moto S3 server on localhost with the store uploaded to s3://team/bah.zarr."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}",
                                                                          "region_name": "us-east-1"}}
    import boto3
    import s3fs

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="team")  # us-east-1 takes no location constraint
    fs = s3fs.S3FileSystem(**options)
    _, www = published
    fs.put(str(www / "bah.zarr"), "team/bah.zarr", recursive=True)
    yield options, fs
    server.stop()


def test_s3_reads_what_the_folder_holds(published, s3) -> None:
    built, www = published
    options, _ = s3
    remote = FeatureStore.open("s3://team/bah.zarr", storage_options=options)
    local = FeatureStore.open(www / "bah.zarr")
    assert remote.completed("bah", "wav2vec2") == local.completed("bah", "wav2vec2")
    np.testing.assert_array_equal(remote.load_feature("bah", "wav2vec2").values, local.load_feature("bah", "wav2vec2").values)
    assert verify_store(remote).ok


def test_s3_write_then_read_with_ids_holding_slashes_and_spaces(s3) -> None:
    options, fs = s3
    store = FeatureStore.open("s3://team/new.zarr", mode="a", storage_options=options)
    store.create_feature("bah", "f", {"extractor": "x", "config_hash": "h", "dim": 2, "dtype": "float32", "kind": "frames", "rate": 10.0})
    ids = ["82557/Visite 1/q 1.mp4", "élan vital.mp4"]
    for i, vid in enumerate(ids):
        store.write_video("bah", "f", vid, np.full((3, 2), i), np.arange(3) / 10, config_hash="h")
    again = FeatureStore.open("s3://team/new.zarr", storage_options=options)
    assert sorted(again.completed("bah", "f")) == sorted(ids)
    np.testing.assert_array_equal(again.read_video("bah", "f", ids[1]).values, np.ones((3, 2)))
    key = f"team/new.zarr/bah/f/videos/{encode_id(ids[0])}/values/c/0/0"
    data = bytearray(fs.cat_file(key))
    data[0] ^= 1
    fs.pipe_file(key, bytes(data))
    report = verify_store(FeatureStore.open("s3://team/new.zarr", storage_options=options))
    assert report.damaged_videos() == {("bah", "f"): [ids[0]]}
