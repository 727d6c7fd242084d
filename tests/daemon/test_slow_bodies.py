"""A client that trickles its request body gets 408 in its own API's shape once ``--body-timeout``
has passed, and loses its connection: it cannot hold one until the daemon drains."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from daemon_helpers import Daemon, start_daemon, write_topology

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def daemon(fake_provider: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = write_topology(
        tmp_path_factory.mktemp("slow-bodies"),
        fake_provider,
        models={"m1": {}},
        groups={"g": {"echelon1": {"models": ["m1"]}}},
    )
    d = start_daemon(root, "--body-timeout", "1")
    yield d
    d.stop()


def _trickle(sock: socket.socket, stop: threading.Event) -> None:
    """JSON whitespace, a byte every 0.1 s: never idle, never done."""
    while not stop.is_set():
        try:
            sock.sendall(b" ")
        except OSError:  # the daemon closed the connection
            return
        stop.wait(0.1)


def _slow_request(daemon: Daemon, path: str) -> bytes:
    """Everything the daemon sends back on a connection whose body never finishes arriving."""
    host, port = daemon.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)  # a bound, not an expectation
    stop = threading.Event()
    trickler = threading.Thread(target=_trickle, args=(sock, stop), daemon=True)
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            "anthropic-version: 2023-06-01\r\ncontent-length: 100000\r\n\r\n".encode()
            + b'{"model": "g", "max_tokens": 5, '
        )
        trickler.start()
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:  # closed while our bytes were still coming in
                break
            if not data:
                break  # closed by the daemon: the connection is not held
            received += data
        return received
    finally:
        stop.set()
        trickler.join(timeout=5)
        sock.close()


def _parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, json.loads(body)


def test_a_trickled_openai_body_gets_408_in_openai_s_shape(daemon):
    status, headers, body = _parse(_slow_request(daemon, "/v1/chat/completions"))
    assert status == 408
    assert headers["connection"] == "close"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "request_timeout"
    assert "did not arrive within 1 s" in body["error"]["message"]
    metrics = httpx.get(daemon.url + "/metrics", timeout=10).text
    assert 'llm_actors_requests_total{api="openai",model="unknown",status="408"}' in metrics


def test_a_trickled_anthropic_body_gets_408_in_anthropic_s_shape(daemon):
    status, _, body = _parse(_slow_request(daemon, "/v1/messages"))
    assert status == 408
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "serve --body-timeout" in body["error"]["message"]


def test_a_body_sent_at_once_is_served(daemon):
    r = httpx.post(daemon.url + "/v1/chat/completions", json={"model": "g", "messages": MSG}, timeout=10)
    assert r.status_code == 200, r.text
