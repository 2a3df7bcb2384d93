"""The OpenAI-compatible embeddings client and the hosted text extractors, against a real HTTP
server on 127.0.0.1 started by the test: success, batching, 429 then success, 5xx retries
exhausted, 401/403, quota, malformed replies, and the key never in a log, message or store."""

import email.utils
import json
import logging
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import affectstore.extract as ax
from affectstore.extract.embeddings_api import (
    ApiAuthError,
    ApiQuotaError,
    ApiReplyError,
    ApiRequestError,
    ApiUnavailableError,
    EmbeddingsClient,
    RetryPolicy,
    _retry_after,
    public_url,
)
from affectstore.extract.errors import ModelLoadError
from affectstore.store import TextSegments
from affectstore.testing.text import EmbeddingsServer, fake_embedding

KEY = "sk-test-0123456789abcdef-SECRET"


def client(server, *, retries=3, backoff=0.5, sleeps=None, **kw):
    return EmbeddingsClient(server.url, KEY, "text-embedding-3-small", retry=RetryPolicy(retries, backoff, 4.0),
                            key_source="$OPENAI_API_KEY", sleep=(sleeps.append if sleeps is not None else lambda s: None), **kw)


def test_success_returns_rows_in_input_order_with_the_bearer_key():
    with EmbeddingsServer(dim=6, key=KEY) as server:
        rows = client(server).embed(["hello", "world", "again"])
    np.testing.assert_array_equal(rows, np.stack([fake_embedding(t, 6) for t in ("hello", "world", "again")]))
    assert rows.dtype == np.float32
    [request] = server.requests
    assert request["path"] == "/v1/embeddings"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["body"] == {"model": "text-embedding-3-small", "input": ["hello", "world", "again"]}


def test_dimensions_are_asked_for():
    with EmbeddingsServer(dim=6, key=KEY) as server:
        rows = client(server, dimensions=4).embed(["hello"])
    assert rows.shape == (1, 4) and server.requests[0]["body"]["dimensions"] == 4


def test_429_then_success_waits_retry_after():
    sleeps = []
    script = [(429, {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}, {"Retry-After": "1.5"})]
    with EmbeddingsServer(key=KEY, script=script) as server:
        rows = client(server, sleeps=sleeps).embed(["hello"])
    np.testing.assert_array_equal(rows[0], fake_embedding("hello", 8))
    assert len(server.requests) == 2 and sleeps == [1.5]


def test_5xx_is_retried_with_exponential_back_off_until_the_retries_run_out():
    sleeps = []
    script = [(503, {"error": {"message": "overloaded"}}, {})] * 4
    with EmbeddingsServer(key=KEY, script=script) as server:
        with pytest.raises(ApiUnavailableError, match=r"did not answer successfully after 4 attempt\(s\); last: HTTP 503: overloaded"):
            client(server, retries=3, sleeps=sleeps).embed(["hello"])
    assert len(server.requests) == 4 and sleeps == [0.5, 1.0, 2.0]


def test_500_then_success():
    script = [(500, b"internal error", {}), (502, b"bad gateway", {})]
    with EmbeddingsServer(key=KEY, script=script) as server:
        assert client(server).embed(["hi"]).shape == (1, 8)
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_is_clear_not_retried_and_stops_later_calls(status):
    script = [(status, {"error": {"message": f"Incorrect API key provided: {KEY}"}}, {})]
    with EmbeddingsServer(key=KEY, script=script) as server:
        c = client(server)
        with pytest.raises(ApiAuthError, match=rf"refused the key from \$OPENAI_API_KEY \(HTTP {status}: Incorrect API key provided: \*\*\*\)") as info:
            c.embed(["hello"])
        with pytest.raises(ApiAuthError, match="refused the key"):
            c.embed(["more"])
    assert KEY not in str(info.value)
    assert len(server.requests) == 1  # the second call sent nothing


