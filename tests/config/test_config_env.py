"""``${VAR}`` / ``${VAR:-default}`` / ``$$`` expansion."""

from __future__ import annotations

import pytest

from actors.config.env import expand, substitute

ENV = {"HOST": "example.org", "EMPTY": "", "PORT": "8080"}


@pytest.mark.parametrize(
    "text, value, missing",
    [
        ("plain", "plain", ()),
        ("${HOST}", "example.org", ()),
        ("https://${HOST}:${PORT}/v1", "https://example.org:8080/v1", ()),
        ("${NOPE}", "${NOPE}", ("NOPE",)),  # kept as written, reported
        ("${NOPE:-fallback}", "fallback", ()),
        ("${NOPE:-}", "", ()),
        ("${EMPTY}", "", ()),  # set but empty stays empty, as in a shell
        ("${EMPTY:-fallback}", "fallback", ()),  # :- also covers empty
        ("${HOST:-fallback}", "example.org", ()),
        ("${NOPE:-http://a:1/v1}", "http://a:1/v1", ()),
        ("$$", "$", ()),
        ("$${HOST}", "${HOST}", ()),  # escaped: not a reference
        ("cost: 5$", "cost: 5$", ()),  # a lone $ is literal
        ("$HOST", "$HOST", ()),  # only the braced form is a reference
    ],
)
def test_expand(text: str, value: str, missing: tuple[str, ...]) -> None:
    result = expand(text, ENV)
    assert result.value == value
    assert result.missing == missing
    assert result.errors == ()


@pytest.mark.parametrize("text", ["${HOST", "${}", "${1ABC}", "${A B}", "${sk-abc123}"])
def test_malformed_references_are_errors_that_do_not_echo_the_text(text: str) -> None:
    result = expand(text, ENV)
    assert result.errors
    assert "sk-abc123" not in result.errors[0]


def test_substitute_walks_values_not_keys_and_reports_paths() -> None:
    data = {"${HOST}": "${HOST}", "list": [1, "${NOPE}", {"deep": "${PORT}"}], "n": 3}
    result = substitute(data, ENV)
    assert result.data == {"${HOST}": "example.org", "list": [1, "${NOPE}", {"deep": "8080"}], "n": 3}
    assert [path for path, _ in result.problems] == [("list", 1)]
    assert "NOPE is not set" in result.problems[0][1]
    assert "${NOPE:-value}" in result.problems[0][1]
