"""The isolated decoder: same arrays as in-process decoding, and a native crash or hang costs one file."""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest
from scipy.io import wavfile

from affectstore.media import (
    DecoderCrashError,
    EmptyMediaError,
    MissingMediaError,
    NoAudioStreamError,
    load_audio,
    probe,
    stream_audio,
)
from affectstore.media.isolated import DecoderStartError, IsolatedDecoder
from affectstore.testing.bad_media import CRASHING_WORKER as _CRASHING_WORKER
from affectstore.testing.datasets import make_empty_file, make_media

@pytest.fixture
def decoder():
    with IsolatedDecoder() as d:
        yield d


def _multichannel_wav(path, channels: int, rate: int = 48_000, seconds: float = 0.5, dtype=np.int16):
    rng = np.random.default_rng(channels)
    data = (0.2 * rng.standard_normal((int(rate * seconds), channels))).astype(np.float32)
    wavfile.write(path, rate, (data * 32767).astype(np.int16) if dtype == np.int16 else data)
    return path, data


@pytest.mark.parametrize("channels", [3, 8, 16, 24])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_multichannel_wav_decodes_to_the_channel_mean(tmp_path, decoder, channels, dtype):
    path, data = _multichannel_wav(tmp_path / f"c{channels}.wav", channels, dtype=dtype)
    ours = load_audio(path)  # used to segfault for 8 and more channels
    assert ours.shape == (8_000,) and ours.dtype == np.float32
    np.testing.assert_array_equal(decoder.load_audio(path), ours)
    # Resampling is linear: the mean of the resampled channels is the resampled mean.
    mono = data.mean(axis=1)
    mono_path = tmp_path / "mono.wav"
    wavfile.write(mono_path, 48_000, mono if dtype == np.float32 else (data * 32767).astype(np.int16).mean(axis=1).astype(np.float32) / 32768)
    np.testing.assert_allclose(ours, load_audio(mono_path), atol=2e-4)
    assert probe(path).channels == channels == decoder.probe(path).channels


def test_same_blocks_as_in_process(tmp_path, decoder):
    path = make_media(tmp_path / "a.mp4", duration=2.3, sample_rate=44_100, channels=2)
    ours = list(decoder.stream_audio(path, window=0.5, overlap=0.1))
    ref = list(stream_audio(path, window=0.5, overlap=0.1))
    assert len(ours) == len(ref) > 4
    for (s1, c1), (s2, c2) in zip(ours, ref):
        assert s1 == s2
        np.testing.assert_array_equal(c1, c2)
        assert c1.flags.writeable and c1.dtype == np.float32
    assert decoder.count_samples(path) == len(load_audio(path))
    assert decoder.probe(path) == probe(path)


def test_stopping_a_stream_early_keeps_the_worker_in_step(tmp_path, decoder):
    long = make_media(tmp_path / "long.wav", duration=5.0)
    short = make_media(tmp_path / "short.flac", duration=0.5)
    for i, _ in enumerate(decoder.stream_audio(long, window=0.1)):
        if i == 3:
            break
    abandoned = decoder.stream_audio(long, window=0.1)
    next(abandoned)  # left open: the next request stops it first
    np.testing.assert_array_equal(decoder.load_audio(short), load_audio(short))
    with pytest.raises(StopIteration):
        next(abandoned)
    assert decoder.restarts == 0


def test_media_errors_come_back_typed(tmp_path, decoder):
    empty = make_empty_file(tmp_path / "empty.wav")
    with pytest.raises(EmptyMediaError, match=r"empty.wav: file is empty \(0 bytes\)\. The file is empty"):
        decoder.load_audio(empty)
    with pytest.raises(MissingMediaError, match="nope.mp3: file not found"):
        decoder.count_samples(tmp_path / "nope.mp3")
    silent = make_media(tmp_path / "silent.mp4", duration=0.3, audio=False)
    with pytest.raises(NoAudioStreamError, match="silent.mp4: the file has no audio stream"):
        next(decoder.stream_audio(silent))
    with pytest.raises(ValueError, match="window must be a positive number. Got -1 instead"):
        next(decoder.stream_audio(silent, window=-1))
    assert decoder.restarts == 0  # ordinary errors never cost the worker


@pytest.mark.parametrize("name,signal_name", [("crash.wav", "SIGSEGV"), ("abort.wav", "SIGABRT")])
def test_a_native_crash_costs_one_file(tmp_path, name, signal_name):
    good = make_media(tmp_path / "good.wav", duration=0.4)
    bad = make_media(tmp_path / name, duration=0.4)
    with IsolatedDecoder(command=[sys.executable, "-c", _CRASHING_WORKER]) as decoder:
        np.testing.assert_array_equal(decoder.load_audio(good), load_audio(good))
        with pytest.raises(DecoderCrashError, match=rf"{name}: the decoder process was killed by {signal_name} .* while decoding this file\. The file crashes the native decoder: re-encode it") as info:
            decoder.load_audio(bad)
        assert info.value.signal == signal_name
        with pytest.raises(DecoderCrashError, match=signal_name):
            decoder.count_samples(bad)
        np.testing.assert_array_equal(decoder.load_audio(good), load_audio(good))  # a fresh worker
        assert decoder.restarts == 2


def test_a_hang_is_stopped_after_the_timeout(tmp_path):
    bad = make_media(tmp_path / "hang.wav", duration=0.2)
    good = make_media(tmp_path / "good.wav", duration=0.2)
    with IsolatedDecoder(timeout=1.0, command=[sys.executable, "-c", _CRASHING_WORKER]) as decoder:
        with pytest.raises(DecoderCrashError, match=r"hang.wav: the decoder made no progress for 1 s \(a hang in FFmpeg\) and was stopped") as info:
            decoder.load_audio(bad)
        assert info.value.signal is None
        assert len(decoder.load_audio(good)) == 3_200


def test_killed_worker_names_sigkill_and_the_likely_cause(tmp_path, decoder):
    path = make_media(tmp_path / "a.wav", duration=3.0)
    stream = decoder.stream_audio(path, window=0.1)
    next(stream)
    os.kill(decoder._proc.pid, 9)
    with pytest.raises(DecoderCrashError, match="killed by SIGKILL .*most often the out-of-memory killer"):
        list(stream)
    assert decoder.count_samples(path) == 48_000


def test_a_worker_that_cannot_start_is_an_installation_error():
    with pytest.raises(DecoderStartError, match=r"did not start \(exit code 3\)"):
        IsolatedDecoder(command=[sys.executable, "-c", "import sys; sys.exit(3)"]).probe("x.wav")


def test_options_are_validated():
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds or None. Got 0 instead"):
        IsolatedDecoder(timeout=0)
    with pytest.raises(ValueError, match="prefetch must be an int >= 1. Got 0 instead"):
        IsolatedDecoder(prefetch=0)


def test_the_bad_media_folder_each_file_with_its_reason(tmp_path):
    from affectstore.testing.bad_media import build_bad_media

    cases = build_bad_media(tmp_path, crash_name="crash-in-ffmpeg.wav")
    assert len(cases) >= 18 and sum(c.error is None for c in cases) == 4
    with IsolatedDecoder(command=[sys.executable, "-c", _CRASHING_WORKER]) as decoder:
        for case in cases:
            if case.error is None:
                np.testing.assert_array_equal(decoder.load_audio(case.path), load_audio(case.path))
                continue
            with pytest.raises(case.error, match=re.escape(case.reason)):
                decoder.load_audio(case.path)
        assert len(decoder.load_audio(cases[0].path)) == 9_600  # the crash cost one file; a new worker goes on
        assert decoder.restarts == 1
