"""The extractor contract: registry, configs and their hash, segment planning, small helpers."""

import hashlib
import json

import numpy as np
import pytest

import affectstore.extract as ax
from affectstore.store import config_hash as store_config_hash
from affectstore.extract import audio, base, errors


# --------------------------------------------------------------------------- registry


AUDIO = ["egemaps", "hubert", "vad", "wav2vec2"]


def test_the_audio_extractors_are_registered_with_their_input():
    assert set(AUDIO) <= set(ax.available_extractors())
    assert ax.get_extractor_class("vad") is ax.VadExtractor
    for name in AUDIO:
        assert ax.get_extractor_class(name).input is ax.Input.AUDIO


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ax.UnknownExtractorError, match=r"Unknown extractor 'wav2vce2' \(did you mean 'wav2vec2'\?\)\. Known extractors: .*egemaps, .*hubert, .*wav2vec2"):
        ax.get_extractor_class("wav2vce2")
    with pytest.raises(LookupError, match="Known extractors"):
        ax.create_extractor("nope")


def test_reserved_name_is_reported_as_planned(monkeypatch):
    import affectstore.extract.registry as registry

    monkeypatch.setattr(registry, "RESERVED_NAMES", ("emotion2vec",))
    with pytest.raises(ax.UnknownExtractorError, match=r"'emotion2vec' is planned but not available yet\. Available extractors: .*egemaps"):
        ax.create_extractor("emotion2vec")


def test_registering_a_taken_name_fails_and_keeps_the_first():
    class Impostor(ax.Wav2Vec2Extractor):
        name = "wav2vec2"

    with pytest.raises(ax.DuplicateExtractorError, match=r"'wav2vec2' is already registered by .*Wav2Vec2Extractor"):
        ax.register(Impostor)
    assert ax.get_extractor_class("wav2vec2") is ax.Wav2Vec2Extractor


def test_register_and_unregister_a_new_name():
    class Quiet(ax.EgemapsExtractor):
        name = "egemaps-test-copy"

    ax.register(Quiet)
    try:
        assert ax.create_extractor("egemaps-test-copy").output_names == ("egemaps-test-copy", "egemaps-test-copy-lld")
        with pytest.raises(ax.DuplicateExtractorError, match="egemaps-test-copy"):
            ax.register(Quiet)
    finally:
        ax.unregister("egemaps-test-copy")
    with pytest.raises(ax.UnknownExtractorError, match="egemaps-test-copy"):
        ax.get_extractor_class("egemaps-test-copy")


def test_registering_without_a_name_fails():
    class Nameless(ax.Extractor):
        pass

    with pytest.raises(ValueError, match="must set a class attribute 'name'"):
        ax.register(Nameless)


# --------------------------------------------------------------------------- configs


def test_create_extractor_from_a_recipe_mapping_and_overrides():
    extractor = ax.create_extractor("hubert", {"layer": 3, "batch_size": 2}, device="cuda:1")
    assert isinstance(extractor.config, ax.HubertExtractorConfig)
    assert extractor.config.layer == 3 and extractor.config.batch_size == 2 and extractor.config.device == "cuda:1"
    assert extractor.config.model == "facebook/hubert-large-ls960-ft"
    assert not extractor.loaded  # constructing never loads a model


def test_unknown_setting_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown setting\(s\) 'layers' for HubertExtractorConfig\. Valid settings: .*layer"):
        ax.create_extractor("hubert", {"layers": 3})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "float64"}, r"dtype must be one of float32, float16, bfloat16\. Got 'float64' instead\."),
        ({"batch_size": 0}, r"batch_size must be an int >= 1\. Got 0 instead\."),
        ({"window_s": -1}, r"window_s must be a number of seconds > 0\. Got -1 instead\."),
        ({"context_s": -0.5}, r"context_s must be a number of seconds >= 0"),
        ({"layer": "last"}, r"layer must be None or an int\. Got 'last' instead\."),
        ({"model": ""}, r"model must be a hub id or a local folder path"),
        ({"name": "a/b"}, r"name must be None or a non-empty string without '/'"),
        ({"device": ""}, r"device must be a non-empty string"),
    ],
)
def test_config_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ax.Wav2Vec2ExtractorConfig(**kwargs)


def test_egemaps_feature_set_validation():
    with pytest.raises(ValueError, match=r"feature_set must be one of eGeMAPSv02, .*Got 'ComParE' instead"):
        ax.EgemapsExtractorConfig(feature_set="ComParE")


def test_config_hash_ignores_device_batch_size_and_name_but_not_output_settings():
    reference = ax.Wav2Vec2Extractor(model="m").config_hash
    assert len(reference) == 16 and int(reference, 16) >= 0
    same = [
        ax.Wav2Vec2Extractor(model="m", device="cuda:0"),
        ax.Wav2Vec2Extractor(model="m", batch_size=64),
        ax.Wav2Vec2Extractor(model="m", name="w2v-last"),
    ]
    assert {e.config_hash for e in same} == {reference}
    different = [
        ax.Wav2Vec2Extractor(model="m", dtype="float16"),
        ax.Wav2Vec2Extractor(model="m", dtype="bfloat16"),
        ax.Wav2Vec2Extractor(model="m", layer=6),
        ax.Wav2Vec2Extractor(model="m", revision="abc123"),
        ax.Wav2Vec2Extractor(model="other"),
        ax.Wav2Vec2Extractor(model="m", window_s=10.0),
        ax.Wav2Vec2Extractor(model="m", normalize=False),
        ax.HubertExtractor(model="m"),  # same fields, other extractor
    ]
    hashes = [e.config_hash for e in different]
    assert reference not in hashes and len(set(hashes)) == len(hashes)


