"""The extraction runner end to end: plan, decode once, batch, stream, write, fail, resume, pack."""

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("opensmile")

import affectstore.extract as ax  # noqa: E402
from affectstore.extract.audio import WaveStats  # noqa: E402
from affectstore.extract.runner import (  # noqa: E402
    ExtractionError,
    RunOptions,
    parse_settings,
    parse_shard,
    run_extraction,
)
from affectstore.media import load_audio  # noqa: E402
from affectstore.store import ConfigMismatchError, FeatureStore  # noqa: E402

DURATIONS = (0.7, 1.3, 2.9, 1.0, 4.6, 2.2)  # seconds; 4.6 and 2.9 are "long" when streaming above 2 s
ALL = ["wav2vec2", "vad", "hubert", "egemaps"]
OUTPUTS = ["wav2vec2", "vad", "vad-frames", "hubert", "egemaps", "egemaps-lld"]
QUIET = RunOptions(progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, clip_tools):
    write_clips, _, _ = clip_tools
    root = tmp_path_factory.mktemp("clips")
    ids = write_clips(root, DURATIONS, exts=(".wav", ".flac", ".mp4"))
    return root, sorted(ids)


@pytest.fixture(scope="module")
def reference(dataset, speech_settings, tmp_path_factory):
    """All four extractors, default settings, one run: the arrays later runs must reproduce."""
    root, _ = dataset
    path = tmp_path_factory.mktemp("ref") / "store.zarr"
    summary = run_extraction("clips", root, ALL, path, settings=speech_settings, options=QUIET)
    return FeatureStore.open(path), summary


def arrays(store, feature, video_id):
    v = store.read_video("clips", feature, video_id)
    return v.values, v.times


def assert_same_store(a, b, ids, features=OUTPUTS, atol=1e-5):
    for feature in features:
        for vid in ids:
            va, ta = arrays(a, feature, vid)
            vb, tb = arrays(b, feature, vid)
            np.testing.assert_array_equal(ta, tb, err_msg=f"{feature} {vid}")
            np.testing.assert_allclose(vb, va, atol=atol, rtol=1e-4, err_msg=f"{feature} {vid}")


# --------------------------------------------------------------------------- end to end


def test_end_to_end_shapes_times_provenance(dataset, reference, tiny_models):
    root, ids = dataset
    store, summary = reference
    assert (summary.done, summary.skipped, summary.failed, summary.selected) == (len(ids), 0, 0, len(ids))
    assert summary.audio_seconds == pytest.approx(sum(DURATIONS), abs=0.2)  # AAC pads its last frame
    assert summary.audio_per_second > 0 and summary.videos_per_second > 0
    assert store.features("clips") == sorted(OUTPUTS)
    assert sorted(summary.packed) == sorted(OUTPUTS)
    assert "done 6, skipped 0, failed 0" in summary.text()

    extractors = {n: ax.create_extractor(n, **({"model": tiny_models[n]} if n in tiny_models else {})).load() for n in ALL}
    for vid in ids:
        waveform = load_audio(root / vid)
        n_frames = extractors["wav2vec2"].geometry.n_frames(len(waveform))
        for name in ("wav2vec2", "hubert"):
            values, times = arrays(store, name, vid)
            assert values.shape == (n_frames, 32) and values.dtype == np.float32
            np.testing.assert_allclose(times, (np.arange(n_frames) * 320 + 200) / 16_000)
        values, times = arrays(store, "vad", vid)
        assert values.shape == (1, 3)
        np.testing.assert_allclose(times, [len(waveform) / 16_000 / 2])
        assert arrays(store, "vad-frames", vid)[0].shape == (n_frames, 3)
        assert arrays(store, "egemaps", vid)[0].shape == (1, 88)
        lld, lld_times = arrays(store, "egemaps-lld", vid)
        assert lld.shape[1] == 25 and np.allclose(np.diff(lld_times), 0.01)
        # the runner's numbers are the extractor's own on the decoded clip
        for name, extractor in extractors.items():
            for output, features in extractor.extract(waveform).items():
                np.testing.assert_allclose(arrays(store, output, vid)[0], features.values, atol=1e-5, rtol=1e-4)

    for output in OUTPUTS:
        prov = store.provenance("clips", output)
        extractor = extractors[output.split("-")[0]]
        assert prov["config_hash"] == extractor.config_hash and len(prov["config_hash"]) == 16
        assert prov["extractor"] == extractor.name and prov["output"] == output
        assert prov["kind"] == ("video" if output in ("vad", "egemaps") else "frames")
        assert prov["rate"] == {"egemaps": None, "vad": None, "egemaps-lld": 100.0}.get(output, 50.0)
        assert prov["dim"] == {"vad": 3, "vad-frames": 3, "egemaps": 88, "egemaps-lld": 25}.get(output, 32)
        assert prov["dtype"] == "float32" and prov["config"] == extractor.config.to_dict()
        assert prov["created"] and prov["host"] and prov["libraries"]["numpy"] and "library_versions" not in prov
        if output.startswith(("wav2vec2", "vad", "hubert")):
            assert prov["model_id"] == tiny_models[extractor.name]
            assert set(prov["model"]["weights_sha256"]) == {"model.safetensors"}
            assert prov["libraries"]["torch"]
        else:
            assert prov["model_id"] == "opensmile/eGeMAPSv02" and prov["columns"][0]


