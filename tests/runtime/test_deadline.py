"""The request deadline holds against a server that keeps the connection busy but never finishes."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import actors


@pytest.fixture
def dripping_server():
    """A loopback server that answers with a long body, one byte every 0.1 s."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
                )
                for _ in range(100):
                    if stop.is_set():
                        break
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        break
                    time.sleep(0.1)  # the fault under test: a drip, not a synchronization

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(5)
    listener.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_dripping_body_cannot_hold_a_request_past_its_deadline(runtime_for, dripping_server, mode):
    import asyncio

    rt = runtime_for(
        models={"d": {"base_url": dripping_server, "timeout": 5}},
        groups={"g": {"echelon1": {"models": ["d"]}}},
    )
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    started = time.monotonic()
    with pytest.raises(actors.LLMTimeoutError):
        if mode == "sync":
            w.generate([{"role": "user", "content": "hi"}], timeout=0.5)
        else:
            asyncio.run(w.generate_async([{"role": "user", "content": "hi"}], timeout=0.5))
    assert time.monotonic() - started < 3  # not the 10 s the body would take
    assert rt.table.gates["d"].breakers["group:g"].consecutive_failures == 0  # our clock, not its fault
