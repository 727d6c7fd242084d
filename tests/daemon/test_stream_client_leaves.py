"""A streamed answer whose client leaves: the upstream call ends, the lease returns, the request counts as 499."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from daemon_helpers import Daemon, wait_until

parser = pytest.importorskip("prometheus_client.parser")

LONG = [{"role": "user", "content": "one two three four five six seven eight nine ten"}]


def _metric(daemon: Daemon, name: str, **labels: str) -> float:
    for family in parser.text_string_to_metric_families(daemon.get("/metrics").text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def test_a_client_leaving_mid_stream_ends_the_upstream_call(fake: Any, daemon: Daemon) -> None:
    fake.configure("slow1", chunk_delay=0.5)  # a stream of several seconds
    left_before = _metric(daemon, "llm_actors_requests_total", api="openai", model="slow", status="499")
    body = {"model": "slow", "messages": LONG, "stream": True}
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", daemon.url + "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            first = next(response.iter_lines())
            assert first.startswith("data: ")
    # The connection is closed with most of the stream unsent.
    wait_until(lambda: fake.stats("slow1")["in_flight"] == 0, what="the upstream call to end")
    wait_until(
        lambda: (
            _metric(daemon, "llm_actors_requests_total", api="openai", model="slow", status="499")
            == left_before + 1
        ),
        what="the request counted as left by its client",
    )
    assert _metric(daemon, "llm_actors_instance_in_flight", instance="slow1") == 0
    fake.clear("slow1")
    # The instance was not judged for it: the next request is served as usual.
    answer = httpx.post(
        daemon.url + "/v1/chat/completions", json={"model": "slow", "messages": LONG}, timeout=10
    )
    assert answer.status_code == 200 and answer.headers["x-llm-actors-instance"] == "slow1"
