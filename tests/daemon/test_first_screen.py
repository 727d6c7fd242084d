"""What a new user sees first: serve's banner and logs, a port in use, status, chat, --version."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import STEADY, Daemon, start_daemon, write_topology

from actors.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "actors", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def topology(fake_provider: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tier = {"models": ["up1", "nokey"], "priority": 1, "max_retries": 1}
    return write_topology(
        tmp_path_factory.mktemp("first"),
        fake_provider,
        models={
            "up1": {},
            "nokey": {"api_key": "${FIRST_SCREEN_UNSET_KEY}"},
            "lonely": {"api_key": "${FIRST_SCREEN_UNSET_KEY}"},
        },
        groups={
            "main": {"echelon1": tier, "fallback_config": STEADY},
            "dark": {"echelon1": {"models": ["lonely"], "priority": 1}, "fallback_config": STEADY},
        },
        wrappers={
            "assistant": {"type": "task_group", "target": "main.echelon1"},
            "dark_wrapper": {"type": "task_group", "target": "dark.echelon1"},
        },
    )


@pytest.fixture(scope="module")
def daemon(topology: Path) -> Iterator[Daemon]:
    d = start_daemon(topology, "--log-format", "console")
    yield d
    d.stop()


def _banner(d: Daemon) -> str:
    lines = []
    assert d.proc.stdout is not None
    while not lines or not lines[-1].startswith("Stop with"):
        line = d.proc.stdout.readline()  # the banner follows the URL at once
        assert line, "".join(lines)
        lines.append(line)
    return "".join(lines)


def test_serve_prints_a_banner_that_warns_about_disabled_instances(daemon):
    text = _banner(daemon)
    assert text.startswith("llm-actors 0.1.0 serving")
    assert f"OpenAI API     {daemon.url}/v1" in text and f"Anthropic API  {daemon.url}" in text
    assert "wrappers       assistant, dark_wrapper" in text
    assert "WARNING: 2 of 3 instances are disabled" in text
    assert "  nokey: API key variable FIRST_SCREEN_UNSET_KEY is not set" in text
    assert "(503 on every request): dark_wrapper" in text  # assistant still has up1
    assert "Stop with Ctrl-C or SIGTERM" in text


def test_the_banner_says_where_the_limits_live_and_that_the_store_is_away(topology):
    pytest.importorskip("redis")
    d = start_daemon(topology, "--state", "redis://127.0.0.1:9/0")  # nothing listens on port 9
    try:
        text = _banner(d)
    finally:
        d.stop()
    state = next(line for line in text.splitlines() if line.startswith("  state "))
    assert "redis://127.0.0.1:9/0 UNAVAILABLE" in state and "(on_outage: split) until it answers" in state
    assert "start it again (a reload sees only the environment it started with)" in text


def test_console_logs_are_lines_for_people(daemon):
    text = daemon.log_text()
    assert "listening" in text and "instances disabled" in text
    assert not any(line.startswith("{") for line in text.splitlines() if line.strip())


def test_logs_are_json_when_not_on_a_terminal(topology):
    d = start_daemon(topology)
    try:
        d.get("/healthz")
    finally:
        d.stop()
    records = [json.loads(line) for line in d.log_text().splitlines() if line.strip()]
    assert any(r.get("event") == "listening" for r in records)
    warning = next(r for r in records if r.get("event") == "instances disabled")
    assert warning["level"] == "warning" and warning["wrappers_without_instances"] == ["dark_wrapper"]


def test_a_port_in_use_is_one_line(topology):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _cli("serve", "--config", str(topology), "--port", str(port))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another llm-actors serve?); stop it, or pass "
        "--port N (--port 0 picks a free one)"
    ]


def test_fake_provider_on_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _cli("fake-provider", "--port", str(port))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1 port {port}: Address already in use; pass --port N "
        "(--port 0 picks a free one) or --host ADDRESS"
    ]


def test_a_missing_config_directory_says_how_to_pass_one(tmp_path):
    proc = _cli("serve", "--port", "0", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"configuration directory 'config' does not exist (looked in {tmp_path})" in proc.stderr
    assert "--config DIR" in proc.stderr and "Traceback" not in proc.stderr


def test_shared_state_without_the_redis_client_is_one_line_even_with_workers(topology, tmp_path):
    # A machine without the redis extra: a package that fails to import as the missing one does.
    shadow = tmp_path / "site" / "redis"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'redis'\", name='redis')\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(ROOT)])}
    serve = [sys.executable, "-m", "actors", "serve", "--config", str(topology), "--port", "0"]
    for workers in ("1", "2"):
        proc = subprocess.run(
            [*serve, "--workers", workers, "--state", "redis://127.0.0.1:9/0"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "pip install 'llm-actors[redis]'" in lines[0], proc.stderr


def test_status_does_not_count_itself(daemon):
    proc = _cli("status", "--url", daemon.url)
    assert proc.returncode == 0, proc.stderr
    assert "Daemon: serving, 0 request(s) in flight" in proc.stdout


def test_chat_without_a_prompt_is_a_conversation(fake, daemon):
    proc = _cli("chat", "--url", daemon.url, "--model", "assistant", stdin="first question\nsecond one\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["echo: first question", "echo: second one"]
    sent = fake.requests("up1")[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == ["first question", "echo: first question", "second one"]


def test_an_unknown_model_gets_a_did_you_mean(daemon):
    proc = _cli("chat", "--url", daemon.url, "--model", "asistant", "hi")
    assert proc.returncode == 1
    assert "did you mean 'assistant'?" in proc.stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == "llm-actors 0.1.0\n"