def test_config_hash_is_the_store_hash_of_canonical_json():
    config = ax.VadExtractorConfig(model="some/model", revision="r1", device="cuda")
    fields = {
        "model": "some/model",
        "revision": "r1",
        "dtype": "float32",
        "window_s": 20.0,
        "context_s": 5.0,
        "normalize": None,
    }
    text = json.dumps({"extractor": "vad", "version": "1", "config": fields}, sort_keys=True, separators=(",", ":"))
    # one implementation: the store's config_hash (SHA-256 of canonical JSON, 16 hex digits)
    assert ax.config_hash("vad", "1", config) == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert ax.config_hash("vad", "1", config) == store_config_hash({"extractor": "vad", "version": "1", "config": fields})


def test_config_round_trips_through_its_dict():
    config = ax.Wav2Vec2ExtractorConfig(model="x", layer=-2, dtype="bfloat16", batch_size=3)
    assert ax.Wav2Vec2ExtractorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_extractor_rejects_a_config_of_another_extractor():
    with pytest.raises(TypeError, match="needs a Wav2Vec2ExtractorConfig, got a HubertExtractorConfig"):
        ax.Wav2Vec2Extractor(ax.HubertExtractorConfig())


def test_output_names_follow_the_prefix():
    assert ax.VadExtractor().output_names == ("vad", "vad-frames")
    assert ax.VadExtractor(name="speech-vad").output_names == ("speech-vad", "speech-vad-frames")
    assert ax.EgemapsExtractor().output_names == ("egemaps", "egemaps-lld")
    assert ax.Wav2Vec2Extractor(layer=6, name="w2v-l6").output_names == ("w2v-l6",)


# --------------------------------------------------------------------------- frames and windows


def test_frame_geometry_counts_and_centres():
    geometry = ax.FrameGeometry(stride=320, receptive_field=400)
    assert geometry.rate == 50.0
    assert [geometry.n_frames(n) for n in (0, 399, 400, 719, 720, 16_000)] == [0, 0, 1, 1, 2, 49]
    np.testing.assert_allclose(geometry.times(0, 3), [0.0125, 0.0325, 0.0525])
    assert geometry.times(10, 12).dtype == np.float64


@pytest.mark.parametrize("n_samples", [400, 16_000, 160_000, 160_000 + 321, 1_000_000])
def test_segments_cover_every_frame_once_and_stay_bounded(n_samples):
    geometry = ax.FrameGeometry(stride=320, receptive_field=400)
    window, context = 100, 25
    segments = audio.plan_segments(7, n_samples, geometry, window, context)
    total = geometry.n_frames(n_samples)
    kept = np.concatenate([np.arange(s.keep_start, s.keep_stop) for s in segments])
    np.testing.assert_array_equal(kept, np.arange(total))
    for s in segments:
        assert s.clip == 7
        assert s.stop - s.start <= window + 2 * context
        assert s.start <= s.keep_start < s.keep_stop <= s.stop
        # a segment's samples yield exactly its frames
        first, last = s.sample_range(geometry)
        assert last <= n_samples and geometry.n_frames(last - first) == s.stop - s.start
        # every window carries as much context on each side as the clip has, up to `context`
        if len(segments) > 1:
            assert s.keep_start - s.start == min(context, s.keep_start)
            assert s.stop - s.keep_stop == min(context, total - s.keep_stop)
    assert [s.last for s in segments] == [False] * (len(segments) - 1) + [True]
    assert (len(segments) == 1) == (total <= window + 2 * context)


def test_features_validate_shapes():
    with pytest.raises(ValueError, match=r"values must be 2-D \(T x D\), got shape \(3,\)"):
        ax.Features(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="one entry per row of values"):
        ax.Features(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="float64 seconds, got float32"):
        ax.Features(np.zeros((3, 2)), np.zeros(3, dtype=np.float32))


# --------------------------------------------------------------------------- helpers


def test_normalize_waveform_matches_the_transformers_feature_extractor():
    transformers = pytest.importorskip("transformers")
    waveform = (np.random.default_rng(3).standard_normal(5000) * 0.2 + 0.05).astype(np.float32)
    ours = audio.normalize_waveform(waveform)
    theirs = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)(waveform, sampling_rate=16_000).input_values[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert ours.dtype == np.float32 and abs(ours.mean()) < 1e-5 and abs(ours.std() - 1) < 1e-4


def test_weights_sha256_hashes_only_weight_files(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"abc")
    (tmp_path / "config.json").write_text("{}")
    assert base.weights_sha256(tmp_path) == {"model.safetensors": hashlib.sha256(b"abc").hexdigest()}


def test_missing_dependency_gives_the_install_command():
    with pytest.raises(ax.MissingDependencyError, match=r"pip install 'affectstore\[extract\]'"):
        errors.require("surely_not_an_installed_module_xyz")


def test_library_versions_names_the_packages():
    versions = base.library_versions("torch", "surely-not-installed-xyz")
    assert versions["numpy"] == np.__version__ and versions["surely-not-installed-xyz"] is None
    assert versions["torch"].startswith("2.")


def test_create_extractor_takes_the_name_setting_as_a_keyword():
    """``name`` is both the registry key and a config field; the keyword must reach the config."""
    extractor = ax.create_extractor("wav2vec2", name="w2v-l6", layer=6)
    assert extractor.config.name == "w2v-l6" and extractor.config.layer == 6
    assert extractor.output_names == ("w2v-l6",)
    assert ax.create_extractor("vad", {"batch_size": 2}, name="speech").output_names == ("speech", "speech-frames")
    assert ax.create_extractor("egemaps", ax.EgemapsExtractorConfig(), name="gemaps").output_names == ("gemaps", "gemaps-lld")
