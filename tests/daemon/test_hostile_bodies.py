"""Hostile clients against a real daemon: every malformed body gets a 4xx in the client's shape.

Property-based fuzzing of both APIs (wrong types, unknown fields, deep nesting, strings near
the body limit, invalid UTF-8, lone surrogates, NaN, truncation, random bytes), fixed cases of
what fuzzing once found, slowloris connections, and secrets that must never reach the log.
Never a 5xx, and the daemon is healthy afterwards.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import httpx
import pytest
from daemon_helpers import MAX_BODY, start_daemon, wait_until, write_topology
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
MSG = [{"role": "user", "content": "hello"}]
BASE = {
    OPENAI: {"model": "fuzz", "messages": MSG},
    ANTHROPIC: {"model": "fuzz", "max_tokens": 16, "messages": MSG},
}
FIELDS = {
    OPENAI: [
        "model", "messages", "stream", "stream_options", "n", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "stop", "tools", "tool_choice", "response_format", "user", "seed",
    ],
    ANTHROPIC: [
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences",
        "metadata", "tools", "tool_choice", "stream", "top_k", "thinking",
    ],
}  # fmt: skip

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
PART = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "image", "tool_use", "tool_result", "x"])},
    optional={"text": JSON, "image_url": JSON, "source": JSON, "id": JSON, "input": JSON, "content": JSON},
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer", "tool", "robot"]) | JSON},
    optional={
        "content": st.text(max_size=40) | st.lists(PART, max_size=3) | JSON,
        "tool_calls": JSON,
        "tool_call_id": JSON,
        "name": JSON,
    },
)
VALUE = JSON | st.lists(MESSAGE, max_size=3) | st.sampled_from(["fuzz", "chat", "no-such-model"])

# Raw changes to the encoded body: what a JSON encoder would never write.
#: Bodies per API; raise it for a longer hunt (``LLM_ACTORS_FUZZ_EXAMPLES=2000``).
EXAMPLES = int(os.environ.get("LLM_ACTORS_FUZZ_EXAMPLES", "100"))

RAW = st.sampled_from(
    ["none", "none", "nan", "infinity", "surrogate", "bad utf-8", "truncate", "deep", "near limit", "bytes"]
)


def _raw(data: st.DataObject, body: bytes, change: str) -> bytes:
    tail = body[:-1]  # every body here is an object: put a member before its closing brace
    if change == "nan":
        return tail + b',"temperature":NaN}'
    if change == "infinity":
        return tail + b',"seed":-Infinity}'
    if change == "surrogate":
        return tail + b',"user":"\\udc80\\ud800x"}'
    if change == "bad utf-8":
        at = data.draw(st.integers(0, len(body)), label="at")
        return body[:at] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + body[at:]
    if change == "truncate":
        return body[: data.draw(st.integers(0, len(body) - 1), label="cut")]
    if change == "deep":
        depth = data.draw(st.sampled_from([100, 900, 5_000, 100_000]), label="depth")
        return tail + b',"metadata":' + b"[" * depth + b"]" * depth + b"}"
    if change == "near limit":
        room = MAX_BODY - len(body) - len(',"user":""')
        size = max(0, room + data.draw(st.integers(-64, 64), label="offset"))
        return tail + b',"user":"' + b"a" * size + b'"}'
    if change == "bytes":
        return data.draw(st.binary(max_size=200), label="bytes")
    return body


def _check_answer(path: str, r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code < 400:
        return
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    if not path.startswith(ANTHROPIC):  # the OpenAI-shaped routes
        error = body["error"]
        assert isinstance(error["message"], str) and error["type"].endswith("_error"), body
    else:
        assert body["type"] == "error" and isinstance(body["error"]["message"], str), body
        assert body["error"]["type"].endswith("_error") or body["error"]["type"] == "request_too_large", body


@pytest.fixture(scope="module")
def http(daemon: Any) -> Any:
    with httpx.Client(base_url=daemon.url, timeout=15) as client:
        yield client


def _healthy(daemon: Any, http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    r = http.post(OPENAI, json=BASE[OPENAI])
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    # Every fuzzed request has finished (the figure leaves the stats request out).
    wait_until(lambda: http.get("/v1/stats").json()["daemon"]["in_flight"] == 0, what="no request in flight")


@pytest.mark.timeout(120 + EXAMPLES)
@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
def test_fuzzed_bodies_get_a_4xx_in_the_clients_shape_never_a_5xx(daemon, http, path):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        body: dict[str, Any] = dict(BASE[path])
        names = st.sampled_from(FIELDS[path]) | st.text(min_size=1, max_size=12)
        for name in data.draw(st.lists(names, max_size=4, unique=True), label="fields"):
            if data.draw(st.booleans(), label="delete"):
                body.pop(name, None)
            else:
                body[name] = data.draw(VALUE, label=name)
        raw = _raw(data, json.dumps(body).encode(), data.draw(RAW, label="raw"))
        r = http.post(path, content=raw, headers={"content-type": "application/json"})
        _check_answer(path, r)

    fuzz()
    _healthy(daemon, http)


FOUND = {
    "nested 100,000 deep": b'{"model":"fuzz","messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "nested 900 deep in a passed field": (
        b'{"model":"fuzz","max_tokens":9,"messages":[{"role":"user","content":"x"}],"metadata":{"x":'
        + b"[" * 900
        + b"]" * 900
        + b"}}"
    ),
    "lone surrogate in a message": b'{"model":"fuzz","max_tokens":9,"messages":[{"role":"user","content":"\\udc80"}]}',
    "lone surrogate in a passed field": (
        b'{"model":"fuzz","max_tokens":9,"messages":[{"role":"user","content":"x"}],"user":"\\ud800"}'
    ),
    "NaN in a passed field": b'{"model":"fuzz","max_tokens":9,"messages":[{"role":"user","content":"x"}],"seed":NaN}',
    "a huge number": b'{"model":"fuzz","max_tokens":9,"messages":[{"role":"user","content":"x"}],"seed":1e999}',
    "an encoded surrogate": b'{"model":"fuzz","max_tokens":9,"messages":[{"role":"user","content":"\xed\xb2\x80"}]}',
    "a key that is a surrogate": b'{"model":"fuzz","max_tokens":9,"messages":[{"role":"user","\\udc80":1}]}',
    "over the limit": b'{"model":"fuzz","messages":[],"user":"' + b"a" * MAX_BODY + b'"}',
}


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
@pytest.mark.parametrize("name", sorted(FOUND))
@pytest.mark.parametrize("stream", [False, True])
def test_what_fuzzing_found_is_a_4xx(http, path, name, stream):
    raw = FOUND[name]
    if stream:
        raw = raw[:-1] + b',"stream":true}'
    r = http.post(path, content=raw, headers={"content-type": "application/json"})
    _check_answer(path, r)
    if name != "nested 900 deep in a passed field":  # valid JSON: an answer, or a 400 from upstream
        assert r.status_code in (400, 413), r.text


# Raw hostilities (the body parser's part) against the other routes, on a valid body of each.
OTHER_ROUTES = {
    "/v1/responses": b'{"model":"fuzz","input":"hello"}',
    "/v1/embeddings": b'{"model":"emb","input":["hello"]}',
    "/v1/messages/count_tokens": b'{"model":"fuzz","messages":[{"role":"user","content":"hi"}]}',
}
HOSTILE_MEMBERS = {
    "deep": b',"metadata":' + b"[" * 100_000 + b"]" * 100_000,
    "NaN": b',"temperature":NaN',
    "lone surrogate": b',"user":"\\udc80"',
    "bad UTF-8": b',"user":"\xff"',
    "too large": b',"user":"' + b"a" * MAX_BODY + b'"',
}


@pytest.mark.parametrize("path", sorted(OTHER_ROUTES))
@pytest.mark.parametrize("name", sorted(HOSTILE_MEMBERS))
def test_the_other_routes_answer_hostile_bodies_with_a_4xx(http, path, name):
    raw = OTHER_ROUTES[path][:-1] + HOSTILE_MEMBERS[name] + b"}"
    r = http.post(path, content=raw, headers={"content-type": "application/json"})
    _check_answer(path, r)
    assert r.status_code in (400, 413), r.text


def test_slowloris_clients_do_not_stop_the_daemon_serving(daemon, http):
    """Connections that trickle their headers or body hold nothing but themselves."""
    host, port = daemon.url.removeprefix("http://").split(":")
    socks = []
    try:
        for i in range(40):
            s = socket.create_connection((host, int(port)), timeout=5)
            if i % 2:  # headers never finished
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: appl")
            else:  # a body that promises more than it sends
                s.sendall(
                    b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                    b'content-length: 5000\r\n\r\n{"model": "fuzz", '
                )
            socks.append(s)
        for _ in range(5):
            r = http.post(OPENAI, json=BASE[OPENAI])
            assert r.status_code == 200
    finally:
        for s in socks:
            s.close()
    _healthy(daemon, http)


KEY = "sk-live-LEAKCANARY-5b0d3c9e"
PASSWORD = "pr0xy-PASSCANARY"
QKEY = "QUERYCANARY-7e1f"  # a key some servers take in base_url's query


def test_no_secret_or_url_credential_reaches_the_log_or_stats(fake, tmp_path):
    """A key exported with its line break, credentials or a key in a base_url, failures of every kind."""
    proxied = fake.openai_base_url("cred1").replace("http://", f"http://gw-user:{PASSWORD}@")
    root = write_topology(
        tmp_path,
        fake,
        models={
            "cred1": {"base_url": proxied, "api_key": "${LEAK_KEY}"},
            "cred2": {"api_key": "${LEAK_KEY}"},
            "cred3": {"api_key": "${LEAK_KEY}", "model_type": "anthropic"},
            "cred4": {"base_url": fake.openai_base_url("cred4") + "?key=${LEAK_QKEY}"},
            "cred5": {"base_url": "http://127.0.0.1:1/v1?key=${LEAK_QKEY}"},  # refused
        },
        groups={
            "creds": {
                "echelon1": {"models": ["cred1", "cred2", "cred3", "cred4", "cred5"], "max_retries": 4},
                "fallback_config": {"retry_delay": 0},
            }
        },
    )
    d = start_daemon(root, "--log-level", "debug", env={"LEAK_KEY": KEY + "\n", "LEAK_QKEY": QKEY})
    try:
        r = d.post(OPENAI, json={"model": "creds", "messages": MSG})
        assert r.status_code == 200
        seen = [r.text]
        for fault in ({"status": 500}, {"status": 401}, {"drop": True}, {"garbage": True}):
            for name in ("cred1", "cred2", "cred3", "cred4"):
                fake.configure(name, **fault)
            for path in (OPENAI, ANTHROPIC):
                r = d.post(path, json={"model": "creds", "max_tokens": 9, "messages": MSG})
                assert r.status_code >= 400
                seen.append(r.text)
            d.post("/admin/reload")  # lifts the disables of a 401, so every instance is called again
        seen.append(d.get("/v1/stats").text)
        seen.append(d.get("/metrics").text)
    finally:
        d.stop()
    log = d.log_text()
    assert "HTTP Request: POST" in log  # httpx's own lines are there, redacted
    assert "gw-user:" not in log and "/cred1/v1/chat/completions" in log
    assert "/cred4/v1/chat/completions?key=***" in log
    assert any("could not connect to http://127.0.0.1:1/v1 " in text for text in seen)
    for text in [log, *seen]:
        assert KEY not in text and PASSWORD not in text and QKEY not in text
    assert fake.requests("cred4") and {r["query"] for r in fake.requests("cred4")} == {f"key={QKEY}"}
    keys = [
        r["headers"].get("authorization") or r["headers"].get("x-api-key") for r in fake.requests("cred2")
    ]
    assert keys and all(k == f"Bearer {KEY}" for k in keys if k and k.startswith("Bearer"))
