"""Whisper transcripts and encoder states through the real loading code: a tiny random Whisper converted
to CTranslate2 (with the fetched base model's tokenizer), and the real Whisper base on CREMA-D."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("faster_whisper")

import affectstore.extract as ax  # noqa: E402
from affectstore.extract.model_files import is_fetched, packaged_dir  # noqa: E402
from affectstore.extract.runner import RunOptions, run_extraction  # noqa: E402
from affectstore.store import FeatureStore  # noqa: E402
from affectstore.testing.asr import word_error_rate  # noqa: E402

QUIET = RunOptions(progress=False)
needs_base = pytest.mark.skipif(not is_fetched("whisper-base"), reason="Whisper base is not fetched (affect models fetch whisper-base)")
FAST = {"beam_size": 1, "temperature": [0.0], "max_new_tokens": 6}


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    if not is_fetched("whisper-base"):
        pytest.skip("the tiny Whisper needs Whisper's tokenizer from the fetched base model (affect models fetch whisper-base)")
    pytest.importorskip("transformers")
    from affectstore.testing.models import build_whisper_ct2

    return str(build_whisper_ct2(tmp_path_factory.mktemp("whisper") / "tiny", packaged_dir("whisper-base")))


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * 16_000)) * 0.1).astype(np.float32)


def test_transcripts_equal_faster_whisper_on_the_same_audio(tiny_whisper):
    from faster_whisper import WhisperModel

    audio = noise(3.0)
    reference = WhisperModel(tiny_whisper, device="cpu", compute_type="default")
    for language in ("en", None):
        extractor = ax.create_extractor("whisper", model=tiny_whisper, language=language, pcm16=False, **FAST).load()
        out = extractor.extract(audio)
        segments, info = reference.transcribe(audio, language=language, word_timestamps=True, **FAST)
        segments = list(segments)
        assert out["whisper"].text == tuple(s.text.strip() for s in segments)
        np.testing.assert_allclose(out["whisper"].start, [s.start for s in segments])
        np.testing.assert_allclose(out["whisper"].end, [s.end for s in segments])
        words = [w for s in segments for w in s.words]
        assert out["whisper-words"].text == tuple(w.word.strip() for w in words)
        np.testing.assert_allclose(out["whisper-scores"].values[:, 0], [s.avg_logprob for s in segments], rtol=1e-5)
        assert out["whisper-language"].text == (info.language,)


def test_whisper_through_the_runner_writes_four_text_and_score_sets(tiny_whisper, tmp_path, clip_tools):
    write_clips, _, _ = clip_tools
    ids = write_clips(tmp_path / "clips", (1.5, 2.5, 0.8))
    settings = {"whisper": {"model": tiny_whisper, "language": "en", **FAST}}
    summary = run_extraction("clips", tmp_path / "clips", ["whisper"], tmp_path / "s.zarr", settings=settings, options=QUIET)
    assert summary.done == 3 and summary.failed == 0
    store = FeatureStore.open(tmp_path / "s.zarr")
    assert store.features("clips") == ["whisper", "whisper-language", "whisper-scores", "whisper-words"]
    assert store.provenance("clips", "whisper")["kind"] == "text"
    for vid in ids:
        text = store.read_video("clips", "whisper", vid)
        scores = store.read_video("clips", "whisper-scores", vid)
        assert len(text.text) == len(scores.values)
        np.testing.assert_allclose(scores.times, (np.asarray(text.start) + np.asarray(text.end)) / 2)
        assert store.read_video("clips", "whisper-language", vid).text == ["en"]


def test_long_clips_are_transcribed_in_blocks_with_their_offsets(tiny_whisper):
    extractor = ax.create_extractor("whisper", model=tiny_whisper, language="en", window_s=30, **FAST).load()
    audio = noise(70.0, seed=2)
    stream = extractor.open_stream(ax.WaveStats.of(audio))
    for start in range(0, len(audio), 16_000 * 7):
        assert stream.push(audio[start : start + 16_000 * 7]) == {}
    out = stream.close()
    blocks = [extractor.extract(audio[k : k + 30 * 16_000]) for k in range(0, len(audio), 30 * 16_000)]
    want = [s + 30 * k for k, b in enumerate(blocks) for s in b["whisper"].start]
    np.testing.assert_allclose(out["whisper"].start, want, atol=1e-9)
    assert out["whisper"].text == tuple(t for b in blocks for t in b["whisper"].text)


def test_encoder_keeps_the_real_frames_and_batches_equal_single(tiny_whisper):
    extractor = ax.create_extractor("whisper-encoder", model=tiny_whisper, batch_size=3, dtype="float32").load()
    clips = [noise(s, seed=k) for k, s in enumerate((0.5, 3.0, 31.0, 1.01))]
    batch = extractor.extract_batch(clips)
    for clip, together in zip(clips, batch, strict=True):
        feats = together["whisper-encoder"]
        mel = len(clip) // 160
        expected = sum(math.ceil(min(3000, mel - 3000 * k) / 2) for k in range(math.ceil(mel / 3000)))
        assert feats.values.shape == (expected, 32)
        np.testing.assert_allclose(np.diff(feats.times)[:10], 0.02)
        alone = extractor.extract(clip)["whisper-encoder"]
        np.testing.assert_array_equal(alone.times, feats.times)
        np.testing.assert_allclose(alone.values, feats.values, atol=1e-4)
    spec = extractor.output_specs()["whisper-encoder"]
    assert spec.rate == 50.0 and spec.kind is ax.OutputKind.FRAMES


def test_encoder_stream_gives_the_same_frames_as_whole(tiny_whisper):
    extractor = ax.create_extractor("whisper-encoder", model=tiny_whisper, dtype="float32").load()
    audio = noise(65.0, seed=5)  # steady level: every window's log-mel maximum is close to the clip's
    whole = extractor.extract(audio)["whisper-encoder"]
    stream = extractor.open_stream(ax.WaveStats.of(audio))
    parts = [stream.push(audio[k : k + 16_000 * 10]) for k in range(0, len(audio), 16_000 * 10)] + [stream.close()]
    streamed = ax.Features.concatenate([p["whisper-encoder"] for p in parts if p])
    np.testing.assert_array_equal(streamed.times, whole.times)
    np.testing.assert_allclose(streamed.values, whole.values, atol=1e-3)


def test_missing_tokenizer_is_refused_with_advice(tmp_path, tiny_whisper):
    import shutil

    broken = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_whisper, broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ax.ModelLoadError, match=r"tokenizer\.json missing") as caught:
        ax.create_extractor("whisper", model=str(broken)).load()
    assert "fetches the tokenizer from the hub" in caught.value.advice


@needs_base
def test_crema_d_transcripts_equal_faster_whisper_and_hear_the_sentence(shared_data, tmp_path):
    from faster_whisper import WhisperModel

    root = shared_data / "crema-d"
    summary = run_extraction("clips", root, ["whisper"], tmp_path / "s.zarr", options=QUIET)
    assert summary.done == 12 and summary.failed == 0
    store = FeatureStore.open(tmp_path / "s.zarr")
    reference = WhisperModel(str(packaged_dir("whisper-base")), device="cpu")
    errors = []
    for vid in sorted(store.completed("clips", "whisper")):
        got = store.read_video("clips", "whisper", vid)
        segments = list(reference.transcribe(str(root / vid), beam_size=5, word_timestamps=True)[0])
        assert got.text == [s.text.strip() for s in segments], vid
        np.testing.assert_allclose(got.start, [s.start for s in segments])
        np.testing.assert_allclose(got.end, [s.end for s in segments])
        text = " ".join(got.text)
        assert text.startswith("Don't forget"), (vid, text)
        errors.append(word_error_rate("Don't forget a jacket", text))
    assert np.mean(errors) <= 0.45, errors
