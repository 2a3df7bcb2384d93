"""Feature store: round trips, completion marks, config hashes, packing, concurrency, backends."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr

from affectstore.store import rawio
from affectstore.store import (
    ArrayShapeError,
    ConfigMismatchError,
    FeatureStore,
    NotAStoreError,
    StoreError,
    UnknownDatasetError,
    UnknownFeatureError,
    UnknownVideoError,
    decode_key,
    encode_id,
)

ODD_IDS = [
    "00001",
    "82557/Visite 1/82557_Question_1_2024-08-22 14-46-11_Video.mp4",
    "vidéo élève/ü 你好",
    "..",
    "__init__",
    "a%2Fb",
    "50-30-1920x1080_left",
    "x" * 400,
]


def _prov(dim: int, dtype: str = "float16", config_hash: str = "h1", kind: str = "frames", rate=50.0) -> dict:
    return {"extractor": "synthetic", "config_hash": config_hash, "dim": dim, "dtype": dtype, "kind": kind, "rate": rate}


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    return FeatureStore.open(tmp_path / "s.zarr", mode="a")


@pytest.mark.parametrize("video_id", ODD_IDS)
def test_keys_are_safe_and_reversible(video_id: str) -> None:
    key = encode_id(video_id)
    assert "/" not in key and not key.startswith((".", "_")) and len(key.encode()) <= 180
    assert decode_key(key) in (video_id, None)
    if len(video_id) < 50:
        assert decode_key(key) == video_id


def test_distinct_ids_get_distinct_keys() -> None:
    ids = ODD_IDS + ["a b", "a%20b", "a~b", "x" * 401, "x" * 399 + "y"]
    assert len({encode_id(i) for i in ids}) == len(ids)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("dim", [1, 7, 64])
@pytest.mark.parametrize("pack", [False, True])
def test_round_trip_ragged_and_empty(store: FeatureStore, dtype: str, dim: int, pack: bool) -> None:
    store.create_feature("ds", "feat", _prov(dim, dtype))
    rng = np.random.default_rng(dim)
    lengths = [0, 1, 5, 37, 0, 3, 2, 11]
    written = {}
    for vid, n in zip(ODD_IDS, lengths):
        values = rng.standard_normal((n, dim)).astype(np.float64)  # cast on write to the set's dtype
        times = np.sort(rng.uniform(0, 10, n))
        store.write_video("ds", "feat", vid, values, times, config_hash="h1")
        written[vid] = (values.astype(dtype), times)
    table = store.load_feature("ds", "feat", pack=pack)
    assert sorted(table.ids) == sorted(ODD_IDS)
    assert table.values.dtype == np.dtype(dtype) and table.values.shape == (sum(lengths), dim)
    for vid, (values, times) in written.items():
        got = table[vid]
        np.testing.assert_array_equal(got.values, values)
        np.testing.assert_array_equal(got.times, times)
        one = store.read_video("ds", "feat", vid)
        np.testing.assert_array_equal(one.values, values)
        assert one.values.shape == (len(times), dim)
    subset = store.load_feature("ds", "feat", ids=[ODD_IDS[3], ODD_IDS[1]], pack=pack)
    assert subset.ids == [ODD_IDS[3], ODD_IDS[1]]
    np.testing.assert_array_equal(subset[ODD_IDS[1]].values, written[ODD_IDS[1]][0])


def test_arrays_are_plain_zarr(store: FeatureStore, tmp_path: Path) -> None:
    store.create_feature("ds", "feat", _prov(3, "float32"))
    store.write_video("ds", "feat", "a/b", np.arange(6).reshape(2, 3), [0.0, 0.5], config_hash="h1")
    group = zarr.open_group(tmp_path / "s.zarr", mode="r")
    node = group[f"ds/feat/videos/{encode_id('a/b')}"]
    np.testing.assert_array_equal(node["values"][:], np.arange(6).reshape(2, 3))
    assert node.attrs["id"] == "a/b"


def test_unmarked_video_is_invisible(store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.create_feature("ds", "feat", _prov(2))
    store.write_video("ds", "feat", "good", np.ones((2, 2)), [0, 1], config_hash="h1")

    real_write = rawio.write_atomic

    def killed_at_the_mark(path, data):
        if "done" in Path(path).parts:
            raise RuntimeError("killed before the mark")
        real_write(path, data)

    monkeypatch.setattr(rawio, "write_atomic", killed_at_the_mark)
    with pytest.raises(RuntimeError, match="killed"):
        store.write_video("ds", "feat", "half", np.ones((4, 2)), [0, 1, 2, 3], config_hash="h1")
    monkeypatch.undo()
    assert "half" in [decode_key(k) for k in store.video_keys("ds", "feat")]  # arrays are on disk...
    assert store.completed("ds", "feat") == ["good"]  # ...but count nowhere
    assert not store.is_done("ds", "feat", "half", "h1")
    assert store.load_feature("ds", "feat").ids == ["good"]
    with pytest.raises(UnknownVideoError, match="'half' is not complete"):
        store.read_video("ds", "feat", "half")
    with pytest.raises(UnknownVideoError, match="not complete in ds/feat"):
        store.load_feature("ds", "feat", ids=["good", "half"])
    # the next run overwrites the leftovers
    store.write_video("ds", "feat", "half", np.zeros((1, 2)), [0], config_hash="h1")
    np.testing.assert_array_equal(store.read_video("ds", "feat", "half").values, np.zeros((1, 2)))


def test_config_hash_mismatch_is_refused(store: FeatureStore) -> None:
    store.create_feature("ds", "feat", _prov(2, config_hash="aaa"))
    store.create_feature("ds", "feat", _prov(2, config_hash="aaa"))  # same config: fine
    store.write_video("ds", "feat", "v", np.ones((1, 2)), [0], config_hash="aaa")
    with pytest.raises(ConfigMismatchError, match="config hash aaa.*refusing to mix.*config hash bbb"):
        store.create_feature("ds", "feat", _prov(2, config_hash="bbb"))
    with pytest.raises(ConfigMismatchError, match="affect store rm STORE ds feat"):
        store.write_video("ds", "feat", "w", np.ones((1, 2)), [0], config_hash="bbb")
    assert store.is_done("ds", "feat", "v", "aaa")
    assert not store.is_done("ds", "feat", "v", "bbb")
    assert store.completed("ds", "feat") == ["v"]


def test_bad_arrays_name_the_problem(store: FeatureStore) -> None:
    store.create_feature("ds", "feat", _prov(4))
    with pytest.raises(ArrayShapeError, match=r"values must be a T x 4 array. Got shape \(3, 5\)"):
        store.write_video("ds", "feat", "v", np.ones((3, 5)), [0, 1, 2], config_hash="h1")
    with pytest.raises(ArrayShapeError, match=r"one entry per frame \(3\)"):
        store.write_video("ds", "feat", "v", np.ones((3, 4)), [0, 1], config_hash="h1")
    with pytest.raises(ArrayShapeError, match="non-decreasing"):
        store.write_video("ds", "feat", "v", np.ones((2, 4)), [1, 0], config_hash="h1")
    with pytest.raises(ValueError, match="dim must be an int >= 0. Got '4'"):
        store.create_feature("ds", "other", _prov("4"))
    with pytest.raises(ValueError, match="dtype must be one of float16, float32. Got 'int8'"):
        store.create_feature("ds", "other", _prov(4, "int8"))
    assert store.completed("ds", "feat") == []


def test_unknown_names_list_the_valid_ones(store: FeatureStore) -> None:
    store.create_feature("emi", "hubert", _prov(2))
    store.create_feature("emi", "wav2vec2", _prov(2))
    with pytest.raises(UnknownDatasetError, match="Unknown dataset 'bah'.*Valid datasets: emi"):
        store.completed("bah", "hubert")
    with pytest.raises(UnknownFeatureError, match="Unknown feature 'hubret'.*Valid features: hubert, wav2vec2"):
        store.load_feature("emi", "hubret")


def test_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(NotAStoreError, match="does not exist"):
        FeatureStore.open(tmp_path / "missing.zarr")
    zarr.open_group(tmp_path / "plain.zarr", mode="w").create_group("x")
    with pytest.raises(NotAStoreError, match="not an affectstore store"):
        FeatureStore.open(tmp_path / "plain.zarr")
    with pytest.raises(NotAStoreError, match="not an affectstore store"):
        FeatureStore.open(tmp_path / "plain.zarr", mode="a")
    (tmp_path / "folder").mkdir()
    with pytest.raises(NotAStoreError):
        FeatureStore.open(tmp_path / "folder")


def test_read_only_store_refuses_writes(store: FeatureStore, tmp_path: Path) -> None:
    store.create_feature("ds", "feat", _prov(2))
    reader = FeatureStore.open(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match="read-only"):
        reader.write_video("ds", "feat", "v", np.ones((1, 2)), [0], config_hash="h1")


def test_failures_are_kept_apart_and_cleared_on_success(store: FeatureStore) -> None:
    store.create_feature("ds", "feat", _prov(2))
    store.record_failure("ds", "feat", "a/b c.mp4", "decode", "zero-byte file", config_hash="h1")
    store.record_failure("ds", "feat", "other", "model", "out of memory")
    failures = store.failures("ds", "feat")
    assert [(f.video_id, f.stage, f.reason) for f in failures] == [
        ("a/b c.mp4", "decode", "zero-byte file"),
        ("other", "model", "out of memory"),
    ]
    assert store.completed("ds", "feat") == []
    store.write_video("ds", "feat", "other", np.ones((1, 2)), [0], config_hash="h1")
    assert [f.video_id for f in store.failures("ds", "feat")] == ["a/b c.mp4"]
    info = {(i.dataset, i.feature): (i.n_complete, i.n_failed) for i in store.feature_sets()}
    assert info == {("ds", "feat"): (1, 1)}


def test_pack_follows_the_complete_set(store: FeatureStore, tmp_path: Path) -> None:
    store.create_feature("ds", "feat", _prov(3, "float32"))
    for i in range(5):
        store.write_video("ds", "feat", f"v{i}", np.full((i + 1, 3), i), np.arange(i + 1), config_hash="h1")
    first = store.pack("ds", "feat")
    assert store.pack("ds", "feat") == first  # current: kept
    store.write_video("ds", "feat", "v5", np.full((2, 3), 5), [0, 1], config_hash="h1")
    reader = FeatureStore.open(tmp_path / "s.zarr")
    assert len(reader.load_feature("ds", "feat")) == 6  # stale pack ignored, read-only falls back
    second = store.pack("ds", "feat")
    assert second != first
    # Re-writing a complete video drops packs holding its old arrays.
    store.write_video("ds", "feat", "v0", np.full((1, 3), 42), [0], config_hash="h1")
    np.testing.assert_array_equal(store.load_feature("ds", "feat")["v0"].values, np.full((1, 3), 42))
    np.testing.assert_array_equal(reader.load_feature("ds", "feat", pack=True)["v0"].values, np.full((1, 3), 42))
    packs = list((tmp_path / "s.zarr" / "ds" / "feat" / "packed").iterdir())
    assert len([p for p in packs if p.is_dir()]) == 1


def test_text_features_round_trip(store: FeatureStore) -> None:
    store.create_feature("bah", "whisper", _prov(0, "str", kind="text", rate=None))
    store.write_text("bah", "whisper", "s/v 1.mp4", [0.0, 2.5], [2.5, 4.0], ["well, I", "don't know é"], config_hash="h1")
    store.write_text("bah", "whisper", "silent", [], [], [], config_hash="h1")
    seg = store.read_video("bah", "whisper", "s/v 1.mp4")
    assert seg.text == ["well, I", "don't know é"]
    np.testing.assert_array_equal(seg.end, [2.5, 4.0])
    assert store.read_video("bah", "whisper", "silent").text == []
    with pytest.raises(ArrayShapeError, match="ends .* before it starts"):
        store.write_text("bah", "whisper", "x", [3.0], [1.0], ["a"], config_hash="h1")


def test_fsspec_and_zip_backends(tmp_path: Path) -> None:
    mem = FeatureStore.open("memory://affect-test-store", mode="a")
    mem.create_feature("ds", "feat", _prov(2, "float32"))
    mem.write_video("ds", "feat", "a/b", np.ones((3, 2)), [0, 1, 2], config_hash="h1")
    assert FeatureStore.open("memory://affect-test-store").load_feature("ds", "feat")["a/b"].values.shape == (3, 2)

    local = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    local.create_feature("ds", "feat", _prov(2, "float32"))
    local.write_video("ds", "feat", "a/b", np.ones((3, 2)), [0, 1, 2], config_hash="h1")
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted((tmp_path / "s.zarr").rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(tmp_path / "s.zarr").as_posix())
    zipped = FeatureStore.open(archive)
    np.testing.assert_array_equal(zipped.load_feature("ds", "feat")["a/b"].values, np.ones((3, 2)))


_WRITER = """
import sys
import numpy as np
from affectstore.store import FeatureStore
path, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = FeatureStore.open(path, mode="a")
prov = {"extractor": "synthetic", "config_hash": "h1", "dim": 8, "dtype": "float32", "kind": "frames", "rate": 50.0}
store.create_feature("ds", "feat", prov)
for i in range(n):
    values = np.full((i + 1, 8), worker * 1000 + i)
    store.write_video("ds", "feat", f"w{worker}/v {i}", values, np.arange(i + 1), config_hash="h1")
