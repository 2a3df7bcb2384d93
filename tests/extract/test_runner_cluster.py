"""Extraction on a real dask.distributed LocalCluster of two worker processes equals the single-process run."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("opensmile")
pytest.importorskip("distributed")

from affectstore.extract.runner import RunOptions, run_extraction  # noqa: E402
from affectstore.store import FeatureStore  # noqa: E402

DURATIONS = (0.7, 1.3, 1.0, 2.2, 0.9, 1.6)


@pytest.mark.slow
def test_local_cluster_of_two_workers_equals_one_process_and_resumes(tmp_path, clip_tools):
    write_clips, _, _ = clip_tools
    root = tmp_path / "clips"
    ids = sorted(write_clips(root, DURATIONS, exts=(".wav", ".flac")))
    single = run_extraction("clips", root, ["egemaps"], tmp_path / "one.zarr", options=RunOptions(progress=False))
    summary = run_extraction("clips", root, ["egemaps"], tmp_path / "two.zarr", options=RunOptions(progress=False, workers=2))
    assert summary.done == single.done == len(ids) and summary.failed == 0
    assert sorted(summary.packed) == ["egemaps", "egemaps-lld"]
    one, two = FeatureStore.open(tmp_path / "one.zarr"), FeatureStore.open(tmp_path / "two.zarr")
    for feature in ("egemaps", "egemaps-lld"):
        assert two.completed("clips", feature) == one.completed("clips", feature)
        for vid in ids:
            a, b = one.read_video("clips", feature, vid), two.read_video("clips", feature, vid)
            np.testing.assert_array_equal(b.values, a.values, err_msg=f"{feature} {vid}")
            np.testing.assert_array_equal(b.times, a.times)
    assert not any((tmp_path / "two.zarr" / ".claims").rglob("*.claim"))
    # resumable exactly like the single-machine run: nothing left to do, no cluster started
    again = run_extraction("clips", root, ["egemaps"], tmp_path / "two.zarr", options=RunOptions(progress=False, workers=2))
    assert again.done == 0 and again.skipped == len(ids)


def test_dask_and_workers_are_exclusive():
    with pytest.raises(ValueError, match=r"--dask ADDRESS .* or --workers N .*not both"):
        RunOptions(dask="tcp://127.0.0.1:8786", workers=2)
    with pytest.raises(ValueError, match="workers must be None or an int >= 1. Got 0"):
        RunOptions(workers=0)
