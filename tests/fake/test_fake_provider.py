"""The fake provider server, exercised with real httpx calls over loopback."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
from typing import Any

import h11
import httpx
import pytest

from actors.fake import FakeProvider, Fault

USER = [{"role": "user", "content": "weather in Paris"}]
TOOLS_OPENAI = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]
TOOLS_ANTHROPIC = [
    {"name": "get_weather", "input_schema": {"type": "object"}},
    {"name": "get_time", "input_schema": {"type": "object"}},
]


def openai(client: httpx.Client, fake: FakeProvider, instance: str, **body: Any) -> httpx.Response:
    body = {"model": "gpt-test", "messages": USER, **body}
    return client.post(f"{fake.openai_base_url(instance)}/chat/completions", json=body)


def anthropic(client: httpx.Client, fake: FakeProvider, instance: str, **body: Any) -> httpx.Response:
    body = {"model": "claude-test", "max_tokens": 64, "messages": USER, **body}
    return client.post(f"{fake.anthropic_base_url(instance)}/v1/messages", json=body)


def sse(text: str) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of every SSE event in a body."""
    events = []
    for block in text.strip().split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:] if line[6:] == "[DONE]" else json.loads(line[6:])
        events.append((name, data))
    return events


@pytest.fixture
def client():
    with httpx.Client(timeout=5) as c:
        yield c


# -- normal answers -------------------------------------------------------------------------------


def test_openai_completion_echoes_last_user_message(fake, client):
    messages = [
        {"role": "system", "content": "You are terse"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": [{"type": "text", "text": "hello big world"}]},
    ]
    r = openai(client, fake, "a", messages=messages)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-test"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "echo: hello big world"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 3 + 2 + 2 + 3, "completion_tokens": 4, "total_tokens": 14}


def test_anthropic_message_echoes_last_user_message(fake, client):
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}]
    r = anthropic(client, fake, "b", messages=messages, system="be brief")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == "claude-test"
    assert body["content"] == [{"type": "text", "text": "echo: hi there"}]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"] == {"input_tokens": 4, "output_tokens": 3}


def test_reply_overrides_the_echo(fake, client):
    fake.configure("a", reply="fixed answer")
    assert openai(client, fake, "a").json()["choices"][0]["message"]["content"] == "fixed answer"
    assert anthropic(client, fake, "a").json()["content"][0]["text"] == "fixed answer"


