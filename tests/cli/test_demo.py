"""``llm-actors demo``: simulated traffic, an outage part-way through, and the failover it shows."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors.cli import main
from actors.fake.process import read_line

ROOT = Path(__file__).resolve().parents[2]


def _row(out: str, first_cell: str) -> list[str]:
    """The cells (split on runs of two or more spaces) of the table row starting with ``first_cell``."""
    for line in out.splitlines():
        if line.startswith(first_cell):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no row starting with {first_cell!r} in:\n{out}")


def test_demo_shows_the_outage_and_the_failover(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["demo", "--requests", "60", "--threads", "4", "--latency", "0.001", "--config", str(ROOT / "config")]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "progress: 60/60 requests done" in err  # not a terminal: milestone lines, no bar
    # The story is driven by breaker events, so every line is there on every run, in this order.
    story = [
        "OUTAGE STARTS after request 20: openai-gpt4",
        "BREAKER OPEN: openai-gpt4 on group:fast_group",
        "OUTAGE ENDS after request",
        "BREAKER CLOSED: openai-gpt4 on group:fast_group: back in rotation",
    ]
    assert [out.find(line) for line in story] == sorted(out.find(line) for line in story), out
    assert all(line in out for line in story), out
    assert "BREAKER OPEN: openai-gpt4 on pool:fast_pool" in out
    assert out.index("BREAKER CLOSED: openai-gpt4 on pool:fast_pool: back in rotation") > out.index(
        "OUTAGE ENDS"
    )

    headers = _row(out, "INSTANCE")
    broken = dict(zip(headers, _row(out, "openai-gpt4 (broken)"), strict=False))
    assert "unhealthy" in broken["FAILED"]
    assert int(broken["OPENS"]) > 0
    assert int(broken["OUTAGE"]) == 0  # its breakers kept it out
    assert int(broken["AFTER"]) > 0  # ... and it healed: back in rotation before the end
    other = dict(zip(headers, _row(out, "anthropic-claude-3-opus"), strict=False))
    assert int(other["OUTAGE"]) > int(other["BEFORE"]) // 2  # the other echelon1 instance takes over

    wrappers = _row(out, "WRAPPER")
    group = dict(zip(wrappers, _row(out, "fast_group_wrapper"), strict=False))
    assert group["REQUESTS"] == group["OK"] and group["FAILED"] == "0"
    assert int(group["RETRIED"]) > 0  # failed on openai-gpt4, answered by another instance
    summary = re.search(
        r"^(\d+) requests, \1 succeeded, (\d+) retried or fell back: (\d+) because of the outage, (\d+) because a tier "
        r"was full\.\n  openai-gpt4 was out from request 21 to (\d+); back in rotation on every route by "
        r"request (\d+)\.$",
        out,
        re.MULTILINE,
    )
    assert summary, out
    total, fell_back, outage, full, end, healed = map(int, summary.groups())
    assert total >= 60 and int(fell_back) >= outage > 0 and full == 0  # 60 requests stay under the limits
    assert 40 <= end < healed <= total
    # The summary counts what the wrappers table shows: requests retried, fallen back, or both.
    pool = dict(zip(wrappers, _row(out, "fast_pool_wrapper"), strict=False))
    retried = int(group["RETRIED"]) + int(pool["RETRIED"])
    fallbacks = int(group["FALLBACKS"]) + int(pool["FALLBACKS"])
    assert max(retried, fallbacks) <= fell_back <= retried + fallbacks


def _demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "actors", "demo", "--latency", "0", *args]


def test_demo_runs_as_a_command() -> None:
    proc = subprocess.run(
        _demo("--requests", "30", "--threads", "2"), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"openai-gpt4 was out from request 11 to \d+; back in rotation", proc.stdout), (
        proc.stdout
    )


def test_demo_survives_a_closed_output() -> None:
    proc = subprocess.run(
        f"{' '.join(_demo('--requests', '300'))} | head -2",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_demo_prints_the_summary_so_far_on_ctrl_c(tmp_path: Path) -> None:
    with open(tmp_path / "err", "w+") as err:
        proc = subprocess.Popen(
            _demo("--requests", "1000000", "--threads", "2"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            first = read_line(proc, 60)
            assert "sending" in first, first  # under way
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
        err.seek(0)
        errors = err.read()
    assert proc.returncode == 130, out + errors
    assert "INTERRUPTED after" in out, out + errors
    assert re.search(r"^\d+ requests \(interrupted\), \d+ succeeded", out, re.MULTILINE), out + errors


def test_demo_rejects_an_unknown_instance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--outage", "nope", "--config", str(ROOT / "config")]) == 2
    assert "no instance 'nope'" in capsys.readouterr().err
