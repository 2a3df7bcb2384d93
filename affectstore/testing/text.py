"""Builders for text tests and demos: tiny random text encoders with offline tokenizers, a
model folder with its own code, transcripts written into a store, and a local
OpenAI-compatible embeddings server.

The encoders are saved with ``save_pretrained`` (``config.json``, ``model.safetensors``,
``tokenizer.json``) like a hub snapshot, so tests load them through the extractors' real
``from_pretrained`` path. Tokenizers are built from a small vocabulary in the process (a
WordPiece vocabulary for BERT, a byte-level BPE trained on a few sentences for RoBERTa): no
hub, no download.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from affectstore.extract.errors import require

#: The 28 GoEmotions labels in the order of SamLowe/roberta-base-go_emotions' id2label.
GOEMOTIONS_LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
WORDS = (
    "i", "am", "so", "happy", "sad", "today", "this", "is", "a", "test", "don't", "forget", "jacket", "kids", "are",
    "talking", "by", "the", "door", "hello", "world", "terrible", "great", "news", "angry", "calm", "we", "it", "not",
)
CORPUS = (
    "I am so happy today", "this is a sad test", "Don't forget a jacket", "Kids are talking by the door",
    "hello world", "terrible news, we are angry", "great news, I am calm", "it is not a test",
)


def _seeded(seed: int) -> Any:
    torch = require("torch")
    torch.manual_seed(seed)
    return torch


def bert_tokenizer(max_length: int) -> Any:
    """A lower-casing WordPiece tokenizer over :data:`WORDS`, letters and punctuation."""
    transformers = require("transformers")
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz'.,!?"]
    pieces += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
    return transformers.BertTokenizer(vocab=vocab, model_max_length=max_length)


def roberta_tokenizer(max_length: int) -> Any:
    """A byte-level BPE tokenizer trained on :data:`CORPUS` (RoBERTa's special tokens)."""
    transformers = require("transformers")
    tokenizers = require("tokenizers")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(CORPUS), vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return transformers.RobertaTokenizer(vocab=model["vocab"], merges=merges, model_max_length=max_length)


def _bert_config(transformers: Any, vocab_size: int, hidden_size: int, num_layers: int, max_positions: int) -> Any:
    return transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=2,
        intermediate_size=2 * hidden_size, max_position_embeddings=max_positions, type_vocab_size=2,
    )


def build_bert_text(folder: str | Path, *, hidden_size: int = 32, num_layers: int = 2, max_positions: int = 64, seed: int = 10) -> Path:
    """Save a tiny random ``BertModel`` with its tokenizer (all-MiniLM-L6-v2's layout at toy size)."""
    transformers = require("transformers")
    _seeded(seed)
    folder = Path(folder)
    tokenizer = bert_tokenizer(max_positions)
    model = transformers.BertModel(_bert_config(transformers, len(tokenizer), hidden_size, num_layers, max_positions))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_roberta_goemotions(
    folder: str | Path, *, hidden_size: int = 32, num_layers: int = 2, labels: Sequence[str] = GOEMOTIONS_LABELS, seed: int = 11
) -> Path:
    """Save a tiny random ``RobertaForSequenceClassification`` with GoEmotions' labels (multi-label) and its tokenizer."""
    transformers = require("transformers")
    _seeded(seed)
    folder = Path(folder)
    tokenizer = roberta_tokenizer(64)
    config = transformers.RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=2,
        intermediate_size=2 * hidden_size, max_position_embeddings=66, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification",
    )
    transformers.RobertaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


REMOTE_CONFIG = '''from transformers import BertConfig


class TinyNewConfig(BertConfig):
    model_type = "tiny-new"
'''
REMOTE_MODEL = '''from transformers import BertModel

from .configuration_tiny import TinyNewConfig


class TinyNewModel(BertModel):
    config_class = TinyNewConfig
'''


def build_remote_code_text(folder: str | Path, *, auto_map: Mapping[str, str] | None = None, seed: int = 12) -> Path:
    """A tiny model folder whose config names its own classes (``auto_map``), as GTE's does; the code is a BertModel."""
    folder = build_bert_text(folder, seed=seed)
    (folder / "configuration_tiny.py").write_text(REMOTE_CONFIG, encoding="utf-8")
    (folder / "modeling_tiny.py").write_text(REMOTE_MODEL, encoding="utf-8")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = "tiny-new"
    config["architectures"] = ["TinyNewModel"]
    config["auto_map"] = dict(auto_map or {"AutoConfig": "configuration_tiny.TinyNewConfig", "AutoModel": "modeling_tiny.TinyNewModel"})
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def write_transcripts(
    store: Any, dataset: str, feature: str, transcripts: Mapping[str, Iterable[tuple[float, float, str]]], *, config_hash: str = "transcript-v1"
) -> str:
    """Write timed segments ``(start, end, text)`` per video as text feature set ``feature``; returns its config hash."""
    store.create_feature(dataset, feature, {"extractor": "test-transcript", "config_hash": config_hash, "dim": 0, "dtype": "str", "kind": "text"})
    for video_id, segments in transcripts.items():
        rows = list(segments)
        store.write_text(dataset, feature, video_id, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], config_hash=config_hash)
    return config_hash


def fake_embedding(text: str, dim: int) -> np.ndarray:
    """The vector :class:`EmbeddingsServer` answers for ``text``: seeded by the text's SHA-256."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class EmbeddingsServer:
    """A local OpenAI-compatible ``/embeddings`` server on 127.0.0.1 (a free port), for tests.

    Answers :func:`fake_embedding` of each input (``dimensions`` shortens them), listing the
    items in reverse order with their ``index`` so clients must sort. ``script`` replies come
    first, one per request: ``(status, body bytes or JSON-able, headers)``. A request without
    ``Authorization: Bearer <key>`` gets 401. ``requests`` records each request (path,
    headers, JSON body). Use as a context manager.
    """

    def __init__(self, *, dim: int = 8, key: str = "test-key", script: Sequence[tuple[int, Any, Mapping[str, str]]] = ()) -> None:
        self.dim = dim
        self.key = key
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The API root (``http://127.0.0.1:<port>/v1``)."""
        assert self._server is not None, "start the server first (with EmbeddingsServer() as server: ...)"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> EmbeddingsServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body, headers = owner._reply(self.path, dict(self.headers), raw)
                data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval: shutdown() waits for the serve loop's next poll.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="embeddings-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _reply(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, Mapping[str, str]]:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            if self.script:
                return self.script.pop(0)
        if headers.get("Authorization") != f"Bearer {self.key}":
            return 401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}}, {}
        if not path.endswith("/embeddings") or not isinstance(body, dict) or not isinstance(body.get("input"), list):
            return 404, {"error": {"message": f"no route {path}"}}, {}
        dim = int(body.get("dimensions") or self.dim)
        texts = body["input"]
        data = [{"object": "embedding", "index": i, "embedding": fake_embedding(t, self.dim)[:dim].tolist()} for i, t in enumerate(texts)]
        return 200, {"object": "list", "model": body.get("model"), "data": data[::-1], "usage": {"prompt_tokens": 0, "total_tokens": 0}}, {}
