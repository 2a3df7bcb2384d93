"""Audio decoding: 16 kHz mono float32, whole or streamed, on generated and real media."""

import numpy as np
import pytest

from affectstore.media import (
    SAMPLE_RATE,
    audio_duration,
    load_audio,
    probe,
    stream_audio,
)
from affectstore.testing.datasets import make_media

# Container/codec and the exact sample count each gives after decoding. AAC decodes its
# last frame's padding (the sample count rounds up to 1024 at the source rate); MP3 in FLV
# has no gapless header, so LAME's encoder delay (1105 samples) and end padding stay.
CASES = [
    ("a.wav", dict(sample_rate=48_000, channels=2), 0),
    ("a.flac", dict(sample_rate=16_000), 0),
    ("a.mp3", dict(sample_rate=22_050), 0),
    ("a.m4a", dict(sample_rate=44_100), 1024),
    ("a.mp4", dict(sample_rate=48_000, channels=2), 1024),
    ("a.flv", dict(sample_rate=44_100), 2304),
    ("a.mkv", dict(sample_rate=16_000), 1024),
]


@pytest.mark.parametrize("name,options,padding", CASES, ids=[c[0] for c in CASES])
def test_load_audio_rate_length_and_level(tmp_path, name, options, padding):
    path = make_media(tmp_path / name, duration=1.5, amplitude=0.5, **options)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    expected = 1.5 * SAMPLE_RATE
    slack = padding / options["sample_rate"] * SAMPLE_RATE + 2
    assert expected - 2 <= len(audio) <= expected + slack
    # Channels are averaged, not summed at -3 dB: a 0.5 sine in both channels stays 0.5.
    middle = audio[int(0.2 * SAMPLE_RATE) : int(1.2 * SAMPLE_RATE)]
    assert np.max(np.abs(middle)) == pytest.approx(0.5, abs=0.03)


def test_sine_frequency_survives_resampling(tmp_path):
    path = make_media(tmp_path / "tone.wav", duration=1.0, sample_rate=44_100, frequency=1000.0)
    audio = load_audio(path)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * SAMPLE_RATE / len(audio) == pytest.approx(1000.0, abs=2.0)


def test_planted_signal_roundtrips_losslessly_in_flac(tmp_path):
    rng = np.random.default_rng(0)
    signal = (0.2 * rng.standard_normal(16_000)).clip(-0.9, 0.9).astype(np.float32)
    path = make_media(tmp_path / "x.flac", signal=signal, sample_rate=16_000)
    np.testing.assert_allclose(load_audio(path), signal, atol=1e-4)


@pytest.mark.parametrize("window,overlap", [(0.25, 0.0), (0.3, 0.1), (10.0, 0.0)])
def test_stream_audio_windows_match_full_decode(tmp_path, window, overlap):
    path = make_media(tmp_path / "a.mp4", duration=1.3, sample_rate=44_100)
    full = load_audio(path)
    chunks = list(stream_audio(path, window=window, overlap=overlap))
    win, hop = round(window * SAMPLE_RATE), round((window - overlap) * SAMPLE_RATE)
    for k, (start, chunk) in enumerate(chunks):
        assert start == pytest.approx(k * hop / SAMPLE_RATE)
        np.testing.assert_array_equal(chunk, full[k * hop : k * hop + win])
    assert all(len(c) == win for _, c in chunks[:-1])
    start, last = chunks[-1]
    assert round(start * SAMPLE_RATE) + len(last) == len(full)  # the tail reaches the end exactly once


def test_stream_audio_validates_arguments(tmp_path):
    path = make_media(tmp_path / "a.wav", duration=0.2)
    with pytest.raises(ValueError, match=r"overlap must be in \[0, window=1.0\) seconds. Got 1.0 instead"):
        next(stream_audio(path, window=1.0, overlap=1.0))
    with pytest.raises(ValueError, match="window must be a positive number. Got -1 instead"):
        next(stream_audio(path, window=-1))


def test_audio_duration_exact_and_header(tmp_path):
    path = make_media(tmp_path / "a.wav", duration=2.0, sample_rate=8_000)
    assert audio_duration(path) == pytest.approx(2.0)
    assert audio_duration(path, exact=False) == pytest.approx(2.0)


def test_resampling_to_other_rates(tmp_path):
    path = make_media(tmp_path / "a.flac", duration=1.0, sample_rate=16_000)
    assert len(load_audio(path, sample_rate=8_000)) == pytest.approx(8_000, abs=2)
    assert len(load_audio(path, sample_rate=48_000)) == pytest.approx(48_000, abs=2)


# -- the real CREMA-D clips (../shared/data)

CREMA_FLV = ["1001_DFA_ANG_XX.flv", "1001_DFA_HAP_XX.flv"]
CREMA_MP3 = ["1002_DFA_ANG_XX.mp3", "1002_DFA_SAD_XX.mp3"]


@pytest.mark.parametrize("name", CREMA_FLV + CREMA_MP3)
def test_crema_d_decodes_to_16k_with_right_length(shared_data, name):
    path = shared_data / "crema-d" / name
    info = probe(path)
    assert info.sample_rate == 44_100 and info.channels == 1 and info.audio_codec.startswith("mp3")
    source_seconds = audio_duration(path)  # samples at 44.1 kHz / 44100
    assert 1.5 < source_seconds < 3.5
    audio = load_audio(path)
    assert audio.dtype == np.float32
    assert len(audio) == pytest.approx(source_seconds * SAMPLE_RATE, abs=2)
    assert 0.01 < np.max(np.abs(audio)) <= 1.0  # speech, not silence (the sad take is quiet)
    streamed = np.concatenate([c for _, c in stream_audio(path, window=0.5)])
    np.testing.assert_array_equal(streamed, audio)


def test_crema_d_known_sample_counts(shared_data):
    # Counted once with PyAV at the source rate: 100224 samples (2.2727 s) for the flv,
    # 115200 (2.6122 s, equal to the container's duration) for the mp3.
    assert audio_duration(shared_data / "crema-d" / "1001_DFA_ANG_XX.flv") == pytest.approx(100_224 / 44_100)
    assert audio_duration(shared_data / "crema-d" / "1002_DFA_ANG_XX.mp3") == pytest.approx(115_200 / 44_100)
    assert len(load_audio(shared_data / "crema-d" / "1002_DFA_ANG_XX.mp3")) == pytest.approx(115_200 * 16_000 / 44_100, abs=2)


def test_ravdess_flac_is_already_16k(shared_data):
    path = shared_data / "ravdess-dev" / "Actor_01" / "03-01-01-01-01-01-01.flac"
    assert probe(path).sample_rate == 16_000
    audio = load_audio(path)
    assert len(audio) == round(audio_duration(path) * 16_000)
