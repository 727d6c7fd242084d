"""A key value never shows: not in reprs, not in errors, not in ``llm-actors check`` output."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import FAKE_KEY, edit_yaml

import actors.cli
from actors.config import ConfigError, load_config

pytestmark = pytest.mark.usefixtures("no_keys")

GPT4 = "provider/openai/openai-gpt4.yaml"


def test_key_from_the_environment_is_not_in_any_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    config = load_config("config")
    model = config.models["openai-gpt4"]
    assert model.key() == FAKE_KEY  # it is there, for request headers
    for text in (
        repr(config),
        str(config),
        repr(model),
        str(model),
        model.model_dump_json(),
        str(model.model_dump()),
    ):
        assert FAKE_KEY not in text


def test_check_output_never_shows_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    assert actors.cli.main(["check", "config"]) == 0
    out, err = capsys.readouterr()
    assert "openai-gpt4" in out
    assert FAKE_KEY not in out + err


BREAKS = [
    # a key in the environment, used where a number belongs: the error quotes the file as written
    ("key variable in a number field", lambda d: d.update(timeout="${OPENAI_API_KEY}"), "timeout"),
    # a literal key pasted into the wrong field
    ("literal key in a number field", lambda d: d.update(context_window=FAKE_KEY), "context_window"),
    # a literal key in api_key, with a type error there
    ("key of the wrong type", lambda d: d.update(api_key=[FAKE_KEY]), "api_key"),
    # a key inside a malformed reference
    ("key inside braces", lambda d: d.update(api_key="${" + FAKE_KEY + "}"), "api_key"),
    # a key in headers, where strings are expected
    ("key in headers", lambda d: d.update(headers={"Authorization": [FAKE_KEY]}), "headers.Authorization"),
    # a literal key with an unknown key next to it
    ("literal key and a typo", lambda d: d.update(api_key=FAKE_KEY, api_kye=FAKE_KEY), "api_kye"),
]


@pytest.mark.parametrize("change, path", [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS])
def test_errors_never_echo_a_key(
    llms: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], change, path: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    edit_yaml(llms / GPT4, change)
    with pytest.raises(ConfigError) as info:
        load_config(llms)
    assert any(issue.path == path for issue in info.value.issues), str(info.value)
    assert FAKE_KEY not in str(info.value)
    assert FAKE_KEY not in repr(info.value.issues)
    assert actors.cli.main(["check", str(llms)]) == 1
    out, err = capsys.readouterr()
    assert FAKE_KEY not in out + err


def test_a_key_pasted_into_another_field_is_not_quoted(llms: Path) -> None:
    # Not a configured key, so nothing to scrub it against: the value looks like a token.
    edit_yaml(llms / GPT4, lambda d: d.update(context_window="sk-proj-Ab12Cd34Ef56Gh78"))
    with pytest.raises(ConfigError) as info:
        load_config(llms)
    [issue] = info.value.issues
    assert issue.path == "context_window" and "valid integer" in issue.message
    assert "Ab12Cd34" not in str(info.value)


def test_yaml_syntax_error_does_not_quote_the_line(llms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PyYAML's own message quotes the offending line; ours gives only its position.
    (llms / GPT4).write_text(f"model_type: openai\napi_key: {FAKE_KEY}: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(llms)
    assert "line 2" in str(info.value)
    assert FAKE_KEY not in str(info.value)


def test_a_key_written_as_a_shell_variable_says_to_use_braces(
    llms: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    edit_yaml(llms / GPT4, lambda d: d.update(api_key="$OPENAI_API_KEY"))
    with pytest.raises(ConfigError) as info:  # sent as written, it would be a 401 at the first call
        load_config(llms)
    [issue] = info.value.issues
    assert issue.path == "api_key"
    assert issue.message == "$OPENAI_API_KEY is kept as written; write ${OPENAI_API_KEY} to read the variable"
    assert FAKE_KEY not in str(info.value)