"""


def test_four_processes_writing_one_feature_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "s.zarr")
    FeatureStore.open(path, mode="a")
    # Separate interpreters, started together: they race on creating the feature set too.
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, path, str(w), "20"]) for w in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    store = FeatureStore.open(path)
    assert len(store.completed("ds", "feat")) == 80
    table = store.load_feature("ds", "feat")
    for w in range(4):
        for i in range(20):
            np.testing.assert_array_equal(table[f"w{w}/v {i}"].values, np.full((i + 1, 8), w * 1000 + i))


def test_delete_feature(store: FeatureStore) -> None:
    store.create_feature("ds", "feat", _prov(2))
    store.create_feature("ds", "keep", _prov(2))
    store.delete_feature("ds", "feat")
    assert store.features("ds") == ["keep"]
    store.create_feature("ds", "feat", _prov(2, config_hash="new"))  # a fresh config can now take the name
    shutil.rmtree(Path(store.location) / "ds" / "keep")
    assert store.features("ds") == ["feat"]


def test_mark_cut_short_by_a_kill_does_not_count(store: FeatureStore, tmp_path: Path) -> None:
    store.create_feature("ds", "feat", _prov(2))
    store.write_video("ds", "feat", "good", np.ones((2, 2)), [0, 1], config_hash="h1")
    # SIGKILL between the mark folder's mkdir and its atomic rename leaves this behind.
    half = tmp_path / "s.zarr" / "ds" / "feat" / "done" / encode_id("cut")
    half.mkdir()
    (half / "zarr.json.1234abcd.partial").write_text('{"zarr_format"')
    assert store.completed("ds", "feat") == ["good"]
    assert store.load_feature("ds", "feat").ids == ["good"]
    assert not store.is_done("ds", "feat", "cut", "h1")
    store.write_video("ds", "feat", "cut", np.zeros((1, 2)), [0], config_hash="h1")
    assert store.completed("ds", "feat") == ["cut", "good"]
    assert not list(half.glob("*.partial"))


def test_local_writes_match_zarrs_own(tmp_path: Path) -> None:
    """The local fast path writes exactly the keys and bytes the generic zarr path writes."""
    local = FeatureStore.open(tmp_path / "a.zarr", mode="a")
    generic = FeatureStore.open(f"file://{tmp_path / 'b.zarr'}", mode="a")
    generic._backend = zarr.storage.FsspecStore.from_url(
        f"file://{tmp_path / 'b.zarr'}", storage_options={"auto_mkdir": True}
    )  # force the async path
    for st in (local, generic):
        st.create_feature("ds", "feat", _prov(3, "float32"))
        st.write_video("ds", "feat", "a/b", np.arange(6).reshape(2, 3), [0.0, 0.5], config_hash="h1")
        st.write_video("ds", "feat", "empty", np.zeros((0, 3)), [], config_hash="h1")
    for name in ("a%2Fb", "empty"):
        for rel in ("zarr.json", "values/zarr.json", "times/zarr.json"):
            a = (tmp_path / "a.zarr" / "ds/feat/videos" / name / rel).read_bytes()
            b = (tmp_path / "b.zarr" / "ds/feat/videos" / name / rel).read_bytes()
            assert a == b
    a = (tmp_path / "a.zarr/ds/feat/videos/a%2Fb/values/c/0/0").read_bytes()
    assert a == (tmp_path / "b.zarr/ds/feat/videos/a%2Fb/values/c/0/0").read_bytes()
    assert generic.completed("ds", "feat") == local.completed("ds", "feat") == ["a/b", "empty"]


def test_open_survives_another_process_creating_the_store_at_the_same_moment(tmp_path, monkeypatch):
    """zarr's open-or-create races with a second creator; the loser opens what the winner made."""
    import zarr

    from affectstore.store import FeatureStore

    real = zarr.open_group
    calls = []

    def racing(store, mode="a", **kwargs):
        calls.append(mode)
        if len(calls) == 1:
            real(store, mode="a", **kwargs)  # the other process wins the race ...
            raise zarr.errors.ContainsGroupError("A group exists in store at path ''.")  # ... as zarr then reports
        return real(store, mode=mode, **kwargs)

    monkeypatch.setattr(zarr, "open_group", racing)
    store = FeatureStore.open(tmp_path / "new.zarr", mode="a")
    assert store.datasets() == [] and len(calls) == 2
