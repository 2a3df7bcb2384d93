"""openSMILE eGeMAPS on synthetic audio and on the real RAVDESS dev clips."""

import numpy as np
import pytest

opensmile = pytest.importorskip("opensmile")

import affectstore.extract as ax  # noqa: E402


@pytest.fixture(scope="module")
def egemaps():
    return ax.create_extractor("egemaps").load()


def tone(seconds, frequency=220.0, seed=0):
    t = np.arange(int(seconds * 16_000)) / 16_000
    noise = np.random.default_rng(seed).standard_normal(t.size) * 0.01
    return (0.3 * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32)


def test_shapes_times_and_provenance(egemaps):
    result = egemaps.extract(tone(1.5))
    func, lld = result["egemaps"], result["egemaps-lld"]
    assert func.values.shape == (1, 88) and func.values.dtype == np.float32
    np.testing.assert_allclose(func.times, [0.75])
    assert lld.values.shape[1] == 25 and 140 <= lld.values.shape[0] <= 150
    np.testing.assert_allclose(np.diff(lld.times), 0.01, atol=1e-9)
    assert np.isfinite(func.values).all() and np.isfinite(lld.values).all()

    specs = egemaps.output_specs()
    assert (specs["egemaps"].dim, specs["egemaps"].rate) == (88, None)
    assert (specs["egemaps-lld"].dim, specs["egemaps-lld"].rate) == (25, 100.0)
    assert specs["egemaps"].columns[0] == "F0semitoneFrom27.5Hz_sma3nz_amean"
    provenance = egemaps.provenance()
    assert provenance["egemaps"]["libraries"]["opensmile"] == opensmile.__version__
    assert provenance["egemaps-lld"]["model"]["id"] == "opensmile/eGeMAPSv02"
    assert provenance["egemaps"]["config_hash"] == egemaps.config_hash


def test_pitch_follows_the_signal(egemaps):
    """F0 mean in semitones from 27.5 Hz: 220 Hz is 36 semitones, 440 Hz is 48."""
    low, high = egemaps.extract_batch([tone(1.0, 220.0), tone(1.0, 440.0, seed=1)])
    column = egemaps.output_specs()["egemaps"].columns.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    assert low["egemaps"].values[0, column] == pytest.approx(36.0, abs=1.0)
    assert high["egemaps"].values[0, column] == pytest.approx(48.0, abs=1.0)


def test_too_short_clip_is_rejected(egemaps):
    with pytest.raises(ax.InputError, match=r"Clip too short for egemaps: 800 samples \(0\.050 s\), need at least 1600"):
        egemaps.extract(tone(0.05))


def test_ravdess_clips(egemaps, shared_data):
    media = pytest.importorskip("affectstore.media")
    clips = sorted((shared_data / "ravdess-dev").glob("Actor_0[12]/*.flac"))[:6]
    if not clips:
        pytest.skip(f"no RAVDESS flac clips under {shared_data / 'ravdess-dev'}")
    waveforms = [media.load_audio(path) for path in clips]
    results = egemaps.extract_batch(waveforms)
    for path, waveform, result in zip(clips, waveforms, results, strict=True):
        duration = len(waveform) / 16_000
        assert 1.0 < duration < 10.0, path
        func, lld = result["egemaps"], result["egemaps-lld"]
        assert func.values.shape == (1, 88) and np.isfinite(func.values).all(), path
        assert lld.values.shape[1] == 25 and abs(lld.values.shape[0] - duration * 100) < 10, path
        assert lld.times[-1] < duration
        # spoken sentences: some voiced frames with a plausible adult pitch (semitones from 27.5 Hz)
        column = egemaps.output_specs()["egemaps"].columns.index("F0semitoneFrom27.5Hz_sma3nz_amean")
        assert 15.0 < func.values[0, column] < 50.0, path
    # different utterances give different functionals
    assert np.abs(results[0]["egemaps"].values - results[1]["egemaps"].values).max() > 1e-3
