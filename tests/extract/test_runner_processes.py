"""Several plain `affect extract` processes on one store share the work through per-video claims."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("opensmile")

from affectstore.store import FeatureStore  # noqa: E402

N_CLIPS = 24


def test_four_processes_without_shards_do_each_video_once(tmp_path, clip_tools):
    write_clips, _, _ = clip_tools
    root = tmp_path / "clips"
    ids = sorted(write_clips(root, [1.0 + 0.1 * (k % 7) for k in range(N_CLIPS)], exts=(".wav", ".flac")))
    store = tmp_path / "s.zarr"
    command = [sys.executable, "-c", "from affectstore.cli import app; app(prog_name='affect')",
               "extract", "clips", str(root), "--features", "egemaps", "--store", str(store), "--no-progress"]
    processes = [subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], [err[-2000:] for _, err in outputs]
    done = [int(re.search(r"done (\d+),", out).group(1)) for out, _ in outputs]
    elsewhere = [int(m.group(1)) if (m := re.search(r"(\d+) done by other processes", out)) else 0 for out, _ in outputs]
    assert sum(done) == N_CLIPS, (done, [o for o, _ in outputs])  # each video extracted by exactly one process
    assert all(d + e + int(re.search(r"skipped (\d+)", out).group(1)) == N_CLIPS
               for d, e, (out, _) in zip(done, elsewhere, outputs, strict=True))
    st = FeatureStore.open(store)
    for feature in ("egemaps", "egemaps-lld"):
        assert sorted(st.completed("clips", feature)) == ids
        assert list(st.load_feature("clips", feature)) == ids
    assert not any((store / ".claims").rglob("*.claim")), "claims left behind"
