"""wav2vec2, HuBERT and VAD extractors on tiny random checkpoints, loaded through the real code."""

import logging

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

import affectstore.extract as ax  # noqa: E402
from affectstore.testing import models  # noqa: E402

HIDDEN = 32


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "wav2vec2": models.build_wav2vec2(root / "wav2vec2"),
        "wav2vec2-0": models.build_wav2vec2(root / "wav2vec2-0", num_layers=0),
        "wav2vec2-group": models.build_wav2vec2(
            root / "wav2vec2-group", feat_extract_norm="group", stable_layer_norm=False, do_normalize=False
        ),
        "hubert": models.build_hubert(root / "hubert"),
        "vad": models.build_vad(root / "vad"),
    }


def speechlike(n_samples, seed):
    """Noise with a slow loudness contour, so frames differ from their neighbours."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 16_000
    return (rng.standard_normal(n_samples) * 0.1 * (1.2 + np.sin(2 * np.pi * 0.7 * t + seed))).astype(np.float32)


CLIPS = [speechlike(n, seed) for seed, n in enumerate((16_000, 7_777, 40_321, 400, 23_000))]


def test_hub_id_not_in_cache_fails_with_advice():
    with pytest.raises(ax.ModelLoadError, match=r"(?s)Could not read the model config of 'nobody/no-such-model'.*HF_HUB_OFFLINE"):
        ax.create_extractor("wav2vec2", model="nobody/no-such-model").load()


# --------------------------------------------------------------------------- wav2vec2


def test_wav2vec2_shapes_times_and_provenance(checkpoints):
    folder = checkpoints["wav2vec2"]
    extractor = ax.create_extractor("wav2vec2", model=str(folder)).load()
    result = extractor.extract(CLIPS[0])
    assert list(result) == ["wav2vec2"]
    features = result["wav2vec2"]
    assert features.values.shape == (49, HIDDEN) and features.values.dtype == np.float32
    np.testing.assert_allclose(features.times, 0.0125 + 0.02 * np.arange(49))
    assert np.isfinite(features.values).all()

    spec = extractor.output_specs()["wav2vec2"]
    assert (spec.dim, spec.rate, spec.dtype, spec.per_video) == (HIDDEN, 50.0, "float32", False)
    provenance = extractor.provenance()["wav2vec2"]
    assert provenance["extractor"] == "wav2vec2" and provenance["extractor_version"] == "1"
    assert provenance["config_hash"] == extractor.config_hash
    assert provenance["config"]["model"] == str(folder) and provenance["config"]["batch_size"] == 8
    assert (provenance["dim"], provenance["rate"], provenance["dtype"]) == (HIDDEN, 50.0, "float32")
    model = provenance["model"]
    assert set(model["weights_sha256"]) == {"model.safetensors"}
    assert model["weights_sha256"]["model.safetensors"] == ax.base.sha256_file(folder / "model.safetensors")
    assert (model["layer"], model["num_hidden_layers"], model["normalize"]) == (2, 2, True)
    assert (model["frame_stride_samples"], model["receptive_field_samples"]) == (320, 400)
    assert provenance["libraries"]["torch"] == torch.__version__
    assert provenance["libraries"]["transformers"]


def test_wav2vec2_equals_transformers_on_normalised_input(checkpoints):
    transformers = pytest.importorskip("transformers")
    folder = checkpoints["wav2vec2"]
    reference_model = transformers.Wav2Vec2Model.from_pretrained(str(folder)).eval()
    processor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(str(folder))
    inputs = processor(CLIPS[2], sampling_rate=16_000, return_tensors="pt")
    with torch.no_grad():
        reference = reference_model(inputs.input_values, output_hidden_states=True)
    for layer, expected in [(None, reference.last_hidden_state), (-1, reference.last_hidden_state),
                            (1, reference.hidden_states[1]), (0, reference.hidden_states[0]),
                            (-2, reference.hidden_states[1])]:
        ours = ax.create_extractor("wav2vec2", model=str(folder), layer=layer).load().extract(CLIPS[2])["wav2vec2"]
        np.testing.assert_allclose(ours.values, expected[0].numpy(), atol=1e-4, err_msg=f"layer={layer}")


def test_layer_out_of_range_names_the_range(checkpoints):
    with pytest.raises(ValueError, match=r"layer must be in the range \[-3, 2\] .*\(2 transformer layers\)\. Got 5 instead\."):
        ax.create_extractor("wav2vec2", model=str(checkpoints["wav2vec2"]), layer=5).load()


@pytest.mark.parametrize("name", ["wav2vec2", "hubert", "vad", "wav2vec2-group"])
def test_batch_equals_alone(checkpoints, name):
    extractor_name = name.split("-")[0]
    extractor = ax.create_extractor(extractor_name, model=str(checkpoints[name]), batch_size=3).load()
    batch = extractor.extract_batch(CLIPS)
    assert len(batch) == len(CLIPS)
    for clip, together in zip(CLIPS, batch, strict=True):
        alone = extractor.extract(clip)
        assert alone.keys() == together.keys() == set(extractor.output_names)
        for output in alone:
            np.testing.assert_array_equal(alone[output].times, together[output].times)
            np.testing.assert_allclose(together[output].values, alone[output].values, atol=1e-4, err_msg=output)


def test_batch_differs_between_clips(checkpoints):
    """Guards the test above: different clips must give clearly different outputs."""
    extractor = ax.create_extractor("vad", model=str(checkpoints["vad"])).load()
    first, second = extractor.extract_batch(CLIPS[:2])
    assert np.abs(first["vad"].values - second["vad"].values).max() > 1e-3


LONG = speechlike(16_000 * 21 + 123, seed=9)


def test_windowing_is_exact_without_attention(checkpoints):
    """With no transformer layer every frame is local: stitched windows must equal the whole clip."""
    folder = str(checkpoints["wav2vec2-0"])
    whole = ax.create_extractor("wav2vec2", model=folder, window_s=60.0).load()
    windowed = ax.create_extractor("wav2vec2", model=folder, window_s=3.0, context_s=0.5, batch_size=2).load()
    assert windowed.is_long(len(LONG)) and not whole.is_long(len(LONG))
    a, b = whole.extract(LONG)["wav2vec2"], windowed.extract(LONG)["wav2vec2"]
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_allclose(b.values, a.values, atol=1e-4)


@pytest.mark.parametrize("name", ["wav2vec2", "vad"])
def test_windowed_matches_whole_clip(checkpoints, name):
    """With attention the context differs at window edges, so only a tolerance holds; a one-frame
    misalignment would be far outside it (neighbouring frames differ by much more)."""
    folder = str(checkpoints[name])
    whole = ax.create_extractor(name, model=folder, window_s=60.0).load()
    windowed = ax.create_extractor(name, model=folder, window_s=4.0, context_s=1.0, batch_size=2).load()
    a, b = whole.extract(LONG), windowed.extract(LONG)
    for output in whole.output_names:
        np.testing.assert_array_equal(a[output].times, b[output].times)
        scale = np.abs(a[output].values).mean()
        assert np.abs(a[output].values - b[output].values).max() < 0.05 * scale, output
    frames = a[whole.output_names[-1]].values
    assert np.abs(frames[1:] - frames[:-1]).mean() > 0.2 * np.abs(frames).mean()


def test_stream_yields_time_ordered_chunks_equal_to_extract(checkpoints):
    extractor = ax.create_extractor("vad", model=str(checkpoints["vad"]), window_s=3.0, context_s=0.5, batch_size=2).load()
    chunks = list(extractor.stream(LONG))
    whole = extractor.extract(LONG)
    n_windows = int(np.ceil(whole["vad-frames"].values.shape[0] / 150))
    assert len(chunks) == int(np.ceil(n_windows / 2)) > 1
    assert all("vad" not in c for c in chunks[:-1]) and "vad" in chunks[-1]
    frames = ax.Features.concatenate([c["vad-frames"] for c in chunks])
    assert np.all(np.diff(frames.times) > 0)
    np.testing.assert_array_equal(frames.times, whole["vad-frames"].times)
    np.testing.assert_allclose(frames.values, whole["vad-frames"].values, atol=1e-5)
    np.testing.assert_allclose(chunks[-1]["vad"].values, whole["vad"].values, atol=1e-5)


def test_short_clip_is_a_single_chunk(checkpoints):
    extractor = ax.create_extractor("wav2vec2", model=str(checkpoints["wav2vec2"])).load()
    (chunk,) = list(extractor.stream(CLIPS[0]))
    np.testing.assert_allclose(chunk["wav2vec2"].values, extractor.extract(CLIPS[0])["wav2vec2"].values, atol=1e-5)


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (np.zeros((2, 16_000), np.float32), r"mono waveform as a 1-D array, got shape \(2, 16000\)"),
        (np.zeros(399, np.float32), r"Clip too short for wav2vec2: 399 samples \(0\.025 s\), need at least 400"),
        (np.zeros(16_000, np.int16), r"Expected float samples in \[-1, 1\], got dtype int16"),
        (np.full(16_000, np.nan, np.float32), "16000 NaN or infinite samples"),
    ],
)
def test_bad_input_is_rejected(checkpoints, waveform, message):
    extractor = ax.create_extractor("wav2vec2", model=str(checkpoints["wav2vec2"])).load()
    with pytest.raises(ax.InputError, match=message):
        extractor.extract(waveform)


def test_float16_on_cpu_computes_float32_and_stores_float16(checkpoints):
    folder = str(checkpoints["wav2vec2"])
    full = ax.create_extractor("wav2vec2", model=folder).load()
    half = ax.create_extractor("wav2vec2", model=folder, dtype="float16").load()
    brain = ax.create_extractor("wav2vec2", model=folder, dtype="bfloat16").load()
    reference = full.extract(CLIPS[0])["wav2vec2"].values
    values = half.extract(CLIPS[0])["wav2vec2"].values
    assert values.dtype == np.float16
    np.testing.assert_allclose(values.astype(np.float32), reference, rtol=2e-3, atol=2e-3)
    assert brain.extract(CLIPS[0])["wav2vec2"].values.dtype == np.float32
    assert half.provenance()["wav2vec2"]["dtype"] == "float16"
    assert half.provenance()["wav2vec2"]["model"]["compute_dtype"] == "float32"
    assert half.config_hash != full.config_hash


def test_missing_preprocessor_config_guesses_and_warns(tmp_path, caplog):
    folder = models.build_wav2vec2(tmp_path / "bare", preprocessor=False)
    with caplog.at_level(logging.WARNING, logger="affectstore.extract.wav2vec2"):
        extractor = ax.create_extractor("wav2vec2", model=str(folder)).load()
    assert "no preprocessor_config.json" in caplog.text
    assert extractor.provenance()["wav2vec2"]["model"]["normalize"] is True
    assert ax.create_extractor("wav2vec2", model=str(folder), normalize=False).load().provenance()["wav2vec2"]["model"]["normalize"] is False


def test_wrong_model_family_is_named(checkpoints):
    with pytest.raises(ax.ModelLoadError, match=r"is a 'hubert' model; the 'wav2vec2' extractor expects 'wav2vec2'"):
        ax.create_extractor("wav2vec2", model=str(checkpoints["hubert"])).load()


# --------------------------------------------------------------------------- hubert


@pytest.mark.parametrize("ctc_head", [True, False])
def test_hubert_loads_ctc_and_bare_checkpoints(tmp_path, ctc_head):
    folder = models.build_hubert(tmp_path / "hubert", ctc_head=ctc_head)
    extractor = ax.create_extractor("hubert", model=str(folder)).load()
    features = extractor.extract(CLIPS[0])["hubert"]
    assert features.values.shape == (49, HIDDEN)
    np.testing.assert_allclose(features.times, 0.0125 + 0.02 * np.arange(49))
    provenance = extractor.provenance()["hubert"]
    assert provenance["model"]["model_type"] == "hubert" and provenance["rate"] == 50.0


def test_hubert_default_model():
    assert ax.HubertExtractorConfig().model == "facebook/hubert-large-ls960-ft"
    assert ax.Wav2Vec2ExtractorConfig().model == "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim"


# --------------------------------------------------------------------------- vad


def test_vad_outputs_and_head(checkpoints):
    folder = checkpoints["vad"]
    extractor = ax.create_extractor("vad", model=str(folder)).load()
    result = extractor.extract(CLIPS[0])
    video, frames = result["vad"], result["vad-frames"]
    assert video.values.shape == (1, 3) and frames.values.shape == (49, 3)
    np.testing.assert_allclose(video.times, [0.5])
    np.testing.assert_allclose(frames.times, 0.0125 + 0.02 * np.arange(49))

    # The head as the model card defines it, computed here from the checkpoint's own tensors.
    from safetensors.numpy import load_file

    weights = load_file(folder / "model.safetensors")
    hidden = ax.create_extractor("wav2vec2", model=str(folder)).load().extract(CLIPS[0])["wav2vec2"].values

    def head(x):
        x = np.tanh(x @ weights["classifier.dense.weight"].T + weights["classifier.dense.bias"])
        return x @ weights["classifier.out_proj.weight"].T + weights["classifier.out_proj.bias"]

    np.testing.assert_allclose(video.values, head(hidden.mean(axis=0, keepdims=True)), atol=1e-4)
    np.testing.assert_allclose(frames.values, head(hidden), atol=1e-4)

    specs = extractor.output_specs()
    assert specs["vad"].columns == ("arousal", "dominance", "valence") and specs["vad"].rate is None
    assert specs["vad-frames"].rate == 50.0
    provenance = extractor.provenance()
    assert provenance["vad"]["rate"] is None and provenance["vad-frames"]["rate"] == 50.0
    assert provenance["vad"]["columns"] == ["arousal", "dominance", "valence"]
    assert provenance["vad"]["config_hash"] == provenance["vad-frames"]["config_hash"] == extractor.config_hash


@pytest.mark.parametrize("kwargs", [{"head": False}, {"head_prefix": "head"}])
def test_vad_checkpoint_without_the_head_fails_loudly(tmp_path, kwargs):
    folder = models.build_vad(tmp_path / "headless", **kwargs)
    with pytest.raises(ax.ModelLoadError, match=r"no regression head weight\(s\) classifier\.dense\.bias, classifier\.dense\.weight"):
        ax.create_extractor("vad", model=str(folder)).load()


def test_plain_wav2vec2_checkpoint_is_not_a_vad_model(checkpoints):
    with pytest.raises(ax.ModelLoadError, match="no regression head"):
        ax.create_extractor("vad", model=str(checkpoints["wav2vec2"])).load()


def test_hub_id_loads_from_the_cache_and_records_the_commit(checkpoints, tmp_path):
    commit = "1234567890abcdef1234567890abcdef12345678"
    models.install_in_hub_cache(checkpoints["vad"], tmp_path / "hub", "someone/tiny-vad", commit=commit)
    extractor = ax.create_extractor("vad", model="someone/tiny-vad", cache_dir=str(tmp_path / "hub")).load()
    model = extractor.provenance()["vad"]["model"]
    assert (model["id"], model["revision"], model["commit"]) == ("someone/tiny-vad", None, commit)
    assert model["weights_sha256"] == {"model.safetensors": ax.base.sha256_file(checkpoints["vad"] / "model.safetensors")}
    from_folder = ax.create_extractor("vad", model=str(checkpoints["vad"])).load()
    np.testing.assert_allclose(extractor.extract(CLIPS[0])["vad"].values, from_folder.extract(CLIPS[0])["vad"].values, atol=1e-6)
    # the cache location does not change the output, so not the hash either
    assert extractor.config_hash == ax.create_extractor("vad", model="someone/tiny-vad").config_hash


def test_group_norm_model_equals_transformers_on_the_whole_clip(checkpoints):
    """A group-norm front end (wav2vec2-base, hubert-base) normalises over every input sample,
    the trailing ones that make no frame included: they must be fed, alone and in a batch with
    a clip of the same frame count but another sample count."""
    transformers = pytest.importorskip("transformers")
    folder = checkpoints["wav2vec2-group"]
    reference_model = transformers.Wav2Vec2Model.from_pretrained(str(folder)).eval()
    clips = [speechlike(16_000, 11), speechlike(16_040, 12), speechlike(16_079, 13)]  # 49 frames each
    extractor = ax.create_extractor("wav2vec2", model=str(folder), batch_size=3).load()
    assert {len(f) for f in (extractor.extract(c)["wav2vec2"] for c in clips)} == {49}
    batch = extractor.extract_batch(clips)
    for clip, together in zip(clips, batch, strict=True):
        with torch.no_grad():
            expected = reference_model(torch.from_numpy(clip)[None]).last_hidden_state[0].numpy()
        np.testing.assert_allclose(extractor.extract(clip)["wav2vec2"].values, expected, atol=1e-4)
        np.testing.assert_allclose(together["wav2vec2"].values, expected, atol=1e-4)
    # the streamed path feeds the same samples
    clip = clips[2]
    stream = extractor.open_stream(ax.WaveStats.of(clip))
    parts = [stream.push(clip[:10_000]), stream.push(clip[10_000:15_900]), stream.push(clip[15_900:]), stream.close()]
    streamed = ax.Features.concatenate([p["wav2vec2"] for p in parts if "wav2vec2" in p])
    np.testing.assert_allclose(streamed.values, batch[2]["wav2vec2"].values, atol=1e-5)