def test_batched_and_alone_give_the_same_arrays(dataset, reference, speech_settings, tmp_path):
    """Each clip alone (batch 1, pool 1, inline decode and writes) equals the pooled, batched run."""
    root, ids = dataset
    alone = RunOptions(pool_size=1, prefetch=0, writer_thread=False, progress=False)
    run_extraction("clips", root, ALL, tmp_path / "alone.zarr", settings=speech_settings, batch_size=1, options=alone)
    assert_same_store(reference[0], FeatureStore.open(tmp_path / "alone.zarr"), ids)


def test_streamed_long_clips_equal_in_memory_and_windowing_is_close(dataset, speech_settings, tmp_path):
    root, ids = dataset
    windowed = {n: {**s, "window_s": 1.0, "context_s": 0.5, "batch_size": 2} for n, s in speech_settings.items()}
    speech = ["wav2vec2", "vad", "hubert"]
    outputs = ["wav2vec2", "vad", "vad-frames", "hubert"]
    threaded = RunOptions(prefetch=3, writer_thread=True, progress=False)  # the GPU default, on CPU
    in_memory = run_extraction("clips", root, speech, tmp_path / "mem.zarr", settings=windowed, options=threaded)
    streamed = run_extraction(
        "clips", root, speech, tmp_path / "stream.zarr", settings=windowed,
        options=RunOptions(stream_above_s=2.0, block_s=0.37, progress=False),
    )
    assert in_memory.done == streamed.done == len(ids)
    mem, stream = FeatureStore.open(tmp_path / "mem.zarr"), FeatureStore.open(tmp_path / "stream.zarr")
    assert_same_store(mem, stream, ids, outputs, atol=1e-5)

    # windowed (1 s windows + 0.5 s context) vs whole clips: only the attention context differs
    whole = run_extraction("clips", root, speech, tmp_path / "whole.zarr", settings=speech_settings, options=QUIET)
    assert whole.done == len(ids)
    full = FeatureStore.open(tmp_path / "whole.zarr")
    for output in outputs:
        for vid in ids:
            a, ta = arrays(full, output, vid)
            b, tb = arrays(stream, output, vid)
            np.testing.assert_array_equal(ta, tb)
            assert np.abs(a - b).max() < 0.1 * np.abs(a).mean() + 1e-6, (output, vid)


def test_speech_stream_in_odd_blocks_equals_extract(tiny_models, clip_tools):
    _, _, speechlike = clip_tools
    clip = speechlike(16_000 * 7 + 123, seed=3)
    extractor = ax.create_extractor("vad", model=tiny_models["vad"], window_s=1.5, context_s=0.5, batch_size=3).load()
    stats = WaveStats()
    for start in range(0, len(clip), 5_000):
        stats = stats.add(clip[start : start + 5_000])
    assert stats.n_samples == len(clip)
    assert stats.mean == pytest.approx(np.mean(clip, dtype=np.float64), rel=1e-9)
    assert stats.var == pytest.approx(np.var(clip, dtype=np.float64), rel=1e-9)
    stream = extractor.open_stream(stats)
    parts = {}
    for start in range(0, len(clip), 4_321):
        for name, features in stream.push(clip[start : start + 4_321]).items():
            parts.setdefault(name, []).append(features)
    for name, features in stream.close().items():
        parts.setdefault(name, []).append(features)
    whole = extractor.extract(clip)
    for name in whole:
        got = ax.Features.concatenate(parts[name])
        np.testing.assert_array_equal(got.times, whole[name].times)
        np.testing.assert_allclose(got.values, whole[name].values, atol=1e-5)
    with pytest.raises(ax.InputError, match="more samples"):
        extractor.open_stream(WaveStats.of(clip[:16_000])).push(clip[:20_000])


