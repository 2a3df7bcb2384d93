"""Claims let N plain processes share one store's videos; packing happens once, safely, whoever finishes last."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from affectstore.store import FeatureStore, StoreError
from affectstore.store.claims import ClaimBoard

PROV = {"extractor": "synthetic", "config_hash": "h1", "dim": 3, "dtype": "float32", "kind": "frames", "rate": 10.0}


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    s = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    s.create_feature("ds", "feat", PROV)
    return s


def _other_board(store: FeatureStore, **kwargs) -> ClaimBoard:
    board = ClaimBoard(store, "ds", **kwargs)
    board.pid = os.getppid()  # a live process that is not this one
    return board


def test_claim_release_and_holder(store: FeatureStore) -> None:
    mine, theirs = ClaimBoard(store, "ds"), _other_board(store)
    assert mine.claim("a/b c.mp4") and mine.claim("a/b c.mp4")  # idempotent for the holder
    assert not theirs.claim("a/b c.mp4")
    holder = theirs.holder("a/b c.mp4")
    assert holder.pid == os.getpid() and holder.video_id == "a/b c.mp4"
    assert theirs.claimed_by_others(["a/b c.mp4", "x"]) == 1 and mine.claimed_by_others(["a/b c.mp4"]) == 0
    theirs.release("a/b c.mp4")  # not theirs to release
    assert mine.holder("a/b c.mp4") is not None
    mine.release("a/b c.mp4")
    assert mine.holder("a/b c.mp4") is None and theirs.claim("a/b c.mp4")
    assert not [p for p in mine.folder.iterdir() if p.name.endswith(".tmp")]
    # Claims never show up as datasets, and the store stays a plain Zarr hierarchy.
    assert store.datasets() == ["ds"]


def test_stale_claims_are_taken_over(store: FeatureStore) -> None:
    old = _other_board(store, timeout=60)
    assert old.claim("v")
    path = old._path("v")
    os.utime(path, (time.time() - 120, time.time() - 120))  # no heartbeat for two minutes
    new = ClaimBoard(store, "ds", timeout=60)
    assert new.claim("v") and new.holder("v").pid == os.getpid()
    old.beat()
    assert old.lost == {"v"} and old.held() == []


def test_a_dead_holder_on_this_host_is_stale_at_once(store: FeatureStore, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    board = ClaimBoard(store, "ds", timeout=3600)
    board.folder.mkdir(parents=True, exist_ok=True)
    doc = {"id": "v", "host": os.uname().nodename, "pid": dead.pid, "token": "t0", "started": time.time()}
    board._path("v").write_text(json.dumps(doc))
    assert board.claim("v")


def test_one_takeover_at_a_time(store: FeatureStore) -> None:
    old = _other_board(store, timeout=1)
    old.claim("v")
    os.utime(old._path("v"), (0, 0))
    contender = ClaimBoard(store, "ds", timeout=1)
    lock = contender._path("v").with_name(contender._path("v").name + ".takeover")
    lock.mkdir()  # someone else is taking it over right now
    assert not contender.claim("v")
    lock.rmdir()
    assert contender.claim("v")


def test_heartbeat_keeps_claims_fresh(store: FeatureStore) -> None:
    with ClaimBoard(store, "ds", timeout=0.5, heartbeat=0.05) as board:
        board.claim("v")
        time.sleep(0.8)
        assert not _other_board(store, timeout=0.5).claim("v")
    assert board.holder("v") is None  # leaving the block released it


def test_claims_need_a_folder_store(tmp_path: Path) -> None:
    mem = FeatureStore.open("memory://claims-test", mode="a")
    with pytest.raises(StoreError, match=r"Claims need a local folder store .* Use --shard I/N"):
        ClaimBoard(mem, "ds")
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds. Got 0 instead"):
        ClaimBoard(tmp_path, "ds", timeout=0)


_WORKER = """
import sys, time
import numpy as np
from affectstore.store import FeatureStore
from affectstore.store.claims import ClaimBoard, pack_when_complete
path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = FeatureStore.open(path, mode="a")
ids = [f"v{i:03d}" for i in range(n)]
done = []
with ClaimBoard(store, "ds", timeout=60, heartbeat=1) as board:
    for vid in ids:
        if store.is_done("ds", "feat", vid, "h1") or not board.claim(vid):
            continue
        if store.is_done("ds", "feat", vid, "h1"):
            board.release(vid)
            continue
        time.sleep(0.01)
        store.write_video("ds", "feat", vid, np.full((3, 3), int(vid[1:])), np.arange(3) / 10, config_hash="h1")
        done.append(vid)
        board.release(vid)
outcome = pack_when_complete(store, "ds", "feat", ids)
print(outcome.status, " ".join(done))
"""


def test_four_processes_do_every_video_once_and_pack_once(store: FeatureStore) -> None:
    n = 60
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, store.location, str(w), str(n)], stdout=subprocess.PIPE, text=True)
             for w in range(4)]
    outputs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    statuses = [out[0] for out in outputs]
    done = [vid for out in outputs for vid in out[1:]]
    assert sorted(done) == [f"v{i:03d}" for i in range(n)]  # each exactly once
    assert statuses.count("packed") <= 1 and set(statuses) <= {"packed", "current", "busy", "incomplete"}
    assert store.pack("ds", "feat") is not None
    table = store.load_feature("ds", "feat")
    assert len(table) == n and table["v042"].values[0, 0] == 42
    assert not list((Path(store.location) / ".claims").rglob("*.claim"))  # all released


_HOLDER = """
import sys, time
from affectstore.store.claims import ClaimBoard
board = ClaimBoard(sys.argv[1], "ds", timeout=3600)
assert board.claim("v")
print("claimed", flush=True)
time.sleep(60)
"""


def test_a_sigkilled_claimant_costs_nothing(store: FeatureStore) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, store.location], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "claimed"
    board = ClaimBoard(store, "ds", timeout=3600)
    assert not board.claim("v")  # alive: its claim holds
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert board.claim("v")  # dead on this host: taken over at once, without waiting an hour


_PACKER = """
import sys
from affectstore.store import FeatureStore
from affectstore.store.claims import pack_when_complete
store = FeatureStore.open(sys.argv[1], mode="a")
print(pack_when_complete(store, "ds", "feat").status)
"""

_REWRITER = """
import sys
import numpy as np
from affectstore.store import FeatureStore
store = FeatureStore.open(sys.argv[1], mode="a")
for r in range(15):
    store.write_video("ds", "feat", "v000", np.full((3, 3), r), np.arange(3) / 10, config_hash="h1")
    print(store.pack("ds", "feat") is not None, flush=True)
"""


def test_racing_packers_and_a_rewriter_never_crash(store: FeatureStore) -> None:
    for i in range(200):
        store.write_video("ds", "feat", f"v{i:03d}", np.full((20, 3), i), np.arange(20) / 10, config_hash="h1")
    procs = [subprocess.Popen([sys.executable, "-c", _PACKER, store.location], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    procs.append(subprocess.Popen([sys.executable, "-c", _REWRITER, store.location], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [err for _, err in results]
    assert all("Traceback" not in err for _, err in results)
    assert {out.strip() for out, _ in results[:4]} <= {"packed", "current", "busy", "failed"}
    table = store.load_feature("ds", "feat")
    assert table["v000"].values[0, 0] == 14 and table["v123"].values[0, 0] == 123
