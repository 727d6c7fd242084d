"""Signals with requests in flight: SIGTERM drains and exits 0; SIGHUP (or POST /admin/reload) reloads."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_helpers import start_daemon, wait_until, write_topology

from actors.runtime import Runtime

needs_reload = pytest.mark.skipif(
    not hasattr(Runtime, "reload"),
    reason="Runtime.reload has not landed yet; the daemon answers 501 until it does",
)

CHAT = "/v1/chat/completions"


def ask(url: str, model: str = "w", text: str = "hi", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(url + CHAT, json=body, timeout=20)


def ask_stream(url: str, model: str = "w") -> tuple[int, str]:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "one two three"}]}
    with httpx.stream("POST", url + CHAT, json=body, timeout=20) as r:
        return r.status_code, r.read().decode()


def topology(root: Path, fake: Any, member: str) -> Path:
    return write_topology(
        root,
        fake,
        models={"r1": {}, "r2": {}},
        groups={"rg": {"echelon1": {"models": [member]}}},
        wrappers={"w": {"type": "task_group", "target": "rg.echelon1"}},
    )


def test_sigterm_drains_in_flight_requests_then_exits_0(fake, tmp_path):
    d = start_daemon(topology(tmp_path, fake, "r1"))
    try:
        fake.configure("r1", chunk_delay=0.1)
        # Held at the provider, the eight are surely still in flight when the late one arrives.
        with ThreadPoolExecutor(8) as pool, fake.holding("r1"):
            plain = [pool.submit(ask, d.url, text=f"n{i}") for i in range(6)]
            streams = [pool.submit(ask_stream, d.url) for _ in range(2)]
            assert fake.wait_for_in_flight("r1", 8, timeout=10)
            d.signal(signal.SIGTERM)
            wait_until(lambda: d.get("/readyz").status_code == 503, what="readiness to drop while draining")
            late = ask(d.url)  # a new request while draining
            assert late.status_code == 503 and "shutting down" in late.json()["error"]["message"]
            assert d.get("/healthz").status_code == 200  # still alive while it drains
            assert fake.stats("r1")["requests"] == 8 and not any(f.done() for f in plain + streams)
            assert fake.release("r1") == 8
            answers = [f.result() for f in plain]
            streamed = [f.result() for f in streams]
        assert [r.status_code for r in answers] == [200] * 6
        assert sorted(r.json()["choices"][0]["message"]["content"] for r in answers) == [
            f"echo: n{i}" for i in range(6)
        ]
        assert all(status == 200 and text.rstrip().endswith("data: [DONE]") for status, text in streamed)
        assert d.wait(15) == 0
        assert '"drained"' in d.log_text()
    finally:
        d.stop()


@needs_reload
def test_sighup_reloads_with_requests_in_flight(fake, tmp_path):
    root = topology(tmp_path, fake, "r1")
    d = start_daemon(root)
    try:
        assert ask(d.url).headers["x-llm-actors-instance"] == "r1"
        with ThreadPoolExecutor(6) as pool, fake.holding("r1"):
            flying = [pool.submit(ask, d.url, text=f"n{i}") for i in range(6)]
            assert fake.wait_for_in_flight("r1", 6, timeout=10)
            topology(root, fake, "r2")  # the tier now has r2 instead of r1
            d.signal(signal.SIGHUP)
            wait_until(lambda: d.get("/v1/stats").json()["daemon"]["reloads"]["ok"] == 1, what="the reload")
            after = ask(d.url, text="after")
            assert not any(f.done() for f in flying)  # the reload went through with all six in flight
            fake.release("r1")
            answers = [f.result() for f in flying]
        assert [r.status_code for r in answers] == [200] * 6  # none failed
        assert {r.headers["x-llm-actors-instance"] for r in answers} == {"r1"}  # finished on what they leased
        assert after.status_code == 200 and after.headers["x-llm-actors-instance"] == "r2"
        assert d.get("/readyz").status_code == 200
    finally:
        d.stop()


@needs_reload
def test_a_bad_reload_is_rejected_with_its_errors_and_the_old_config_keeps_serving(fake, tmp_path):
    root = topology(tmp_path, fake, "r1")
    d = start_daemon(root)
    try:
        (root / "llms" / "groups" / "rg.yaml").write_text("name: rg\nechelon1:\n  models: [r9]\n")
        r = d.post("/admin/reload")
        assert r.status_code == 400
        error = r.json()["error"]
        assert error["type"] == "invalid_config" and "r9" in error["message"]
        assert any(i["file"] and "rg.yaml" in i["file"] for i in error["issues"])
        assert ask(d.url).headers["x-llm-actors-instance"] == "r1"  # the old configuration serves on

        d.signal(signal.SIGHUP)  # the same through the signal: logged, nothing changes
        wait_until(
            lambda: d.get("/v1/stats").json()["daemon"]["reloads"]["failed"] == 2, what="the rejected reload"
        )
        assert "reload rejected" in d.log_text()
        assert ask(d.url).status_code == 200

        topology(root, fake, "r2")  # fixed: the next reload goes through
        r = d.post("/admin/reload")
        assert r.status_code == 200 and r.json()["reloaded"] is True
        assert ask(d.url).headers["x-llm-actors-instance"] == "r2"
    finally:
        d.stop()


@needs_reload
def test_reload_rebinds_pool_and_reference_wrappers_made_on_demand(fake, tmp_path):
    root = topology(tmp_path, fake, "r1")
    d = start_daemon(root)
    try:
        assert ask(d.url, model="rg.echelon1").headers["x-llm-actors-instance"] == "r1"
        topology(root, fake, "r2")
        assert d.post("/admin/reload").status_code == 200
        assert ask(d.url, model="rg.echelon1").headers["x-llm-actors-instance"] == "r2"
    finally:
        d.stop()