@pytest.mark.parametrize(
    ("status", "body"),
    [(429, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
     (402, {"message": "Payment Required"})],
)
def test_quota_failure_is_clear_and_not_retried(status, body):
    with EmbeddingsServer(key=KEY, script=[(status, body, {})]) as server:
        with pytest.raises(ApiQuotaError, match=rf"says the account has no quota left \(HTTP {status}: .*\)\. Add credit"):
            client(server).embed(["hello"])
    assert len(server.requests) == 1


def test_other_4xx_is_a_request_error_naming_the_model():
    script = [(404, {"error": {"message": "The model `text-embedding-9` does not exist"}}, {})]
    with EmbeddingsServer(key=KEY, script=script) as server:
        with pytest.raises(ApiRequestError, match=r"refused the request for model 'text-embedding-3-small' \(HTTP 404: The model `text-embedding-9` does not exist\)"):
            client(server).embed(["hello"])
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>gateway</html>", r"not JSON \(reply starts '<html>gateway</html>'\)"),
        ({"object": "list"}, "no 'data' list"),
        ({"data": [{"embedding": [1.0]}]}, "1 embeddings for 2 texts"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}, "item 1 has index 0; each of 0..1 must appear once"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [2.0, 3.0]}]}, "not equal-length lists of numbers"),
        ({"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": [2.0]}]}, "item 0 has no 'embedding' list"),
    ],
)
def test_malformed_replies_are_reply_errors(body, message):
    with EmbeddingsServer(key=KEY, script=[(200, body, {})]) as server:
        with pytest.raises(ApiReplyError, match=message) as info:
            client(server).embed(["hello", "world"])
    assert "Check that the base URL ends at the API root" in str(info.value)


def test_connection_refused_is_retried_then_unavailable():
    with EmbeddingsServer(key=KEY) as server:
        url = server.url
    sleeps = []
    c = EmbeddingsClient(url, KEY, "m", retry=RetryPolicy(2, 0.25, 1.0), sleep=sleeps.append, timeout_s=2.0)
    with pytest.raises(ApiUnavailableError, match=r"after 3 attempt\(s\); last: URLError"):
        c.embed(["hello"])
    assert sleeps == [0.25, 0.5]


