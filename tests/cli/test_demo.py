"""``llm-actors demo``: simulated traffic, an outage part-way through, and the failover it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from actors.cli import main

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
    assert "OUTAGE STARTS at request 21/60: openai-gpt4" in out
    assert "OUTAGE ENDS at request 41/60" in out
    assert "BREAKER OPEN: openai-gpt4 on group:fast_group" in out

    headers = _row(out, "INSTANCE")
    broken = dict(zip(headers, _row(out, "openai-gpt4 (broken)"), strict=False))
    assert "unhealthy" in broken["FAILED"]
    assert broken["STATE NOW"].startswith("open")
    assert int(broken["OPENS"]) > 0
    assert int(broken["OUTAGE"]) == 0 and int(broken["AFTER"]) == 0  # its breakers keep it out
    other = dict(zip(headers, _row(out, "anthropic-claude-3-opus"), strict=False))
    assert int(other["OUTAGE"]) > int(other["BEFORE"]) // 2  # the other echelon1 instance takes over

    wrappers = _row(out, "WRAPPER")
    group = dict(zip(wrappers, _row(out, "fast_group_wrapper"), strict=False))
    assert group["REQUESTS"] == "30" and group["OK"] == "30"
    assert int(group["RETRIED"]) > 0  # failed on openai-gpt4, answered by another instance
    summary = re.search(
        r"^60 requests, 60 succeeded, (\d+) fell back; openai-gpt4 was out from request 21 to 40\.$",
        out,
        re.MULTILINE,
    )
    assert summary and int(summary.group(1)) > 0, out


def test_demo_runs_as_a_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "actors", "demo", "--requests", "30", "--threads", "2", "--latency", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "openai-gpt4 was out from request 11 to 20" in proc.stdout


def test_demo_rejects_an_unknown_instance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--outage", "nope", "--config", str(ROOT / "config")]) == 2
    assert "no instance 'nope'" in capsys.readouterr().err
