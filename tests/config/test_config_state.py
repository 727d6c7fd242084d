"""``config/llms/state.yaml``: where request state lives, validated like every other file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from config_helpers import write_yaml

from actors.config import ConfigError, StateConfig, load_config
from actors.config.state import redact_url, with_override


def test_absent_file_means_in_process_state(llms: Path, no_keys: None) -> None:
    assert load_config(llms).state == StateConfig()
    assert load_config(llms).state.backend == "local"


def test_every_key_is_read_and_the_url_substituted(
    llms: Path, no_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_yaml(
        llms / "state.yaml",
        {
            "backend": "redis",
            "url": "${LLM_ACTORS_REDIS_URL:-redis://127.0.0.1:6379/0}",
            "key_prefix": "prod:llm",
            "lease_ttl": 10,
            "on_outage": "closed",
            "replicas": 4,
        },
    )
    monkeypatch.setenv("LLM_ACTORS_REDIS_URL", "redis://cache.internal:6380/2")
    state = load_config(llms).state
    assert (state.backend, state.url, state.key_prefix) == (
        "redis",
        "redis://cache.internal:6380/2",
        "prod:llm",
    )
    assert (state.lease_ttl, state.on_outage, state.replicas) == (10, "closed", 4)


def test_errors_name_the_file_and_field_and_never_the_password(llms: Path, no_keys: None) -> None:
    write_yaml(
        llms / "state.yaml",
        {"backend": "memcached", "url": "http://:s3cretpass@x", "lease_ttl": 0, "replica": 2},
    )
    with pytest.raises(ConfigError) as info:
        load_config(llms)
    text = str(info.value)
    state_file = str(llms / "state.yaml")
    for field in ("backend", "url", "lease_ttl", "replica"):
        assert f"{state_file}: {field}:" in text
    assert "did you mean 'replicas'" in text
    assert "s3cretpass" not in text


def test_overrides_a_url_or_local() -> None:
    base = StateConfig(key_prefix="p", replicas=3)
    shared = with_override(base, "redis://10.0.0.1:6379/1")
    assert (shared.backend, shared.url, shared.key_prefix, shared.replicas) == (
        "redis",
        "redis://10.0.0.1:6379/1",
        "p",
        3,
    )
    assert with_override(shared, "local").backend == "local"
    assert with_override(base, None) is base
    with pytest.raises(ConfigError, match="<state override>: url: must be a redis://"):
        with_override(base, "http://example.com")


def test_passwords_are_masked_for_display() -> None:
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://user:pw@h/0") == "redis://user:***@h/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert "pw" not in StateConfig(url="redis://:pw@h:1/0").display_url
    assert "pw" not in repr(StateConfig(url="redis://:pw@h:1/0"))


def test_a_redis_backend_without_the_redis_client_says_what_to_install(
    llms: Path, no_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors import Runtime

    # As on a machine without the redis extra: the client and the modules built on it unimported.
    monkeypatch.setitem(sys.modules, "redis", None)
    for name in ("actors.state.redis", "actors.state.store"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ConfigError, match=r"<state override>: url: .*pip install 'llm-actors\[redis\]'"):
        Runtime.from_config(llms, state="redis://127.0.0.1:6390/0")
    write_yaml(llms / "state.yaml", {"backend": "redis", "url": "redis://127.0.0.1:6390/0"})
    with pytest.raises(ConfigError, match=r"llms/state.yaml: backend: .*not installed"):
        Runtime.from_config(llms)
