"""``llm-actors check``: the topology on stdout, or every problem on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from config_helpers import CONFIG_VARS, FAKE_KEY, REPO, edit_yaml

import actors.cli

pytestmark = pytest.mark.usefixtures("no_keys")


def test_check_shipped_config(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    assert actors.cli.main(["check"]) == 0  # CONFIG_DIR defaults to config
    out, err = capsys.readouterr()
    assert err == ""
    for heading in ("Models (7)", "Task groups (3)", "Polling pools (3)", "Wrappers (5)"):
        assert heading in out
    assert "disabled: API key variable OPENAI_API_KEY is not set" in out
    assert "OK: 7 models (6 disabled), 3 task groups, 3 polling pools, 5 wrappers." in out
    # Tiers print in priority order with their limits.
    fast = out[out.index("fast_group - ") : out.index("fast_small_group - ")]
    rows = [line.split() for line in fast.splitlines() if line.startswith("  echelon")]
    assert [row[0] for row in rows] == ["echelon1", "echelon2", "echelon3"]
    assert rows[0] == [
        "echelon1",
        "1",
        "openai-gpt4,",
        "anthropic-claude-3-opus",
        "10",
        "100",
        "30s",
        "3",
        "0.7",
        "2000",
    ]
    assert "strategy echelon_down" in fast


def test_check_table_columns_line_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert actors.cli.main(["check", str(REPO / "config")]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("MODEL "))
    columns = [lines[header].index(name) for name in ("PROVIDER", "TYPE", "MODEL NAME", "STATE")]
    for row in lines[header + 2 : header + 9]:
        for col in columns:
            assert row[col - 2 : col] == "  " and row[col] != " ", row


def test_check_with_keys_set_reports_all_enabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    assert actors.cli.main(["check", str(REPO / "config" / "llms")]) == 0
    out = capsys.readouterr().out
    assert "(0 disabled)" in out and "disabled:" not in out
    assert FAKE_KEY not in out


def test_check_invalid_config_lists_every_error(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_yaml(llms / "groups" / "fast_group.yaml", lambda d: d["echelon1"].update(rpm_limit=-1))
    edit_yaml(llms / "wrappers.yaml", lambda d: d["fast_pool_wrapper"].update(pool="fast_pol"))
    assert actors.cli.main(["check", str(llms.parent)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "error: the configuration is invalid (2 problems):" in err
    assert f"{llms / 'groups' / 'fast_group.yaml'}: echelon1.rpm_limit: must be greater than 0; got -1" in err
    assert (
        f"{llms / 'wrappers.yaml'}: fast_pool_wrapper.pool: unknown pool 'fast_pol'; did you mean 'fast_pool'?"
        in err
    )


def test_check_takes_the_directory_as_config_too(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Like every other command: ``--config DIR`` (the positional form still works)."""
    assert actors.cli.main(["check", "--config", str(REPO / "config")]) == 0
    assert "MODEL " in capsys.readouterr().out
    edit_yaml(llms / "groups" / "fast_group.yaml", lambda d: d["echelon1"].update(rpm_limit=-1))
    assert actors.cli.main(["check", "--config", str(llms.parent)]) == 1  # that directory, not ./config
    assert "echelon1.rpm_limit" in capsys.readouterr().err
    assert actors.cli.main(["check", str(REPO / "config"), "--config", str(llms.parent)]) == 2
    assert "two configurations given" in capsys.readouterr().err


def test_check_warns_when_base_url_credentials_replace_the_key(
    llms: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    proxied = {"base_url": "https://gw-user:gw-PASSWORD@gateway.example/v1"}
    edit_yaml(llms / "provider" / "openai" / "openai-gpt4.yaml", lambda d: d.update(proxied))
    # A local server without a key, and Anthropic (its key goes in x-api-key, beside Basic auth): fine.
    edit_yaml(llms / "provider" / "local" / "ollama-llama3.yaml", lambda d: d.update(proxied))
    anthropic = {"base_url": "https://gw-user:gw-PASSWORD@gateway.example"}
    edit_yaml(llms / "provider" / "anthropic" / "anthropic-claude-3-opus.yaml", lambda d: d.update(anthropic))
    assert actors.cli.main(["check", str(llms.parent)]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: model openai-gpt4 has credentials in its base_url (user:password@), sent as Basic auth in "
        "place of its api_key, which is never sent; keep one of them."
    ]
    assert "gw-PASSWORD" not in out and FAKE_KEY not in out


def test_check_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert actors.cli.main(["check", str(tmp_path / "absent")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_check_as_a_subprocess() -> None:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    result = subprocess.run(
        [sys.executable, "-m", "actors", "check", "config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "OK: 7 models (6 disabled)" in result.stdout
    assert "API key variable ANTHROPIC_API_KEY is not set: anthropic-claude-3-haiku" in result.stdout


def test_check_suggests_no_other_name_when_the_intended_one_is_invalid(
    llms: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A group named with a dot is invalid; a reference to it must not send the user elsewhere."""
    (llms / "groups" / "fast.v2.yaml").write_text(
        (llms / "groups" / "fast_group.yaml").read_text().replace("name: fast_group", "")
    )
    edit_yaml(
        llms / "wrappers.yaml", lambda d: d.update(v2_wrapper={"type": "task_group", "target": "fast.v2"})
    )
    edit_yaml(llms / "polling_pools" / "fast_pool.yaml", lambda d: d.update(task_groups=["fast.v2.echelon1"]))
    assert actors.cli.main(["check", str(llms.parent)]) == 1
    err = capsys.readouterr().err
    assert "error: the configuration is invalid (1 problem):" in err, err
    assert "fast.v2.yaml: name: a group name cannot contain '.'" in err
    assert "did you mean" not in err and "unknown group" not in err
