"""An OpenAI-compatible embeddings client on the standard library's HTTP (no SDK needed).

``POST {base_url}/embeddings`` with ``{"model": ..., "input": [texts], "dimensions"?: ...}``
and ``Authorization: Bearer <key>``; the reply's ``data[i].embedding`` rows are put back in
input order by ``data[i].index``. OpenAI, GigaChat, Azure-style proxies, vLLM and Hugging Face
TEI servers speak this protocol.

Failures, each its own error type with a message that says what to do:

- 429 (rate limit) and 408/5xx, connection errors and time-outs are retried up to
  ``max_retries`` times, waiting ``Retry-After`` when the server sends it, else
  ``backoff_s * 2**attempt`` (capped at ``max_backoff_s``); then :class:`ApiUnavailableError`.
- 401/403: :class:`ApiAuthError`; 402, or 429 with code ``insufficient_quota``:
  :class:`ApiQuotaError`. Neither is retried, and after one of them every later call of the
  same client fails at once with the same error (no request is sent: a run then records
  each remaining video as failed with that reason instead of hammering the API).
- other 4xx: :class:`ApiRequestError` (bad model name, input too long); a reply that is not
  an embeddings list for the texts sent: :class:`ApiReplyError`.

The key is only ever put in the Authorization header: never logged, never in a message
(server text is scrubbed of it), never in ``repr``.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from affectstore.extract.errors import ExtractorError

logger = logging.getLogger(__name__)


class ApiError(ExtractorError):
    """An embeddings API call that failed."""


class ApiAuthError(ApiError):
    """The server refused the key (HTTP 401/403)."""


class ApiQuotaError(ApiError):
    """The account has no quota or credit left (HTTP 402, or 429 ``insufficient_quota``)."""


class ApiRequestError(ApiError):
    """The server refused the request itself (another 4xx: unknown model, input too long)."""


class ApiReplyError(ApiError):
    """The reply is not an embeddings list for the texts sent (wrong base URL, another protocol)."""


class ApiUnavailableError(ApiError):
    """Rate limits, server errors or the network did not clear within the retries."""


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` after the first attempt; waits ``backoff_s * 2**attempt`` seconds, at most ``max_backoff_s``."""

    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        return min(self.backoff_s * 2.0**attempt, self.max_backoff_s)


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (what may be logged and stored)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - datetime.now(timezone.utc)).total_seconds()


def _error_info(raw: bytes) -> tuple[str, str]:
    """The server's error message and code from an OpenAI-style error body (or the body's start)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace").strip(), ""
    error = doc.get("error", doc) if isinstance(doc, dict) else doc
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("detail") or json.dumps(error)[:200])
        code = str(error.get("code") or error.get("type") or "")
        return message, code
    return str(error)[:200], ""


class EmbeddingsClient:
    """Embeddings of texts from an OpenAI-compatible ``/embeddings`` endpoint (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        dimensions: int | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        key_source: str = "the API key",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"The embeddings base URL must be an http(s) URL such as https://api.openai.com/v1. Got {public_url(base_url)!r} instead.")
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.dimensions = dimensions
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.key_source = key_source
        self._key = api_key
        self._sleep = sleep
        self._fatal: ApiError | None = None

    def __repr__(self) -> str:
        return f"EmbeddingsClient({public_url(self.url)!r}, model={self.model!r})"

    @property
    def where(self) -> str:
        return public_url(self.url)

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One request: the embeddings of ``texts`` (N x D float32), in order."""
        if self._fatal is not None:
            raise type(self._fatal)(str(self._fatal))
        if not texts:
            raise ValueError("embed needs at least one text.")
        payload: dict[str, Any] = {"model": self.model, "input": list(texts)}
        if self.dimensions is not None:
            payload["dimensions"] = self.dimensions
        try:
            return self._parse(self._post(payload), len(texts))
        except (ApiAuthError, ApiQuotaError) as error:
            self._fatal = error
            raise

    def _post(self, payload: dict[str, Any]) -> bytes:
        body = json.dumps(payload).encode("utf-8")
        headers = {
            "Authorization": f"Bearer {self._key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "affectstore",
        }
        last = ""
        attempts = self.retry.max_retries + 1
        for attempt in range(attempts):
            retry_after = None
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - http(s) checked above
                    return response.read()
            except urllib.error.HTTPError as error:
                raw = error.read() or b""
                message, code = _error_info(raw)
                message = self._scrub(message)
                status = error.code
                said = f"HTTP {status}: {message}" if message else f"HTTP {status}"
                if status in (401, 403):
                    raise ApiAuthError(
                        f"The embeddings API at {self.where} refused the key from {self.key_source} ({said}). "
                        f"Check that {self.key_source} holds a valid key for this server (and model {self.model!r})."
                    ) from None
                if status == 402 or (status == 429 and "quota" in code.lower()):
                    raise ApiQuotaError(
                        f"The embeddings API at {self.where} says the account has no quota left ({said}). "
                        "Add credit or raise the limit, then run again: finished videos are kept."
                    ) from None
                if status not in (408, 429) and status < 500:
                    raise ApiRequestError(f"The embeddings API at {self.where} refused the request for model {self.model!r} ({said}).") from None
                last = said
                retry_after = _retry_after(error.headers.get("Retry-After") if error.headers else None)
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as error:
                reason = getattr(error, "reason", error)
                last = self._scrub(f"{type(error).__name__}: {reason}")
            if attempt + 1 < attempts:
                wait = self.retry.wait(attempt, retry_after)
                logger.info("embeddings API at %s: %s; retry %d of %d in %.1f s", self.where, last, attempt + 1, self.retry.max_retries, wait)
                self._sleep(wait)
        raise ApiUnavailableError(
            f"The embeddings API at {self.where} did not answer successfully after {attempts} attempt(s); last: {last}. "
            "Try again later, or raise max_retries / backoff_s."
        )

    def _parse(self, raw: bytes, n: int) -> np.ndarray:
        def bad(what: str) -> ApiReplyError:
            shown = self._scrub(raw[:160].decode("utf-8", "replace"))
            return ApiReplyError(
                f"The reply of {self.where} is not an OpenAI embeddings list: {what} (reply starts {shown!r}). "
                "Check that the base URL ends at the API root (e.g. https://api.openai.com/v1)."
            )

        try:
            doc = json.loads(raw)
        except ValueError:
            raise bad("not JSON") from None
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, list):
            raise bad("no 'data' list")
        if len(data) != n:
            raise bad(f"{len(data)} embeddings for {n} texts")
        rows: list[Any] = [None] * n
        for position, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("embedding"), list):
                raise bad(f"item {position} has no 'embedding' list")
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n or rows[index] is not None:
                raise bad(f"item {position} has index {index!r}; each of 0..{n - 1} must appear once")
            rows[index] = item["embedding"]
        try:
            values = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):
            raise bad("embeddings that are not equal-length lists of numbers") from None
        if values.ndim != 2 or values.shape[1] == 0 or not np.all(np.isfinite(values)):
            raise bad("embeddings that are not equal-length lists of finite numbers")
        return values.astype(np.float32)