# --------------------------------------------------------------------------- failures


def test_broken_files_are_recorded_and_good_ones_done(tmp_path, clip_tools, speech_settings):
    from affectstore.testing.datasets import make_empty_file, make_media, make_truncated_file

    write_clips, add_rows, speechlike = clip_tools
    root = tmp_path / "clips"
    good = write_clips(root, (1.0, 1.5, 0.8, 1.2), exts=(".wav", ".mp4"))
    make_empty_file(root / "bad/empty.wav")
    make_truncated_file(root / "bad/truncated.mp4", keep=0.4, duration=1.0)
    make_media(root / "bad/silent_film.mp4", 1.0, audio=False)
    make_media(root / "bad/too_short.wav", signal=speechlike(200, 0))  # 12.5 ms: below every model's minimum
    broken = ["bad/empty.wav", "bad/truncated.mp4", "bad/silent_film.mp4", "bad/too_short.wav"]
    add_rows(root, broken)

    summary = run_extraction("clips", root, ["wav2vec2", "egemaps"], tmp_path / "s.zarr", settings=speech_settings, options=QUIET)
    assert (summary.done, summary.failed, summary.skipped, summary.selected) == (4, 4, 0, 8)
    store = FeatureStore.open(tmp_path / "s.zarr")
    for feature in ("wav2vec2", "egemaps", "egemaps-lld"):
        assert sorted(store.completed("clips", feature)) == sorted(good)
        failures = {f.video_id: f for f in store.failures("clips", feature)}
        assert sorted(failures) == sorted(broken)
        assert failures["bad/empty.wav"].stage == "decode" and "EmptyMediaError" in failures["bad/empty.wav"].reason
        assert "0 bytes" in failures["bad/empty.wav"].reason
        assert failures["bad/truncated.mp4"].stage == "decode" and "CorruptMediaError" in failures["bad/truncated.mp4"].reason
        assert failures["bad/silent_film.mp4"].stage == "decode" and "NoAudioStreamError" in failures["bad/silent_film.mp4"].reason
        assert failures["bad/too_short.wav"].stage == "input" and "too short" in failures["bad/too_short.wav"].reason
        assert all(f.config_hash == store.provenance("clips", feature)["config_hash"] for f in failures.values())
    text = summary.text()
    assert "done 4, skipped 0, failed 4 of 8" in text and "bad/silent_film.mp4 [wav2vec2] decode: NoAudioStreamError" in text
    assert not summary.packed  # incomplete feature sets are not packed

    # failures are not "done": the next run tries them again (and they fail again)
    again = run_extraction("clips", root, ["wav2vec2", "egemaps"], tmp_path / "s.zarr", settings=speech_settings, options=QUIET)
    assert (again.done, again.failed, again.skipped) == (0, 4, 4)


def test_model_that_cannot_load_stops_once_with_advice(dataset, tmp_path):
    root, _ = dataset
    with pytest.raises(ExtractionError, match=r"(?s)could not load model 'nobody/no-such-model'.*local folder.*HF_HUB_OFFLINE=1"):
        run_extraction("clips", root, ["wav2vec2"], tmp_path / "s.zarr", settings={"wav2vec2": {"model": "nobody/no-such-model"}}, options=QUIET)
    store = FeatureStore.open(tmp_path / "s.zarr")
    assert "clips" not in store.datasets() or store.features("clips") == []  # nothing recorded per video


# --------------------------------------------------------------------------- resume, config changes, selection


def counting(monkeypatch, extractor):
    calls = []
    original = extractor.extract_batch

    def extract_batch(waveforms):
        calls.append(len(waveforms))
        return original(waveforms)

    monkeypatch.setattr(extractor, "extract_batch", extract_batch)
    return calls


def test_resume_skips_done_videos(dataset, tiny_models, tmp_path, monkeypatch):
    root, ids = dataset
    first = ax.create_extractor("wav2vec2", model=tiny_models["wav2vec2"])
    calls = counting(monkeypatch, first)
    summary = run_extraction("clips", root, [first], tmp_path / "s.zarr", limit=2, options=QUIET)
    assert (summary.done, summary.left_by_limit, sum(calls)) == (2, len(ids) - 2, 2)
    assert not summary.packed  # --limit left videos out

    second = ax.create_extractor("wav2vec2", model=tiny_models["wav2vec2"])
    calls = counting(monkeypatch, second)
    summary = run_extraction("clips", root, [second], tmp_path / "s.zarr", options=QUIET)
    assert (summary.done, summary.skipped, sum(calls)) == (len(ids) - 2, 2, len(ids) - 2)
    assert summary.packed == ["wav2vec2"]

    third = ax.create_extractor("wav2vec2", model=tiny_models["wav2vec2"])
    calls = counting(monkeypatch, third)
    summary = run_extraction("clips", root, [third], tmp_path / "s.zarr", options=QUIET)
    assert (summary.done, summary.skipped, calls) == (0, len(ids), [])
    assert not third.loaded  # nothing to do: the model is not even loaded


