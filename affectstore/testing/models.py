"""Tiny random speech models saved to a folder, in the layout of the real checkpoints.

The folders hold ``config.json``, ``model.safetensors`` and ``preprocessor_config.json``
like a hub snapshot, so tests and benchmarks load them through the same
``from_pretrained`` path as real weights (offline). Weights are random (seeded); only
shapes, key names and the architecture match the real models, at toy size.

The VAD builder writes the state dict itself (keys ``wav2vec2.*``, ``classifier.dense.*``,
``classifier.out_proj.*``) rather than saving an affectstore class, so the extractor's
loader is tested against the audEERING key layout and not against its own naming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affectstore.extract.errors import require

#: The conv front end of every released wav2vec2/HuBERT model (stride 320, receptive field 400)
#: at a few channels: realistic frame timing at toy cost.
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)
VAD_LABELS = ("arousal", "dominance", "valence")


def _common_config(
    hidden_size: int, num_layers: int, conv_channels: int, stable_layer_norm: bool, feat_extract_norm: str
) -> dict[str, Any]:
    return {
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden_size,
        "conv_dim": (conv_channels,) * len(CONV_KERNEL),
        "conv_kernel": CONV_KERNEL,
        "conv_stride": CONV_STRIDE,
        "conv_bias": feat_extract_norm == "layer",
        "feat_extract_norm": feat_extract_norm,
        "do_stable_layer_norm": stable_layer_norm,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2,
        "vocab_size": 12,
        "hidden_dropout": 0.1,
        "attention_dropout": 0.1,
        "activation_dropout": 0.1,
        "final_dropout": 0.1,
    }


def _save_preprocessor(transformers: Any, folder: Path, do_normalize: bool, return_attention_mask: bool) -> None:
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=do_normalize,
        return_attention_mask=return_attention_mask,
    ).save_pretrained(folder)


def _seeded(seed: int) -> Any:
    torch = require("torch")
    torch.manual_seed(seed)
    return torch


def build_wav2vec2(
    folder: str | Path,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    conv_channels: int = 16,
    stable_layer_norm: bool = True,
    feat_extract_norm: str = "layer",
    do_normalize: bool = True,
    preprocessor: bool = True,
    seed: int = 0,
) -> Path:
    """Save a tiny random ``Wav2Vec2Model`` (like wav2vec2-large-robust when the defaults are kept)."""
    transformers = require("transformers")
    _seeded(seed)
    folder = Path(folder)
    config = transformers.Wav2Vec2Config(
        **_common_config(hidden_size, num_layers, conv_channels, stable_layer_norm, feat_extract_norm)
    )
    transformers.Wav2Vec2Model(config).eval().save_pretrained(folder)
    if preprocessor:
        _save_preprocessor(transformers, folder, do_normalize, feat_extract_norm == "layer")
    return folder


def build_hubert(
    folder: str | Path,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    conv_channels: int = 16,
    ctc_head: bool = True,
    seed: int = 1,
) -> Path:
    """Save a tiny random HuBERT in the layout of ``facebook/hubert-large-ls960-ft`` (``HubertForCTC``
    with stable layer norm and a layer-norm front end) or, with ``ctc_head=False``, a bare ``HubertModel``."""
    transformers = require("transformers")
    _seeded(seed)
    folder = Path(folder)
    config = transformers.HubertConfig(**_common_config(hidden_size, num_layers, conv_channels, True, "layer"))
    model_class = transformers.HubertForCTC if ctc_head else transformers.HubertModel
    model_class(config).eval().save_pretrained(folder)
    _save_preprocessor(transformers, folder, True, True)
    return folder


def build_vad(
    folder: str | Path,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    conv_channels: int = 16,
    head: bool = True,
    head_prefix: str = "classifier",
    seed: int = 2,
) -> Path:
    """Save a tiny random model in the layout of ``audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim``.

    ``head=False`` leaves the regression head out and ``head_prefix`` renames it: both are
    checkpoints the VAD loader must refuse.
    """
    torch = _seeded(seed)
    transformers = require("transformers")
    safetensors_torch = require("safetensors.torch")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = transformers.Wav2Vec2Config(
        **_common_config(hidden_size, num_layers, conv_channels, True, "layer"),
        num_labels=len(VAD_LABELS),
        id2label=dict(enumerate(VAD_LABELS)),
        label2id={label: i for i, label in enumerate(VAD_LABELS)},
        architectures=["EmotionModel"],
    )
    encoder = transformers.Wav2Vec2Model(config).eval()
    state = {f"wav2vec2.{key}": value.detach().clone().contiguous() for key, value in encoder.state_dict().items()}
    if head:
        # Larger than the usual init scale so the head's outputs vary visibly between clips.
        state[f"{head_prefix}.dense.weight"] = torch.randn(hidden_size, hidden_size) * 0.3
        state[f"{head_prefix}.dense.bias"] = torch.randn(hidden_size) * 0.1
        state[f"{head_prefix}.out_proj.weight"] = torch.randn(len(VAD_LABELS), hidden_size) * 0.3
        state[f"{head_prefix}.out_proj.bias"] = torch.randn(len(VAD_LABELS)) * 0.1
    config.save_pretrained(folder)
    safetensors_torch.save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    _save_preprocessor(transformers, folder, True, True)
    return folder



def install_in_hub_cache(folder: str | Path, cache_dir: str | Path, repo_id: str, commit: str = "0" * 40) -> str:
    """Copy a saved model into a Hugging Face cache folder as snapshot ``commit`` of ``repo_id``,
    with ``refs/main`` pointing at it, so it loads by hub id offline (``cache_dir=...``)."""
    import shutil

    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in Path(folder).iterdir():
        if path.is_file():
            shutil.copyfile(path, snapshot / path.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return commit


# ----------------------------------------------------------------------------- face models


def build_emotiefflib_onnx(
    path: str | Path, *, dim: int = 16, n_logits: int = 10, fixed_batch: bool = False, seed: int = 3
) -> tuple[Path, dict[str, Any]]:
    """Save a tiny ONNX graph in EmotiEffLib's form: input ``input`` (N, 3, S, S) float32 ->
    per-channel means and a second-moment term -> Linear + ReLU (the ``dim``-d embedding) ->
    a final Gemm (transB=1) to ``n_logits`` logits, the graph's only output.

    Returns the path and the weights (``w1`` (6, dim), ``b1``, ``w2`` (n_logits, dim), ``b2``),
    so a test can compute the expected embedding and logits with numpy.
    """
    import numpy as np

    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = {
        "w1": rng.normal(0, 1.0, (6, dim)).astype(np.float32),
        "b1": rng.normal(0, 0.1, dim).astype(np.float32),
        "w2": rng.normal(0, 0.5, (n_logits, dim)).astype(np.float32),
        "b2": rng.normal(0, 0.1, n_logits).astype(np.float32),
    }
    batch = 1 if fixed_batch else "batch"
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["input", "input"], ["square"]),
        helper.make_node("ReduceMean", ["square", "axes"], ["moment"], keepdims=0),
        helper.make_node("Concat", ["mean", "moment"], ["pooled"], axis=1),
        helper.make_node("MatMul", ["pooled", "w1"], ["hidden"]),
        helper.make_node("Add", ["hidden", "b1"], ["biased"]),
        helper.make_node("Relu", ["biased"], ["embedding"]),
        helper.make_node("Gemm", ["embedding", "w2", "b2"], ["logits"], transB=1),
    ]
    initializers = [numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")]
    initializers += [numpy_helper.from_array(value, name) for name, value in weights.items()]
    graph = helper.make_graph(
        nodes, "tiny_emotiefflib",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, None, None])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, n_logits])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path, weights


def build_vit(folder: str | Path, *, hidden_size: int = 32, image_size: int = 32, patch_size: int = 8, seed: int = 4) -> Path:
    """Save a tiny random ``ViTModel`` with its image processor (the layout of google/vit-*-in21k)."""
    transformers = require("transformers")
    _seeded(seed)
    folder = Path(folder)
    config = transformers.ViTConfig(
        hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * hidden_size,
        image_size=image_size, patch_size=patch_size,
    )
    transformers.ViTModel(config).eval().save_pretrained(folder)
    _save_image_processor(transformers, folder, "ViTImageProcessorPil", size={"height": image_size, "width": image_size})
    return folder


def build_dinov2(folder: str | Path, *, hidden_size: int = 32, image_size: int = 28, patch_size: int = 7, seed: int = 5) -> Path:
    """Save a tiny random ``Dinov2Model`` with its image processor (resize the shortest edge, centre crop)."""
    transformers = require("transformers")
    _seeded(seed)
    folder = Path(folder)
    config = transformers.Dinov2Config(
        hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
        image_size=image_size, patch_size=patch_size,
    )
    transformers.Dinov2Model(config).eval().save_pretrained(folder)
    _save_image_processor(
        transformers, folder, "BitImageProcessorPil",
        size={"shortest_edge": image_size + 4}, crop_size={"height": image_size, "width": image_size}, do_center_crop=True,
    )
    return folder


def _save_image_processor(transformers: Any, folder: Path, name: str, **settings: Any) -> None:
    processor_class = getattr(transformers, name, None) or getattr(transformers, name.removesuffix("Pil"))
    processor_class(**settings).save_pretrained(folder)


# ----------------------------------------------------------------------------- Whisper


def build_whisper_ct2(folder: str | Path, tokenizer_folder: str | Path, *, d_model: int = 32, seed: int = 6) -> Path:
    """Save a tiny random Whisper in CTranslate2 form (what faster-whisper loads) at ``folder``.

    The vocabulary must be Whisper's (51,865 tokens), so ``tokenizer_folder`` is a real
    CTranslate2 Whisper folder whose ``tokenizer.json`` and ``vocabulary.json`` are copied (the
    fetched Whisper base: ``affect models fetch whisper-base``); faster-whisper would otherwise
    fetch the tokenizer from the hub. Its ``lang_ids`` are copied into the converted config too:
    with transformers 5 the converter writes none, and language detection then fails.
    """
    import json
    import shutil
    import tempfile

    transformers = require("transformers")
    ctranslate2 = require("ctranslate2")
    _seeded(seed)
    folder, source = Path(folder), Path(tokenizer_folder)
    lang_ids = json.loads((source / "config.json").read_text())["lang_ids"]
    config = transformers.WhisperConfig(
        vocab_size=51865, d_model=d_model, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model, num_mel_bins=80,
        max_source_positions=1500, max_target_positions=448, decoder_start_token_id=50258,
        eos_token_id=50257, pad_token_id=50257, bos_token_id=50257,
    )
    model = transformers.WhisperForConditionalGeneration(config).eval()
    model.generation_config.alignment_heads = [[1, 0], [1, 1]]
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        ctranslate2.converters.TransformersConverter(tmp).convert(str(folder), quantization=None, force=True)
    converted = json.loads((folder / "config.json").read_text())
    converted["lang_ids"] = lang_ids
    (folder / "config.json").write_text(json.dumps(converted))
    for name in ("tokenizer.json", "vocabulary.json"):
        shutil.copyfile(source / name, folder / name)
    return folder
