"""Operations: auth, metrics, readiness, statistics, access logs, and the chat and status commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from daemon_helpers import Daemon, start_daemon, wait_until, write_topology

from actors.cli import main as cli

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
parser = pytest.importorskip("prometheus_client.parser")

MSG = [{"role": "user", "content": "hello"}]
KEY = "sk-daemon-Zq81-secret"


@pytest.fixture(scope="module")
def guarded(fake_provider: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with a key (from the environment) and a wrapper whose only instance is disabled."""
    root = write_topology(
        tmp_path_factory.mktemp("guarded"),
        fake_provider,
        models={"k1": {}, "koff": {"api_key": None}},
        groups={"kg": {"echelon1": {"models": ["k1"]}}, "koffg": {"echelon1": {"models": ["koff"]}}},
        wrappers={
            "good": {"type": "task_group", "target": "kg.echelon1"},
            "broken": {"type": "task_group", "target": "koffg.echelon1"},
        },
    )
    d = start_daemon(root, env={"LLM_ACTORS_API_KEY": KEY})
    yield d
    d.stop()


# -- auth -----------------------------------------------------------------------------------------


def test_requests_without_the_key_or_with_a_wrong_one_are_401(guarded):
    for key in ("", "sk-wrong"):
        client = openai.OpenAI(
            base_url=guarded.url + "/v1",
            api_key=key or "x",
            max_retries=0,
            default_headers={} if key else {"authorization": ""},
        )
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model="good", messages=MSG)
        assert info.value.status_code == 401
    r = httpx.post(
        guarded.url + "/v1/messages",
        json={"model": "good", "max_tokens": 5, "messages": MSG},
        headers={"x-api-key": "nope"},
    )
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    for path in ("/metrics", "/v1/stats", "/v1/models"):
        assert guarded.get(path).status_code == 401
    assert guarded.post("/admin/reload").status_code == 401


def test_the_right_key_works_for_both_sdks(guarded):
    client = openai.OpenAI(base_url=guarded.url + "/v1", api_key=KEY, max_retries=0)
    assert (
        client.chat.completions.create(model="good", messages=MSG).choices[0].message.content == "echo: hello"
    )
    claude = anthropic.Anthropic(base_url=guarded.url, api_key=KEY, max_retries=0)
    assert claude.messages.create(model="good", max_tokens=8, messages=MSG).content[0].text == "echo: hello"
    assert guarded.get("/metrics", headers={"authorization": f"Bearer {KEY}"}).status_code == 200


def test_health_endpoints_are_open_and_readiness_names_what_is_not_ready(guarded):
    assert guarded.get("/healthz").json() == {"status": "ok"}
    r = guarded.get("/readyz")
    assert r.status_code == 503
    assert r.json()["not_ready"] == ["broken"] and r.json()["wrappers"]["good"]["available"] is True


def test_access_logs_are_json_and_never_carry_the_key(guarded):
    rid = "log-check-1"
    openai.OpenAI(base_url=guarded.url + "/v1", api_key=KEY, max_retries=0).chat.completions.create(
        model="good", messages=MSG, extra_headers={"x-request-id": rid}
    )

    def line() -> Any:
        for text in guarded.log_text().splitlines():
            if rid in text:
                return json.loads(text)
        return None

    entry = wait_until(line, what="the access log line")
    assert (
        entry["event"] == "request" and entry["method"] == "POST" and entry["path"] == "/v1/chat/completions"
    )
    assert (
        entry["status"] == 200
        and entry["model"] == "good"
        and entry["instance"] == "k1"
        and entry["attempts"] == 1
    )
    assert entry["duration_ms"] > 0
    log = guarded.log_text()
    assert KEY not in log and "authorization" not in log.lower() and "sk-test-k1" not in log


# -- readiness, statistics, metrics ---------------------------------------------------------------


def test_ready_when_every_wrapper_has_an_available_instance(daemon):
    r = daemon.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    assert set(r.json()["wrappers"]) == {"chat", "claude_wrapper", "deadline"}


def test_stats_has_the_runtime_statistics_and_health(daemon, openai_client):
    openai_client.chat.completions.create(model="chat", messages=MSG)
    stats = daemon.get("/v1/stats").json()
    assert {"instances", "groups", "pools", "supervisor", "wrappers", "health", "daemon"} <= set(stats)
    assert stats["wrappers"]["wrapper_stats"]["chat"]["stats"]["total_requests"] >= 1
    assert stats["health"]["chat"]["healthy"] is True
    assert stats["instances"]["ok1"]["state"] == "closed"
    assert "sk-test" not in json.dumps(stats)