def test_config_change_under_the_same_name_is_refused_before_any_work(dataset, tiny_models, tmp_path):
    root, _ = dataset
    run_extraction("clips", root, ["wav2vec2"], tmp_path / "s.zarr", settings={"wav2vec2": {"model": tiny_models["wav2vec2"]}}, limit=1, options=QUIET)
    changed = ax.create_extractor("wav2vec2", model=tiny_models["wav2vec2"], layer=1)
    with pytest.raises(ConfigMismatchError, match=r"(?s)refusing to mix.*layer: stored None, requested 1"):
        run_extraction("clips", root, [changed], tmp_path / "s.zarr", options=QUIET)
    assert not changed.loaded
    assert len(FeatureStore.open(tmp_path / "s.zarr").completed("clips", "wav2vec2")) == 1
    # under another name it is a new feature set, side by side
    renamed = ax.create_extractor("wav2vec2", {"name": "w2v-l1"}, model=tiny_models["wav2vec2"], layer=1)
    assert run_extraction("clips", root, [renamed], tmp_path / "s.zarr", limit=1, options=QUIET).done == 1
    assert FeatureStore.open(tmp_path / "s.zarr").features("clips") == ["w2v-l1", "wav2vec2"]


def test_shards_split_the_selection_and_the_last_one_packs(dataset, tmp_path):
    root, ids = dataset
    first = run_extraction("clips", root, ["egemaps"], tmp_path / "s.zarr", shard="1/2", options=QUIET)
    store = FeatureStore.open(tmp_path / "s.zarr")
    part = set(store.completed("clips", "egemaps"))
    assert first.selected == len(part) == 3 and not first.packed
    second = run_extraction("clips", root, ["egemaps"], tmp_path / "s.zarr", shard=(1, 2), options=QUIET)
    assert second.done == 3 and second.skipped == 0
    assert set(store.completed("clips", "egemaps")) == set(ids) and sorted(second.packed) == ["egemaps", "egemaps-lld"]


def test_videos_split_and_errors(dataset, tmp_path):
    root, ids = dataset
    summary = run_extraction("clips", root, ["egemaps"], tmp_path / "s.zarr", videos=[ids[3], ids[1]], options=QUIET)
    assert summary.done == 2 and set(FeatureStore.open(tmp_path / "s.zarr").completed("clips", "egemaps")) == {ids[1], ids[3]}
    with pytest.raises(ValueError, match=r"no video 'spk1/clip_00\.wa' .*did you mean 'spk1/clip_00\.wav'"):
        run_extraction("clips", root, ["egemaps"], tmp_path / "s.zarr", videos=["spk1/clip_00.wa"], options=QUIET)
    with pytest.raises(ax.UnknownExtractorError, match=r"Unknown feature 'wav2vec3' \(did you mean 'wav2vec2'\?\)\. Known extractors: .*egemaps, .*hubert, .*wav2vec2"):
        run_extraction("clips", root, ["wav2vec3"], tmp_path / "s.zarr", options=QUIET)
    with pytest.raises(ExtractionError, match="device must be cpu, cuda or cuda:K.*Got 'gpu0'"):
        run_extraction("clips", root, ["egemaps"], tmp_path / "s.zarr", device="gpu0", options=QUIET)
    with pytest.raises(ExtractionError, match="'vad' would be written by two extractors"):
        run_extraction("clips", root, ["vad", ax.create_extractor("wav2vec2", {"name": "vad"})], tmp_path / "s.zarr", options=QUIET)


