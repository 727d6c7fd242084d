"""``serve --workers N``: N processes on one port, signals reaching them all, one budget on Redis."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from daemon_helpers import start_daemon, wait_until, write_topology

CHAT = "/v1/chat/completions"


def ask(url: str, text: str = "hi") -> httpx.Response:
    body = {"model": "w", "messages": [{"role": "user", "content": text}]}
    return httpx.post(url + CHAT, json=body, timeout=30)


def topology(root: Path, fake: Any, **limits: Any) -> Path:
    return write_topology(
        root,
        fake,
        models={"k1": {}},
        groups={"kg": {"echelon1": {"models": ["k1"], **limits}}},
        wrappers={"w": {"type": "task_group", "target": "kg.echelon1"}},
    )


def test_two_workers_on_redis_keep_one_budget(fake, tmp_path, redis_server):
    # A generous store call bound: a busy test machine must not be taken for a store outage.
    d = start_daemon(
        topology(tmp_path, fake, concurrency_limit=1),
        "--workers",
        "2",
        "--state",
        redis_server.url,
        env={"LLM_ACTORS_STATE_TIMEOUT": "0.5"},
    )
    try:
        fake.configure("k1", latency=0.1)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: ask(d.url, f"n{i}"), range(8)))
        assert [r.status_code for r in answers] == [200] * 8
        assert fake.stats("k1")["peak_in_flight"] == 1  # one limit across both workers
        daemon = d.get("/v1/stats").json()["daemon"]
        assert daemon["worker"]["of"] == 2 and daemon["worker"]["index"] in (0, 1)
        assert daemon["state"]["backend"] == "redis" and daemon["state"]["late_calls"] == 0
        assert "llm_actors_state_degraded 0.0" in d.get("/metrics").text
    finally:
        d.stop()


def test_signals_reach_every_worker_and_local_limits_are_split(fake, tmp_path):
    d = start_daemon(topology(tmp_path, fake, concurrency_limit=8), "--workers", "2")
    try:
        assert "every limit is split between them" in d.log_text()
        assert ask(d.url).status_code == 200
        d.signal(signal.SIGHUP)
        wait_until(lambda: d.log_text().count('"reloaded"') == 2, what="both workers to reload")
        fake.configure("k1", latency=1.0)
        with ThreadPoolExecutor(4) as pool:
            flying = [pool.submit(ask, d.url, f"n{i}") for i in range(4)]
            assert fake.wait_for_in_flight("k1", 4, timeout=10)  # 4 per worker: all run at once
            d.signal(signal.SIGTERM)
            answers = [f.result() for f in flying]
        assert all(r.status_code == 200 for r in answers)  # drained, not cut
        assert d.wait(20) == 0
        assert d.log_text().count('"drained"') == 2
    finally:
        d.stop()
