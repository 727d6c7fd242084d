"""The provider boundary: whatever goes wrong inside a provider call comes out as a typed error.

A body that cannot be JSON is the caller's fault (``BadRequestError``, nothing sent); any other
exception becomes ``ServiceUnavailableError`` (``unexpected_error``), never a bare exception;
no form of a secret survives in the message; credentials in a ``base_url`` never reach a URL.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from actors.config.models import ModelConfig
from actors.errors import BadRequestError, LLMCallError, ServiceUnavailableError
from actors.providers import SimulatedProvider
from actors.providers.errors import ErrorContext
from actors.secrets import Masker, hide_userinfo

from .helpers import KEY, USER, collect, complete, probe

NESTED: Any = []
for _ in range(5000):
    NESTED = [NESTED]


def _tools(schema: Any) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "f", "parameters": schema}}]


# Parameters every provider passes on as they are (stop, tools), holding what JSON cannot.
UNSENDABLE = {
    "NaN": (USER, {"tools": _tools({"type": "object", "default": float("nan")})}),
    "infinity": (USER, {"tools": _tools({"type": "object", "maximum": float("inf")})}),
    "lone surrogate in a message": ([{"role": "user", "content": "bad \udc80 text"}], {}),
    "lone surrogate in a parameter": (USER, {"stop": ["\ud800"]}),
    "an object": (USER, {"tools": _tools({"type": "object", "default": object()})}),
    "nested 5,000 deep": (USER, {"tools": _tools({"type": "object", "default": NESTED})}),
}


@pytest.mark.parametrize("case", sorted(UNSENDABLE))
async def test_a_body_that_cannot_be_json_is_a_bad_request_and_never_sent(fake, provider, mode, case):
    messages, params = UNSENDABLE[case]
    with pytest.raises(BadRequestError) as info:
        await complete(provider, mode, messages=messages, params=params)
    assert info.value.error_code == "unencodable_request"
    chunks, error = await collect(provider, mode, messages=messages, params=params)
    assert not chunks and isinstance(error, BadRequestError)
    assert fake.stats("inst")["requests"] == 0


class _Broken(SimulatedProvider):
    """A provider with a bug: every call raises an exception that is not ours, quoting the key."""

    def _boom(self) -> None:
        raise RuntimeError(f"header value {(KEY + chr(10)).encode()!r} rejected; {json.dumps({'k': KEY})}")

    def call(self, messages, params, *, timeout=None, deadline=None):
        self._boom()

    async def acall(self, messages, params, *, timeout=None):
        self._boom()

    def stream(self, messages, params, *, timeout=None, deadline=None):
        yield from super().stream(messages, params, timeout=timeout)
        self._boom()

    async def astream(self, messages, params, *, timeout=None):
        async for chunk in super().astream(messages, params, timeout=timeout):
            yield chunk
        self._boom()

    def probe(self, *, timeout=None):
        self._boom()

    async def aprobe(self, *, timeout=None):
        self._boom()


def _broken() -> _Broken:
    model = ModelConfig(name="b", model_type="simulated", model_name="m", api_key=KEY)
    return _Broken(
        model.model_copy(update={"simulation": model.simulation.model_copy(update={"latency": 0})})
    )


def _check(error: BaseException) -> None:
    assert isinstance(error, ServiceUnavailableError) and error.error_code == "unexpected_error"
    assert "RuntimeError" in str(error)
    for text in (str(error), repr(error)):
        assert KEY not in text and KEY.encode().hex() not in text


async def test_an_unexpected_exception_in_any_provider_call_is_a_typed_error(mode):
    broken = _broken()
    with pytest.raises(LLMCallError) as info:
        await complete(broken, mode)
    _check(info.value)
    chunks, error = await collect(broken, mode)
    assert chunks and error is not None  # what came before the failure was delivered
    _check(error)
    with pytest.raises(LLMCallError) as info:
        if mode == "sync":
            broken.probe()
        else:
            await broken.aprobe()
    _check(info.value)


async def test_a_stream_closed_early_closes_the_provider_stream(mode):
    """The boundary's wrapper passes a caller's early close on to the stream inside."""
    provider = SimulatedProvider(ModelConfig(name="s", model_type="simulated", model_name="m"))
    if mode == "sync":
        chunks = provider.stream(USER, {})
        next(chunks)
        chunks.close()
        with pytest.raises(StopIteration):
            next(chunks)
    else:
        achunks = provider.astream(USER, {})
        await achunks.__anext__()
        await achunks.aclose()
        with pytest.raises(StopAsyncIteration):
            await achunks.__anext__()


def test_every_form_of_a_secret_is_masked():
    secret = 'sk-"quoted"\\back-ünï-' + KEY
    forms = [
        secret,
        repr(secret),
        json.dumps(secret),
        json.dumps(json.dumps(secret)),
        repr(secret.encode()),
        "https://x/?key=" + __import__("urllib.parse").parse.quote(secret, safe=""),
    ]
    masker = Masker([secret])
    ctx = ErrorContext(instance="i", provider="p", model_name="m", base_url="u", key_hint="K", secret=secret)
    for form in forms:
        assert KEY not in masker.mask(f"before {form} after"), form
        assert KEY not in ctx.clean(f"before {form} after"), form
    assert masker.mask("nothing secret here") == "nothing secret here"


def test_credentials_in_any_url_are_hidden():
    text = "POST http://user:pa%40ss@host:8080/v1 and redis://:hunter2@cache:6379/0 and mailto x@y"
    shown = hide_userinfo(text)
    assert "pa%40ss" not in shown and "hunter2" not in shown and "user:" not in shown
    assert "http://***@host:8080/v1" in shown and "redis://***@cache:6379/0" in shown
    assert shown.endswith("mailto x@y")


async def test_credentials_in_a_base_url_go_in_a_header_never_in_a_url(fake, make, mode, caplog):
    caplog.set_level(logging.DEBUG)
    base = fake.openai_base_url("inst").replace("http://", "http://proxy-user:pa%40ss-w0rd@")
    provider = make("openai", base_url=base)
    response = await complete(provider, mode)
    assert response.content
    [request] = fake.requests("inst")
    expected = base64.b64encode(b"proxy-user:pa@ss-w0rd").decode()
    assert request["headers"]["authorization"] == f"Basic {expected}"  # as httpx itself would send
    # ... in place of the key's header, not beside it (the fake's record keeps one of each name)
    assert [k for k in provider._headers if k.lower() == "authorization"] == ["authorization"]
    assert "pa%40ss-w0rd" not in repr(provider) and "pa%40ss-w0rd" not in caplog.text
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the URL
    fake.configure("inst", status=500)
    error = await complete_error(provider, mode)
    for secret in ("pa%40ss-w0rd", "pa@ss-w0rd", expected):
        assert secret not in str(error)


async def test_a_key_in_a_base_url_query_goes_on_every_request_and_nowhere_else(
    fake, make, shape, mode, caplog
):
    caplog.set_level(logging.DEBUG)
    qkey = "qk-Zz81-in-the-query"
    base = fake.anthropic_base_url("inst") if shape == "anthropic" else fake.openai_base_url("inst")
    provider = make(shape, base_url=f"{base}?key={qkey}&v=2")
    assert (await complete(provider, mode)).content
    assert (await collect(provider, mode))[1] is None
    await probe(provider, mode)
    queries = [r["query"] for r in fake.requests("inst")]
    assert queries[:2] == [f"key={qkey}&v=2"] * 2  # chat and stream: path first, then the query
    assert queries[2] == (f"limit=1&key={qkey}&v=2" if shape == "anthropic" else f"key={qkey}&v=2")
    assert provider.base_url == base and qkey not in repr(provider) and qkey not in repr(provider.model)
    assert qkey in provider.model.secrets() and "2" in provider.model.secrets()
    assert "?key=***&v=2" in caplog.text and qkey not in caplog.text  # httpx's request lines
    fake.configure("inst", status=500)
    assert qkey not in str(await complete_error(provider, mode))
    fake.kill()
    try:
        error = await complete_error(provider, mode)
    finally:
        fake.restore()
    assert base in str(error) and qkey not in str(error) and "?" not in str(error)


async def complete_error(provider: Any, mode: str) -> LLMCallError:
    with pytest.raises(LLMCallError) as info:
        await complete(provider, mode)
    return info.value