def test_parse_shard_and_settings():
    assert parse_shard("1/4") == (0, 4) and parse_shard("4/4") == (3, 4)
    assert parse_shard(None, {}) is None
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}) == (2, 4)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}) == (0, 2)
    for bad in ("0/2", "3/2"):
        with pytest.raises(ExtractionError, match=rf"--shard I/N counts from 1: I must be in 1\.\.2 .*Got '{bad}'"):
            parse_shard(bad)
    with pytest.raises(ExtractionError, match="--shard must look like I/N.*Got 'half'"):
        parse_shard("half")
    with pytest.raises(ExtractionError, match="SLURM_ARRAY_TASK_ID=5 is not within the array of 4 tasks"):
        parse_shard(None, {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"})
    assert parse_settings(["wav2vec2.layer=6", "vad.model=/m/vad", "hubert.normalize=false"]) == {
        "wav2vec2": {"layer": 6}, "vad": {"model": "/m/vad"}, "hubert": {"normalize": False},
    }
    with pytest.raises(ExtractionError, match="FEATURE.SETTING=VALUE.*Got 'layer=6'"):
        parse_settings(["layer=6"])


@pytest.mark.parametrize("prefetch", [0, 2])
def test_unexpected_decode_error_is_recorded_and_the_run_goes_on(dataset, tmp_path, monkeypatch, prefetch):
    """An error other than MediaError while decoding one video fails that video only; on the
    prefetch thread it must not end the thread and leave the run waiting forever."""
    import threading

    from affectstore.extract.feeders import audio as runner_module

    root, ids = dataset
    original = runner_module.decode_audio

    def decode_audio(path, *args, **kwargs):
        if str(path).endswith(ids[2]):
            raise RuntimeError("decoder blew up")
        return original(path, *args, **kwargs)

    monkeypatch.setattr(runner_module, "decode_audio", decode_audio)
    outcome = {}

    def target():
        try:
            outcome["summary"] = run_extraction(
                "clips", root, ["egemaps"], tmp_path / "s.zarr", options=RunOptions(prefetch=prefetch, progress=False)
            )
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the run hung after a decode error"
    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert (summary.done, summary.failed) == (len(ids) - 1, 1)
    (failure,) = {f for f in summary.failures if f.feature == "egemaps"}
    assert (failure.video_id, failure.stage, failure.reason) == (ids[2], "decode", "RuntimeError: decoder blew up")


def test_two_clips_datasets_in_one_store_need_two_names(dataset, clip_tools, tmp_path):
    from affectstore.extract.runner import extract_command

    root, ids = dataset
    write_clips, _, _ = clip_tools
    other = tmp_path / "other-clips"
    other_ids = write_clips(other, (0.8, 1.1), exts=(".wav",))
    store = tmp_path / "s.zarr"
    run_extraction("clips", root, ["egemaps"], store, options=QUIET)
    with pytest.raises(ExtractionError, match=r"holds egemaps of dataset clips at .*; this run reads clips at .*other-clips\. "
                                              r"Pass --dataset-name NAME \(e\.g\. --dataset-name other-clips\)"):
        run_extraction("clips", other, ["egemaps"], store, options=QUIET)
    summary = extract_command("clips", str(other), features="egemaps", store=str(store), dataset_name="other", progress=False)
    assert summary.done == len(other_ids)
    opened = FeatureStore.open(store)
    assert opened.datasets() == ["clips", "other"]
    assert sorted(opened.completed("other", "egemaps")) == sorted(other_ids)
    assert sorted(opened.completed("clips", "egemaps")) == ids
    assert opened.provenance("other", "egemaps")["dataset"]["root"] == str(other)


def test_marks_record_media_sizes_and_hashes_with_hash_media(dataset, tmp_path):
    import hashlib

    from affectstore.store import encode_id

    root, ids = dataset
    run_extraction("clips", root, ["egemaps"], tmp_path / "s.zarr", options=RunOptions(progress=False, hash_media=True))
    store = FeatureStore.open(tmp_path / "s.zarr")
    marks = store.marks("clips", "egemaps")
    for vid in ids:
        (item,) = marks[encode_id(vid)]["media"]["files"]
        path = root / vid
        assert item == {"path": vid, "size": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    origin = store.provenance("clips", "egemaps")["dataset"]
    assert origin["media_bytes"] == sum((root / v).stat().st_size for v in ids) and len(origin["sha256"]) == 64
    run_extraction("clips", root, ["egemaps"], tmp_path / "t.zarr", videos=[ids[0]], options=QUIET)
    plain = FeatureStore.open(tmp_path / "t.zarr")
    (item,) = plain.marks("clips", "egemaps")[encode_id(ids[0])]["media"]["files"]
    assert "sha256" not in item and item["size"] == (root / ids[0]).stat().st_size
    assert "sha256" not in plain.provenance("clips", "egemaps")["dataset"]
