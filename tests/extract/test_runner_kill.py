"""A run killed with SIGKILL mid-way resumes to the same arrays, and never leaves a false completion mark."""

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("opensmile")

from affectstore.extract.runner import RunOptions, run_extraction  # noqa: E402
from affectstore.store import FeatureStore  # noqa: E402

FEATURES = ["wav2vec2", "vad", "egemaps"]
OUTPUTS = ["wav2vec2", "vad", "vad-frames", "egemaps", "egemaps-lld"]
N_CLIPS = 20


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, clip_tools, tiny_models, speech_settings, killer):
    write_clips, _, _ = clip_tools
    root = tmp_path / "clips"
    ids = sorted(write_clips(root, [2.0 + 0.25 * (k % 5) for k in range(N_CLIPS)], exts=(".wav", ".flac")))

    reference_path = tmp_path / "reference.zarr"
    quiet = RunOptions(progress=False)
    assert run_extraction("clips", root, FEATURES, reference_path, settings=speech_settings, options=quiet).done == N_CLIPS
    reference = FeatureStore.open(reference_path)

    store_path = tmp_path / "killed.zarr"
    affect, kill_after_marks = killer
    kill_after_marks(affect(
        "extract", "clips", str(root), "--features", ",".join(FEATURES), "--store", str(store_path),
        "--set", f"wav2vec2.model={tiny_models['wav2vec2']}", "--set", f"vad.model={tiny_models['vad']}",
        "--batch-size", "1", "--no-progress",
    ), store_path / "clips" / "wav2vec2" / "done", 4)  # four mark folders: three complete, the fourth maybe cut short

    killed = FeatureStore.open(store_path)
    listed = {f: set(killed.completed("clips", f)) if f in killed.features("clips") else set() for f in OUTPUTS}
    # a mark counts once its document is written (a kill while writing it leaves a bare folder,
    # which completed() lists; see Runner._complete)
    complete = {f: {v for v in ids if killed.is_done("clips", f, v, killed.provenance("clips", f)["config_hash"])} if listed[f] else set() for f in OUTPUTS}
    assert all(complete[f] <= listed[f] for f in OUTPUTS)
    assert 3 <= len(complete["wav2vec2"]) < N_CLIPS, "the kill did not land mid-run"
    # every completion mark stands for full arrays equal to the uninterrupted run's
    for feature, videos in complete.items():
        for vid in videos:
            got, want = killed.read_video("clips", feature, vid), reference.read_video("clips", feature, vid)
            np.testing.assert_array_equal(got.times, want.times)
            np.testing.assert_allclose(got.values, want.values, atol=1e-5, rtol=1e-4)
    fully_done = set.intersection(*complete.values())

    summary = run_extraction("clips", root, FEATURES, store_path, settings=speech_settings, options=quiet)
    assert summary.skipped == len(fully_done) and summary.done == N_CLIPS - len(fully_done) and summary.failed == 0
    resumed = FeatureStore.open(store_path)
    for feature in OUTPUTS:
        assert sorted(resumed.completed("clips", feature)) == ids
        prov = resumed.provenance("clips", feature)
        assert prov["config_hash"] == reference.provenance("clips", feature)["config_hash"]
        for vid in ids:
            assert resumed.is_done("clips", feature, vid, prov["config_hash"])
            got, want = resumed.read_video("clips", feature, vid), reference.read_video("clips", feature, vid)
            np.testing.assert_array_equal(got.times, want.times)
            np.testing.assert_allclose(got.values, want.values, atol=1e-5, rtol=1e-4)
        table = resumed.load_feature("clips", feature)
        assert list(table) == ids