def _samples(daemon: Daemon) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = daemon.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parser.text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_what_was_sent(fake, daemon, openai_client):
    before = _samples(daemon)
    for _ in range(3):
        openai_client.chat.completions.create(model="met", messages=MSG)
    list(openai_client.chat.completions.create(model="met", messages=MSG, stream=True))
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="no-such-model", messages=MSG)
    fake.configure("fo1", status=500)
    openai_client.chat.completions.create(model="fo", messages=MSG)
    after = _samples(daemon)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("llm_actors_requests_total", api="openai", model="met", status="200") == 4
    assert delta("llm_actors_requests_total", api="openai", model="unknown", status="404") == 1
    assert delta("llm_actors_request_duration_seconds_count", api="openai", model="met") == 4
    assert delta("llm_actors_instance_attempts_total", instance="met1", outcome="success") == 4
    assert delta("llm_actors_instance_attempt_duration_seconds_count", instance="met1") == 4
    assert delta("llm_actors_request_attempts_total", model="fo") == 2
    assert delta("llm_actors_fallbacks_total", model="fo") == 1
    assert delta("llm_actors_instance_attempts_total", instance="fo1", outcome="unhealthy") == 1
    assert delta("llm_actors_tokens_total", model="met", kind="completion") > 0
    # Gauges, read at scrape time.
    assert _value(after, "llm_actors_breaker_state", instance="met1", route="group:met") == 0
    assert _value(after, "llm_actors_instance_state", instance="met1", state="closed") == 1
    assert _value(after, "llm_actors_instance_disabled", instance="off1") == 1
    assert _value(after, "llm_actors_instance_in_flight", instance="met1") == 0
    assert _value(after, "llm_actors_http_requests_in_flight") == 1  # the scrape itself


# -- the client commands ----------------------------------------------------------------------------


def test_status_prints_instances_and_wrappers(daemon, openai_client, capsys):
    openai_client.chat.completions.create(model="chat", messages=MSG)
    assert cli(["status", "--url", daemon.url]) == 0
    out = capsys.readouterr().out
    assert "Instances" in out and "Wrappers" in out and "Daemon: serving" in out
    assert any(line.startswith("ok1 ") and "closed" in line for line in out.splitlines())
    assert any(line.startswith("chat ") for line in out.splitlines())


def test_status_says_whose_figures_under_workers():
    from actors.cli.status import render

    daemon = {"config_dir": "config", "reloads": {}, "worker": {"index": 1, "of": 2, "pid": 4242}}
    assert "rejected (worker 2 of 2, pid 4242)" in render({"daemon": daemon})
    alone = {**daemon, "worker": {"index": 0, "of": 1, "pid": 4242}}
    assert "worker" not in render({"daemon": alone})


def test_status_says_when_the_daemon_is_unreachable(capsys):
    assert cli(["status", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_chat_and_status_without_the_daemons_key_say_how_to_give_it(guarded, capsys, monkeypatch):
    monkeypatch.delenv("LLM_ACTORS_API_KEY", raising=False)
    assert cli(["chat", "--model", "good", "--url", guarded.url, "hi"]) == 1
    assert cli(["status", "--url", guarded.url]) == 1
    chat_error, status_error = capsys.readouterr().err.splitlines()
    for line in (chat_error, status_error):
        assert "HTTP 401" in line and "--api-key KEY or export LLM_ACTORS_API_KEY" in line
    assert '{"error"' not in status_error  # the daemon's message, not its JSON
    assert cli(["status", "--url", guarded.url, "--api-key", KEY]) == 0


def test_chat_against_the_daemon(daemon, capsys):
    assert cli(["chat", "--model", "chat", "--url", daemon.url, "hi there"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "echo: hi there\n" and "attempt" in captured.err
    assert cli(["chat", "--model", "chat", "--url", daemon.url, "--stream", "a b c"]) == 0
    assert capsys.readouterr().out == "echo: a b c\n"
    assert cli(["chat", "--model", "nope", "--url", daemon.url, "x"]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_chat_in_process(daemon, capsys):
    assert (
        cli(["chat", "--model", "basic_pool", "--config", str(daemon.config), "--stream", "in process"]) == 0
    )
    assert capsys.readouterr().out == "echo: in process\n"
    assert cli(["chat", "--model", "chat", "--config", str(daemon.config), "again"]) == 0
    assert capsys.readouterr().out == "echo: again\n"