def test_models_listing_in_each_shape(fake, client):
    r = client.get(f"{fake.openai_base_url('a')}/models")
    assert r.json()["object"] == "list" and r.json()["data"][0]["object"] == "model"
    r = client.get(f"{fake.anthropic_base_url('a')}/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert r.json()["data"][0]["type"] == "model" and r.json()["has_more"] is False
    assert fake.stats("a")["by_api"]["models"] == 2


def test_invalid_requests_get_the_providers_400(fake, client):
    r = client.post(f"{fake.anthropic_base_url('a')}/v1/messages", json={"model": "m", "messages": USER})
    assert r.status_code == 400
    assert r.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    r = client.post(f"{fake.openai_base_url('a')}/chat/completions", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert fake.stats("a")["statuses"] == {400: 2}
    assert fake.requests("a")[1]["body"] is None


def test_unknown_paths_and_methods(fake, client):
    r = client.post(f"{fake.url}/a/v1/v1/messages", json={})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    assert client.get(f"{fake.openai_base_url('a')}/chat/completions").status_code == 405
    assert fake.stats() == {}


# -- what is recorded ------------------------------------------------------------------------------


def test_records_bodies_headers_and_arrival_order(fake, client):
    client.post(
        f"{fake.openai_base_url('b')}/chat/completions",
        json={"model": "gpt-test", "messages": USER, "max_tokens": 7},
        headers={"Authorization": "Bearer sk-b"},
    )
    anthropic(client, fake, "a")
    openai(client, fake, "c")
    assert fake.log == [("b", "openai"), ("a", "anthropic"), ("c", "openai")]
    seen = fake.requests("b")[0]
    assert seen["body"]["max_tokens"] == 7
    assert seen["headers"]["authorization"] == "Bearer sk-b"
    assert fake.stats("a") == {
        "requests": 1,
        "in_flight": 0,
        "peak_in_flight": 1,
        "by_api": {"openai": 0, "anthropic": 1},
        "statuses": {200: 1},
    }
    assert set(fake.stats()) == {"a", "b", "c"}
    assert client.get(f"{fake.url}/_stats").json()["c"]["statuses"] == {"200": 1}


def test_reset_clears_faults_stats_and_log(fake, client):
    fake.configure("a", status=500)
    assert openai(client, fake, "a").status_code == 500
    fake.reset()
    assert fake.stats() == {} and fake.log == [] and fake.requests("a") == []
    assert fake.fault("a") is None
    assert openai(client, fake, "a").status_code == 200


# -- status faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "err_type", "err_code"),
    [
        (429, None, "requests", "rate_limit_exceeded"),
        (429, "insufficient_quota", "insufficient_quota", "insufficient_quota"),
        (400, "context_length_exceeded", "invalid_request_error", "context_length_exceeded"),
        (401, None, "invalid_request_error", "invalid_api_key"),
        (404, None, "invalid_request_error", "model_not_found"),
        (500, None, "server_error", None),
        (503, None, "server_error", None),
    ],
)
def test_openai_error_bodies(fake, client, status, code, err_type, err_code):
    fake.configure("a", status=status, error_code=code)
    r = openai(client, fake, "a")
    assert r.status_code == status
    error = r.json()["error"]
    assert (error["type"], error["code"]) == (err_type, err_code)
    assert error["message"]
    if code == "context_length_exceeded":
        assert "maximum context length" in error["message"]
    assert fake.stats("a")["statuses"] == {status: 1}


@pytest.mark.parametrize(
    ("status", "code", "err_type"),
    [
        (429, None, "rate_limit_error"),
        (529, None, "overloaded_error"),
        (401, None, "authentication_error"),
        (403, None, "permission_error"),
        (404, None, "not_found_error"),
        (400, None, "invalid_request_error"),
        (500, None, "api_error"),
        (400, "context_length_exceeded", "invalid_request_error"),
    ],
)
def test_anthropic_error_bodies(fake, client, status, code, err_type):
    fake.configure("a", status=status, error_code=code)
    r = anthropic(client, fake, "a")
    assert r.status_code == status
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == err_type
    if code == "context_length_exceeded":
        assert body["error"]["message"].startswith("prompt is too long: ")
        assert body["error"]["message"].endswith(" tokens > 200000 maximum")


def test_retry_after_and_rate_limit_headers(fake, client):
    fake.configure(
        "a",
        status=429,
        retry_after=2,
        retry_after_ms=1500,
        headers={
            "x-ratelimit-reset-requests": "1s",
            "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
        },
    )
    r = openai(client, fake, "a")
    assert r.headers["retry-after"] == "2"
    assert r.headers["retry-after-ms"] == "1500"
    assert r.headers["x-ratelimit-reset-requests"] == "1s"
    assert r.headers["anthropic-ratelimit-requests-reset"] == "2030-01-01T00:00:00Z"


def test_errors_on_stream_requests_are_plain_json(fake, client):
    fake.configure("a", status=529)
    r = anthropic(client, fake, "a", stream=True)
    assert r.status_code == 529 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["type"] == "overloaded_error"


def test_times_limits_the_fault_to_the_next_n_requests(fake, client):
    fake.configure("a", status=503, times=2)
    assert [openai(client, fake, "a").status_code for _ in range(4)] == [503, 503, 200, 200]


def test_failure_rate_is_repeatable_with_a_seed(fake, client):
    fake.configure("a", status=500, failure_rate=0.5, seed=7)
    first = [openai(client, fake, "a").status_code for _ in range(20)]
    rng = random.Random(7)
    assert first == [500 if rng.random() < 0.5 else 200 for _ in range(20)]
    assert {200, 500} <= set(first)
    fake.configure("a", status=500, failure_rate=0.5, seed=7)
    assert [openai(client, fake, "a").status_code for _ in range(20)] == first


# -- broken connections ----------------------------------------------------------------------------


def test_hang_until_the_client_gives_up(fake):
    fake.configure("a", hang=True)
    with httpx.Client(timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        openai(c, fake, "a")
    assert fake.wait_for_idle("a")  # the server noticed the client leave
    assert fake.stats("a")["statuses"] == {}


def test_drop_closes_without_a_response(fake, client):
    fake.configure("a", drop=True, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        openai(client, fake, "a")
    assert openai(client, fake, "a").status_code == 200


def _raw_chat(sock: socket.socket, fake: FakeProvider, instance: str) -> bytes:
    """Send one keep-alive chat request on ``sock``; return what arrives until the answer's end
    (its body is JSON with a Content-Length), or until the server closes."""
    body = json.dumps({"model": "m", "messages": USER}).encode()
    head = f"POST /{instance}/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    sock.sendall(head.encode() + b"content-type: application/json\r\n\r\n" + body)
    data = b""
    while (piece := sock.recv(65536)) and not data.endswith(b"}"):
        data += piece
        if data.endswith(b"}"):
            break
    return data


def test_connection_ends_after_or_instead_of_an_answer(fake):
    host, port = fake.url.removeprefix("http://").split(":")
    fake.configure("a", close_after=True, times=1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        answer = _raw_chat(sock, fake, "a")
        assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" not in answer.lower()
        assert sock.recv(10) == b""  # then closed, unannounced
    fake.configure("a", close_on_reuse=True, times=1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        answer = _raw_chat(sock, fake, "a")
        assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" not in answer.lower()
        with pytest.raises(ConnectionResetError):  # the next request is met with a reset, unread
            _raw_chat(sock, fake, "a")
    fake.configure("a", reset=True, times=1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        with pytest.raises(ConnectionResetError):
            _raw_chat(sock, fake, "a")
    assert fake.stats("a")["requests"] == 3  # the one met with a reset on reuse never arrived


def test_garbage_body_and_garbage_stream(fake, client):
    fake.configure("a", garbage=True)
    r = openai(client, fake, "a")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    r = anthropic(client, fake, "a", stream=True)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        sse(r.text)


@pytest.mark.parametrize("chunk_delay", [0, 0.001])
def test_openai_stream_cut_mid_body(fake, client, chunk_delay):
    fake.configure("a", fail_mid_stream=2, chunk_delay=chunk_delay)
    lines = []
    body = {"model": "gpt-test", "messages": USER, "stream": True}
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("POST", f"{fake.openai_base_url('a')}/chat/completions", json=body) as r:
            assert r.status_code == 200
            lines.extend(line for line in r.iter_lines() if line)
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines]
    assert deltas[0]["role"] == "assistant"
    assert [d["content"] for d in deltas[1:]] == ["echo:", " weather"]


def test_anthropic_stream_ends_with_error_event(fake, client):
    fake.configure("a", fail_mid_stream=2)
    events = sse(anthropic(client, fake, "a", stream=True).text)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names.count("content_block_delta") == 2
    assert names[-1] == "error" and "message_stop" not in names
    assert events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


# -- streaming -------------------------------------------------------------------------------------


def test_openai_stream_text_with_usage(fake, client):
    fake.configure("a", chunk_delay=0.001)  # the slow path: one write per chunk
    r = openai(client, fake, "a", stream=True, stream_options={"include_usage": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["transfer-encoding"] == "chunked"
    events = [data for _, data in sse(r.text)]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-test" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "echo: weather in Paris"
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) >= 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


def test_anthropic_stream_text(fake, client):
    events = sse(anthropic(client, fake, "a", stream=True).text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names[-3:-1] == ["content_block_stop", "message_delta"]
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "echo: weather in Paris"
    delta = dict(events)["message_delta"]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] == 4


# -- tool calls ------------------------------------------------------------------------------------


def test_openai_tool_calls(fake, client):
    named = {"type": "function", "function": {"name": "get_time"}}
    choice = openai(client, fake, "a", tools=TOOLS_OPENAI, tool_choice=named).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_time"
    assert json.loads(call["function"]["arguments"]) == {"input": "weather in Paris"}
    first = openai(client, fake, "a", tools=TOOLS_OPENAI).json()["choices"][0]["message"]["tool_calls"][0]
    assert first["function"]["name"] == "get_weather"
    none = openai(client, fake, "a", tools=TOOLS_OPENAI, tool_choice="none").json()["choices"][0]
    assert none["finish_reason"] == "stop" and "tool_calls" not in none["message"]


def test_anthropic_tool_use(fake, client):
    body = anthropic(
        client, fake, "a", tools=TOOLS_ANTHROPIC, tool_choice={"type": "tool", "name": "get_time"}
    ).json()
    assert body["stop_reason"] == "tool_use"
    (block,) = body["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_")
    assert (block["name"], block["input"]) == ("get_time", {"input": "weather in Paris"})
    body = anthropic(client, fake, "a", tools=TOOLS_ANTHROPIC, tool_choice={"type": "none"}).json()
    assert body["content"][0]["type"] == "text"


def test_a_tool_result_gets_a_text_answer_in_both_shapes(fake, client):
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    after = [*USER, {"role": "assistant", "content": None, "tool_calls": [call]}]
    after.append({"role": "tool", "tool_call_id": "c1", "content": "sunny"})
    choice = openai(client, fake, "a", tools=TOOLS_OPENAI, messages=after).json()["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"].startswith("echo:")

    use = {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"}
    turns = [*USER, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
    body = anthropic(client, fake, "a", tools=TOOLS_ANTHROPIC, messages=turns).json()
    assert body["stop_reason"] == "end_turn" and body["content"][0]["type"] == "text"


def test_streamed_tool_calls_in_both_shapes(fake, client):
    chunks = [
        d for _, d in sse(openai(client, fake, "a", tools=TOOLS_OPENAI, stream=True).text) if d != "[DONE]"
    ]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["function"]["name"] == "get_weather" and calls[0]["id"]
    assert all(tc["index"] == 0 for tc in calls) and len(calls) > 2
    assert json.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"input": "weather in Paris"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"

    events = sse(anthropic(client, fake, "a", tools=TOOLS_ANTHROPIC, stream=True).text)
    start = dict(events)["content_block_start"]["content_block"]
    assert start["type"] == "tool_use" and start["name"] == "get_weather"
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta")
    assert json.loads(partial) == {"input": "weather in Paris"}
    assert dict(events)["message_delta"]["delta"]["stop_reason"] == "tool_use"


# -- concurrency -----------------------------------------------------------------------------------


async def test_latency_does_not_block_other_instances(fake):
    fake.configure("slow", latency=30)
    async with httpx.AsyncClient(timeout=60) as c:
        body = {"model": "m", "messages": USER}
        slow = asyncio.create_task(c.post(f"{fake.openai_base_url('slow')}/chat/completions", json=body))
        assert await asyncio.to_thread(fake.wait_for_in_flight, "slow", 1)
        fast = await c.post(f"{fake.openai_base_url('fast')}/chat/completions", json=body)
        assert fast.status_code == 200
        assert fake.stats("slow")["in_flight"] == 1
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
    assert await asyncio.to_thread(fake.wait_for_idle, "slow")


async def test_peak_in_flight_under_ten_concurrent_requests(fake):
    fake.configure("a", latency=30)
    async with httpx.AsyncClient(timeout=60) as c:
        body = {"model": "m", "max_tokens": 5, "messages": USER}
        url = f"{fake.anthropic_base_url('a')}/v1/messages"
        tasks = [asyncio.create_task(c.post(url, json=body)) for _ in range(10)]
        assert await asyncio.to_thread(fake.wait_for_in_flight, "a", 10)
        stats = fake.stats("a")
        assert (stats["in_flight"], stats["peak_in_flight"], stats["requests"]) == (10, 10, 10)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert await asyncio.to_thread(fake.wait_for_idle, "a")
    assert fake.stats("a")["peak_in_flight"] == 10


def test_wait_for_in_flight_times_out(fake):
    assert fake.wait_for_in_flight("nobody", 1, timeout=0.01) is False
    assert fake.wait_for_idle("nobody", timeout=0.01) is True


def test_keep_alive_and_pipelining_on_one_socket(fake):
    payload = json.dumps({"model": "m", "messages": USER}).encode()

    def request(instance: str) -> list[h11.Event]:
        headers = [("host", "x"), ("content-type", "application/json"), ("content-length", str(len(payload)))]
        target = f"/{instance}/v1/chat/completions"
        return [
            h11.Request(method="POST", target=target, headers=headers),
            h11.Data(data=payload),
            h11.EndOfMessage(),
        ]

    client, other = h11.Connection(h11.CLIENT), h11.Connection(h11.CLIENT)
    first = b"".join(client.send(e) for e in request("p1"))
    second = b"".join(other.send(e) for e in request("p2"))
    bodies: list[bytes] = []
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(first + second)  # both at once: the server must answer them in order
        while len(bodies) < 2:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Data):
                bodies.append(event.data)
            elif isinstance(event, h11.EndOfMessage) and len(bodies) == 1:
                client.start_next_cycle()
                for e in request("p2"):
                    client.send(e)  # bookkeeping only: these bytes already went out
    assert fake.log == [("p1", "openai"), ("p2", "openai")]
    assert all(json.loads(b)["choices"][0]["message"]["content"] == "echo: weather in Paris" for b in bodies)


# -- kill, restore, stop ---------------------------------------------------------------------------


def test_kill_refuses_connections_until_restore(fake):
    with httpx.Client(timeout=5) as kept:
        assert openai(kept, fake, "a").status_code == 200  # leaves a keep-alive connection open
        fake.kill()
        with pytest.raises(httpx.TransportError):
            openai(kept, fake, "a")
        with httpx.Client(timeout=5) as fresh, pytest.raises(httpx.ConnectError):
            openai(fresh, fake, "a")
        fake.restore()
        assert openai(kept, fake, "a").status_code == 200


def test_stop_releases_hanging_requests_and_the_port():
    server = FakeProvider().start()
    server.configure("a", hang=True)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with httpx.Client(timeout=30) as c:
                openai(c, server, "a")
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert server.wait_for_in_flight("a", 1)
    thread = server._thread
    server.stop()
    caller.join(5)
    assert not caller.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], httpx.TransportError)
    assert thread is not None and not thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


# -- configuration ---------------------------------------------------------------------------------


def test_control_api_over_http(fake, client):
    r = client.post(f"{fake.url}/_control/x", json={"status": 529, "retry_after": 1})
    assert r.status_code == 200 and r.json()["fault"] == {"status": 529, "retry_after": 1.0}
    assert fake.fault("x") == Fault(status=529, retry_after=1)
    assert anthropic(client, fake, "x").status_code == 529
    assert client.delete(f"{fake.url}/_control/x").status_code == 200
    assert anthropic(client, fake, "x").status_code == 200
    assert client.post(f"{fake.url}/_reset").status_code == 200
    assert fake.log == []


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"status": "abc"}', "status"),
        (b'{"nope": 1}', "nope"),
        (b'{"failure_rate": 2}', "failure_rate"),
        (b"[1, 2]", "JSON object"),
        (b"{not json", "Expecting"),
    ],
)
def test_control_api_rejects_bad_faults(fake, client, raw, needle):
    r = client.post(f"{fake.url}/_control/x", content=raw)
    assert r.status_code == 400 and needle in r.json()["error"]
    assert fake.fault("x") is None


def test_request_history_is_bounded_but_counters_are_not(client):
    with FakeProvider(keep_requests=2) as server:
        for n in range(3):
            openai(client, server, "a", messages=[{"role": "user", "content": f"n{n}"}])
        assert [r["body"]["messages"][0]["content"] for r in server.requests("a")] == ["n1", "n2"]
        assert server.stats("a")["requests"] == 3 and len(server.log) == 3


def test_configure_validates_and_combines(fake):
    with pytest.raises(ValueError, match="latency"):
        fake.configure("a", latency=-1)
    fault = fake.configure("a", Fault(status=500), times=3)
    assert (fault.status, fault.times) == (500, 3)
    fake.clear("a")
    assert fake.fault("a") is None
