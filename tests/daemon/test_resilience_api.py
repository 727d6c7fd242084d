"""The daemon's session keys (x-session-id, prompt_cache_key, user, Anthropic metadata.user_id)
and the resilience counters in /metrics and /v1/stats, against a daemon of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helpers import Daemon, start_daemon, write_topology

MSG = [{"role": "user", "content": "hi"}]
SESSIONS = [f"conversation-{i}" for i in range(8)]


@pytest.fixture(scope="module")
def daemon(fake_provider: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    four = ["s1", "s2", "s3", "s4"]
    root = write_topology(
        tmp_path_factory.mktemp("resilience"),
        fake_provider,
        models={**{n: {} for n in [*four, "f1", "f2", "r1", "r2", "b1", "b2", "b3", "b4"]}},
        groups={
            "g": {"echelon1": {"models": four}},
            "failing": {
                "echelon1": {"models": ["f1", "f2"], "max_retries": 1},
                "fallback_config": {
                    "retry_delay": 0,
                    "retry_budget": {"ratio": 0, "min_per_second": 0.1},
                    "circuit_breaker": {"failure_threshold": 100},
                },
            },
            "r": {"echelon1": {"models": ["r1", "r2"]}},
            "refusing": {
                "echelon1": {"models": ["b1", "b2"], "max_retries": 1},
                "fallback_config": {
                    "retry_delay": 0,
                    "retry_budget": {"ratio": 0, "min_per_second": 0},  # no retries at all
                    "circuit_breaker": {"failure_threshold": 100},
                },
            },
            "retrying": {
                "echelon1": {"models": ["b3", "b4"], "max_retries": 1},
                "fallback_config": {"retry_delay": 0, "circuit_breaker": {"failure_threshold": 100}},
            },
        },
        pools={
            "sticky": {"task_groups": ["g.echelon1"], "affinity": "session"},
            "paced": {"task_groups": ["r.echelon1"]},
        },
    )
    d = start_daemon(root)
    yield d
    d.stop()


def chat(daemon: Daemon, headers: dict[str, str] | None = None, **body: Any) -> Any:
    r = daemon.post(
        "/v1/chat/completions", json={"model": "sticky", "messages": MSG, **body}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.headers["x-llm-actors-instance"]


@pytest.mark.parametrize(
    "how",
    [
        lambda s: {"headers": {"x-session-id": s}},
        lambda s: {"prompt_cache_key": s},
        lambda s: {"user": s},
    ],
    ids=["x-session-id", "prompt_cache_key", "user"],
)
def test_openai_session_keys_keep_a_conversation_on_one_instance(fake, daemon, how):
    homes = set()
    for session in SESSIONS:
        seen = {chat(daemon, **how(session)) for _ in range(3)}
        assert len(seen) == 1, (session, seen)
        homes |= seen
    assert len(homes) >= 2  # different conversations spread


def test_the_header_wins_over_the_body(fake, daemon):
    by_header = chat(daemon, headers={"x-session-id": "A"})
    assert chat(daemon, headers={"x-session-id": "A"}, user="B") == by_header
    assert chat(daemon, user="A") == by_header  # the same key, whichever way it came


def test_anthropic_metadata_user_id_is_the_session_key(fake, daemon):
    def ask(session: str) -> str:
        r = daemon.post(
            "/v1/messages",
            json={"model": "sticky", "max_tokens": 20, "messages": MSG, "metadata": {"user_id": session}},
        )
        assert r.status_code == 200, r.text
        return r.headers["x-llm-actors-instance"]

    for session in SESSIONS[:4]:
        assert len({ask(session) for _ in range(3)}) == 1
        assert ask(session) == chat(daemon, user=session)


def test_counters_in_metrics_and_stats(fake, daemon):
    for name in ("f1", "f2"):
        fake.configure(name, status=503)
    fake.configure("r1", headers={"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"})
    statuses = [
        daemon.post("/v1/chat/completions", json={"model": "failing", "messages": MSG}).status_code
        for _ in range(3)
    ]
    assert statuses == [503, 503, 503]
    for _ in range(3):
        assert (
            daemon.post("/v1/chat/completions", json={"model": "paced", "messages": MSG}).status_code == 200
        )
    assert fake.stats("r1")["requests"] == 1
    text = daemon.get("/metrics").text
    assert 'llm_actors_retry_budget_exhausted_total{route="group:failing"} 2.0' in text
    assert 'llm_actors_paced_total{instance="r1"} 1.0' in text
    assert 'llm_actors_hedges_total{outcome="won"}' in text
    assert "llm_actors_ejections_total" in text
    stats = daemon.get("/v1/stats").json()["resilience"]
    assert stats["retry_budgets"]["group:failing"]["exhausted_total"] == 2
    assert stats["paced"]["r1"] == 1


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_a_request_the_budget_refused_is_marked_in_body_and_header(fake, daemon, path):
    for name in ("b1", "b2", "b3", "b4"):
        fake.configure(name, status=503)
    body = {"model": "refusing", "max_tokens": 20, "messages": MSG}
    r = daemon.post(path, json=body)
    assert r.status_code == 503, r.text
    assert r.headers["x-llm-actors-retry-budget"] == "exhausted"
    assert r.headers["x-llm-actors-attempts"] == "1"
    assert "retry budget exhausted" in r.json()["error"]["message"]
    # A request that failed with its retries granted carries neither.
    r = daemon.post(path, json={**body, "model": "retrying"})
    assert r.status_code == 503, r.text
    assert "x-llm-actors-retry-budget" not in r.headers
    assert r.headers["x-llm-actors-attempts"] == "2"
    assert "retry budget" not in r.json()["error"]["message"]
