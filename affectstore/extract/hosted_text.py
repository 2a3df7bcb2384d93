"""Hosted text embeddings through one OpenAI-compatible client: ``openai-small`` and ``gigachat``.

Where the API is and the key, from the environment (the key is never a setting, so it
cannot end up in a recipe, the store or a log):

============  =====================  =======================  ===========================================
extractor     key variable           base URL variable        default base URL, model
============  =====================  =======================  ===========================================
openai-small  ``OPENAI_API_KEY``     ``OPENAI_BASE_URL``      https://api.openai.com/v1, text-embedding-3-small
gigachat      ``GIGACHAT_API_KEY``   ``GIGACHAT_BASE_URL``    https://gigachat.devices.sberbank.ru/api/v1, Embeddings
============  =====================  =======================  ===========================================

A ``base_url`` setting wins over the variable; ``api_key_env``/``base_url_env`` rename the
variables (e.g. to point ``openai-small`` at a local vLLM or TEI server with its own key).
GigaChat's key is an OAuth access token (it expires after 30 minutes; a run that outlives it
records the remaining videos as failed with the auth error, and the next run resumes), and
its TLS certificate is issued by the Russian Trusted Root CA: point ``SSL_CERT_FILE`` at a
bundle that holds it.

At load one short probe request checks the key and learns the embedding dim from the reply
(never typed into a config; text-embedding-3-small gives 1536); the store records the
endpoint (without credentials), the model and the dim.
``dimensions`` asks the server for shorter vectors (text-embedding-3 models support it).
Requests carry up to ``batch_size`` texts; see :mod:`.embeddings_api` for retries and errors.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from affectstore.extract.embeddings_api import ApiError, EmbeddingsClient, RetryPolicy
from affectstore.extract.errors import ModelLoadError
from affectstore.extract.registry import register
from affectstore.extract.text import Head, TextEmbeddingConfig, TextEmbeddingExtractor

logger = logging.getLogger(__name__)

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROBE_TEXT = "affectstore dimension probe"


@dataclass(frozen=True, kw_only=True)
class HostedEmbeddingConfig(TextEmbeddingConfig):
    """``model``: the API's model name; ``base_url``: API root (None: ``$<base_url_env>``, else the
    extractor's default); ``api_key_env``/``base_url_env``: names of the environment variables;
    ``dimensions``: ask for vectors of this length (None: the model's own); ``timeout_s`` per request;
    ``max_retries``, ``backoff_s``, ``max_backoff_s``: retries on 429/5xx (see embeddings_api)."""

    model: str
    base_url: str | None = None
    api_key_env: str
    base_url_env: str
    dimensions: int | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    batch_size: int = 64

    NON_OUTPUT_FIELDS: ClassVar[frozenset[str]] = TextEmbeddingConfig.NON_OUTPUT_FIELDS | {
        "base_url", "api_key_env", "base_url_env", "timeout_s", "max_retries", "backoff_s", "max_backoff_s",
    }
    #: API root used when neither the setting nor the variable gives one.
    DEFAULT_URL: ClassVar[str] = "https://api.openai.com/v1"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be the API's model name (e.g. 'text-embedding-3-small'). Got {self.model!r} instead.")
        for name in ("api_key_env", "base_url_env"):
            value = getattr(self, name)
            if not isinstance(value, str) or not ENV_NAME.match(value):
                raise ValueError(f"{name} must be an environment variable name such as OPENAI_API_KEY. Got {value!r} instead.")
        if self.base_url is not None and (not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://"))):
            raise ValueError(f"base_url must be None or an http(s) URL such as https://api.openai.com/v1. Got {self.base_url!r} instead.")
        if self.dimensions is not None and (isinstance(self.dimensions, bool) or not isinstance(self.dimensions, int) or self.dimensions < 1):
            raise ValueError(f"dimensions must be None or an int >= 1. Got {self.dimensions!r} instead.")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0. Got {self.max_retries!r} instead.")
        for name in ("timeout_s", "backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (name == "timeout_s" and value == 0):
                raise ValueError(f"{name} must be a number of seconds >= 0{' (> 0)' if name == 'timeout_s' else ''}. Got {value!r} instead.")

    def resolved_url(self, environ: Any = os.environ) -> str:
        """The API root: the setting, else the base URL variable, else the default."""
        return self.base_url or environ.get(self.base_url_env, "").strip() or self.DEFAULT_URL


class HostedEmbeddingExtractor(TextEmbeddingExtractor[HostedEmbeddingConfig]):
    """Text embeddings from an OpenAI-compatible API (see the module docstring)."""

    version = "1"
    devices = ("cpu",)  # the model runs at the provider; nothing computes here

    def _load(self) -> None:
        cfg = self.config
        key = os.environ.get(cfg.api_key_env, "").strip()
        url = cfg.resolved_url()
        if not key:
            raise ModelLoadError(
                f"no API key: the environment variable {cfg.api_key_env} is not set",
                advice=f"Set {cfg.api_key_env} to your key for {url} (export {cfg.api_key_env}=...), or name another "
                f"variable with --set {self.prefix}.api_key_env=NAME. The key is read from the environment only, never stored.",
            )
        retry = RetryPolicy(cfg.max_retries, float(cfg.backoff_s), float(cfg.max_backoff_s))
        try:
            client = EmbeddingsClient(url, key, cfg.model, dimensions=cfg.dimensions, timeout_s=float(cfg.timeout_s),
                                      retry=retry, key_source=f"${cfg.api_key_env}")
            probe = client.embed([PROBE_TEXT])
        except (ApiError, ValueError) as error:
            raise ModelLoadError(
                str(error),
                advice=f"The API root comes from --set {self.prefix}.base_url=..., else ${cfg.base_url_env}, else "
                f"{cfg.DEFAULT_URL}; the key from ${cfg.api_key_env}.",
            ) from error
        self._client = client
        self._dim = int(probe.shape[1])
        logger.info("%s: %s model %s answers with %d-d embeddings", self.prefix, client.where, cfg.model, self._dim)

    def _heads(self) -> list[Head]:
        self._require_loaded()
        return [Head("", self._dim, None, f"{self.config.model} embedding from {self._client.where}")]

    def _libraries(self) -> tuple[str, ...]:
        return ()

    def _model_provenance(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "id": cfg.model,
            "api": "openai-compatible embeddings",
            "endpoint": self._client.where,
            "dimensions": cfg.dimensions,
            "dim": self._dim,
            "api_key_env": cfg.api_key_env,
        }

    def _encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self._client.embed(texts)
        if rows.shape[1] != self._dim:
            raise ApiError(f"{self._client.where} answered with {rows.shape[1]}-d embeddings, but {self._dim}-d at load; the model changed mid-run.")
        return {"": rows}


@dataclass(frozen=True, kw_only=True)
class OpenAISmallConfig(HostedEmbeddingConfig):
    """``openai-small``: OpenAI's text-embedding-3-small (1536-d), key in OPENAI_API_KEY."""

    model: str = "text-embedding-3-small"
    api_key_env: str = "OPENAI_API_KEY"
    base_url_env: str = "OPENAI_BASE_URL"


@register
class OpenAISmallExtractor(HostedEmbeddingExtractor):
    """OpenAI text-embedding-3-small embeddings of the transcript."""

    name = "openai-small"
    config_class = OpenAISmallConfig


@dataclass(frozen=True, kw_only=True)
class GigaChatConfig(HostedEmbeddingConfig):
    """``gigachat``: GigaChat's Embeddings model, access token in GIGACHAT_API_KEY."""

    model: str = "Embeddings"
    api_key_env: str = "GIGACHAT_API_KEY"
    base_url_env: str = "GIGACHAT_BASE_URL"
    DEFAULT_URL: ClassVar[str] = "https://gigachat.devices.sberbank.ru/api/v1"


@register
class GigaChatExtractor(HostedEmbeddingExtractor):
    """GigaChat embeddings of the transcript."""

    name = "gigachat"
    config_class = GigaChatConfig
