"""``llm-actors chat`` in-process (``--config``): what it says about a model that names nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_an_unknown_model_in_process_points_to_check_not_to_an_endpoint(capsys: pytest.CaptureFixture[str]):
    config = str(ROOT / "config")
    assert main(["chat", "--config", config, "--simulate", "--model", "fast_grop_wrapper", "hi"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'fast_group_wrapper'?" in err
    assert "fast_group_wrapper, thinking_group_wrapper, translation_wrapper" in err  # what it may name
    assert err.rstrip().endswith(f"(llm-actors check --config {config} lists them)")
    assert "/v1/models" not in err  # no daemon here


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]):
    for argv in (["--help"], ["chat", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "a running daemon (--url)" in out and "``" not in out


def test_in_process_without_keys_points_to_simulate(capsys: pytest.CaptureFixture[str], monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["chat", "--config", str(ROOT / "config"), "--model", "fast_group_wrapper", "hi"]) == 1
    err = capsys.readouterr().err
    assert "API key variable OPENAI_API_KEY is not set" in err
    assert err.rstrip().endswith("hint: --simulate answers from simulated providers, without keys")