def test_retry_after_and_urls():
    assert _retry_after("2") == 2.0 and _retry_after(None) is None and _retry_after("soon") is None
    assert RetryPolicy().wait(0, _retry_after("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0  # a date in the past: no wait
    soon = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < _retry_after(soon) <= 30
    assert RetryPolicy(5, 1.0, 10.0).wait(6, None) == 10.0 and RetryPolicy().wait(0, 120.0) == 60.0
    assert public_url("https://user:pw@example.com:8443/v1?key=abc#x") == "https://example.com:8443/v1"
    with pytest.raises(ValueError, match="must be an http\\(s\\) URL"):
        EmbeddingsClient("ftp://example.com", KEY, "m")
    assert KEY not in repr(EmbeddingsClient("https://example.com/v1", KEY, "m"))


# --------------------------------------------------------------------------- the extractors


A = TextSegments(np.array([0.0, 1.0]), np.array([1.0, 2.0]), ["I am so happy today", "Kids are talking by the door"])
B = TextSegments(np.array([0.5]), np.array([1.5]), ["hello world"])


@pytest.fixture
def env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GIGACHAT_API_KEY", "GIGACHAT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_openai_small_batches_requests_and_writes_video_and_segment_rows(env):
    with EmbeddingsServer(dim=12, key=KEY) as server:
        env.setenv("OPENAI_API_KEY", KEY)
        env.setenv("OPENAI_BASE_URL", server.url)
        ex = ax.create_extractor("openai-small", batch_size=2).load()
        out = ex.extract_batch([A, B])
    assert ex.output_specs()["openai-small"].dim == 12
    inputs = [r["body"]["input"] for r in server.requests]
    assert inputs[0] == ["affectstore dimension probe"]
    assert all(len(i) <= 2 for i in inputs[1:]) and sorted(t for i in inputs[1:] for t in i) == sorted(
        ["I am so happy today", "Kids are talking by the door", "I am so happy today Kids are talking by the door", "hello world"])
    np.testing.assert_array_equal(out[0]["openai-small"].values, np.stack([fake_embedding(t, 12) for t in A.text]))
    np.testing.assert_array_equal(out[0]["openai-small-video"].values[0], fake_embedding(" ".join(A.text), 12))
    np.testing.assert_array_equal(out[1]["openai-small-video"].values[0], fake_embedding("hello world", 12))
    assert len(server.requests) == 1 + 2  # probe + 4 distinct texts in 2 requests ("hello world" is both rows of B)
    model = ex.provenance()["openai-small"]["model"]
    assert model == {"id": "text-embedding-3-small", "api": "openai-compatible embeddings", "endpoint": server.url + "/embeddings",
                     "dimensions": None, "dim": 12, "api_key_env": "OPENAI_API_KEY"}


def test_gigachat_reads_its_own_variables_and_a_base_url_setting_wins(env):
    with EmbeddingsServer(dim=5, key="giga-token") as server:
        env.setenv("GIGACHAT_API_KEY", "giga-token")
        env.setenv("GIGACHAT_BASE_URL", "http://127.0.0.1:9/nothing-here")
        ex = ax.create_extractor("gigachat", base_url=server.url).load()
        assert ex.extract(B)["gigachat"].values.shape == (1, 5)
    assert server.requests[0]["body"]["model"] == "Embeddings"
    assert ax.create_extractor("gigachat").config.resolved_url({}) == "https://gigachat.devices.sberbank.ru/api/v1"


def test_a_missing_key_names_the_variable(env):
    with pytest.raises(ModelLoadError, match="the environment variable OPENAI_API_KEY is not set") as info:
        ax.create_extractor("openai-small").load()
    assert "export OPENAI_API_KEY=" in info.value.advice and "--set openai-small.api_key_env=NAME" in info.value.advice


def test_a_refused_key_fails_at_load(env):
    with EmbeddingsServer(key="the-right-key") as server:
        env.setenv("OPENAI_API_KEY", KEY)
        with pytest.raises(ModelLoadError, match=r"refused the key from \$OPENAI_API_KEY \(HTTP 401: Incorrect API key provided.\)"):
            ax.create_extractor("openai-small", base_url=server.url).load()


def test_hosted_settings_are_checked():
    with pytest.raises(ValueError, match="api_key_env must be an environment variable name"):
        ax.create_extractor("openai-small", api_key_env="sk-not a name")
    with pytest.raises(ValueError, match="base_url must be None or an http\\(s\\) URL"):
        ax.create_extractor("openai-small", base_url="api.openai.com")
    with pytest.raises(ValueError, match="dimensions must be None or an int >= 1"):
        ax.create_extractor("openai-small", dimensions=0)
    with pytest.raises(ValueError, match="openai-small runs on cpu only"):
        ax.create_extractor("openai-small", device="cuda")
    # Where the API is and how the key is found change no numbers: they stay out of the hash.
    base = ax.create_extractor("openai-small")
    assert ax.create_extractor("openai-small", base_url="http://localhost:1/v1", api_key_env="MY_KEY").config_hash == base.config_hash
    assert ax.create_extractor("openai-small", model="text-embedding-3-large").config_hash != base.config_hash


# --------------------------------------------------------------------------- through the runner


def test_run_through_the_store_never_logs_or_stores_the_key(env, tmp_path, caplog, capfd):
    from affectstore.extract.runner import RunOptions, run_extraction
    from affectstore.store import FeatureStore
    from affectstore.testing.datasets import make_clips_dataset
    from affectstore.testing.text import write_transcripts

    built = make_clips_dataset(tmp_path / "data", n_per_class=2, extensions=(".wav",), with_split=False)
    ids = sorted(built.video_labels)
    store = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    texts = {v: [(0.0, 0.5, f"clip {k} says hello"), (0.5, 1.0, "and goodbye")] for k, v in enumerate(ids)}
    texts[ids[-1]] = []  # no speech
    write_transcripts(store, "clips", "asr", texts)
    with EmbeddingsServer(dim=4, key=KEY) as server, caplog.at_level(logging.DEBUG):
        env.setenv("OPENAI_API_KEY", KEY)
        env.setenv("OPENAI_BASE_URL", server.url)
        summary = run_extraction("clips", built.root, ["openai-small"], store, settings={"openai-small": {"transcript": "asr"}},
                                 options=RunOptions(progress=False))
    assert summary.failed == 0 and summary.done == len(ids)
    seg = store.read_video("clips", "openai-small", ids[0])
    np.testing.assert_array_equal(seg.values, np.stack([fake_embedding("clip 0 says hello", 4), fake_embedding("and goodbye", 4)]))
    np.testing.assert_array_equal(seg.times, [0.25, 0.75])
    empty = store.read_video("clips", "openai-small-video", ids[-1])
    np.testing.assert_array_equal(empty.values, np.zeros((1, 4)))
    assert store.read_video("clips", "openai-small", ids[-1]).values.shape == (0, 4)
    prov = store.provenance("clips", "openai-small")
    assert prov["depends_on"] == {"asr": "transcript-v1"} and prov["kind"] == "segments"
    assert store.provenance("clips", "openai-small-video")["kind"] == "video"
    # The key is nowhere: not in the log, not on the terminal, not in any file of the store.
    out, err = capfd.readouterr()
    assert KEY not in caplog.text and KEY not in out + err and KEY not in json.dumps(prov)
    for path in (tmp_path / "s.zarr").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_an_auth_failure_mid_run_fails_the_remaining_videos_with_the_reason(env, tmp_path):
    from affectstore.extract.runner import RunOptions, run_extraction
    from affectstore.store import FeatureStore
    from affectstore.testing.datasets import make_clips_dataset
    from affectstore.testing.text import write_transcripts

    built = make_clips_dataset(tmp_path / "data", n_per_class=2, extensions=(".wav",), with_split=False)
    ids = sorted(built.video_labels)
    store = FeatureStore.open(tmp_path / "s.zarr", mode="a")
    write_transcripts(store, "clips", "asr", {v: [(0.0, 1.0, f"text of {v}")] for v in ids})
    ok = {"object": "list", "data": [{"index": 0, "embedding": [0.5, 0.5]}]}
    expired = (401, {"error": {"message": "Token has expired"}}, {})
    with EmbeddingsServer(key=KEY, script=[(200, ok, {}), expired]) as server:
        env.setenv("OPENAI_API_KEY", KEY)
        summary = run_extraction("clips", built.root, ["openai-small"], store,
                                 settings={"openai-small": {"transcript": "asr", "base_url": server.url}}, options=RunOptions(progress=False))
        sent = len(server.requests)
    assert summary.failed == len(ids) and summary.done == 0
    assert all("ApiAuthError" in f.reason and "Token has expired" in f.reason for f in summary.failures)
    assert sent == 2  # the probe, then the batch that met the 401; every later video failed without a request
    assert {f.video_id for f in store.failures("clips", "openai-small")} == set(ids)


def test_affect_extract_without_a_key_stops_with_exit_2_and_names_the_variable(env, tmp_path):
    from typer.testing import CliRunner

    from affectstore.cli import app
    from affectstore.store import FeatureStore
    from affectstore.testing.datasets import make_clips_dataset
    from affectstore.testing.text import write_transcripts

    built = make_clips_dataset(tmp_path / "data", n_per_class=1, extensions=(".wav",), with_split=False)
    write_transcripts(FeatureStore.open(tmp_path / "s.zarr", mode="a"), "clips", "asr", {v: [(0.0, 1.0, "hi")] for v in built.video_labels})
    result = CliRunner().invoke(app, ["extract", "clips", str(built.root), "--features", "openai-small", "--set", "openai-small.transcript=asr",
                                      "--store", str(tmp_path / "s.zarr"), "--no-progress"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "Extractor 'openai-small' could not load model 'text-embedding-3-small': no API key: the environment variable OPENAI_API_KEY is not set" in text
    assert "Traceback" not in result.output
