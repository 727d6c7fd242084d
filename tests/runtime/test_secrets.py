"""No API key in errors, stats, health, histories or logs, whatever happens to a request."""

from __future__ import annotations

import json
import logging

import pytest

import actors

KEY = "sk-SECRET-4c1d7e9b-never-print-me"
QKEY = "QUERYSECRET999-in-the-url"  # some servers take the key in base_url's query
MSG = [{"role": "user", "content": "hi"}]


def test_a_key_never_leaks_into_errors_stats_health_or_logs(fake, runtime_for, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("QKEY", QKEY)
    queried = {
        "c": {"base_url": fake.openai_base_url("c") + "?key=${QKEY}&v=2"},
        "d": {"base_url": "http://127.0.0.1:1/v1?key=${QKEY}"},  # nothing listens: connect errors
    }
    seen = []
    for fault in (
        {"status": 500},
        {"status": 429, "retry_after": 1},
        {"drop": True},
        {"garbage": True},
        {"status": 401},
    ):
        # A fresh runtime per fault: open breakers or disabled instances would hide the next one.
        rt = runtime_for(
            models={"a": {"api_key": KEY}, "b": {"api_key": KEY, "model_type": "anthropic"}, **queried},
            groups={"g": {"echelon1": {"models": ["a", "b", "c", "d"], "max_retries": 3}}},
            pools={"p": {"task_groups": ["g.echelon1"]}},
        )
        fake.configure("a", **fault)
        fake.configure("b", **fault)
        fake.configure("c", **fault)
        for wrapper in (
            rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "retry_delay": 0}),
            rt.factory.create_polling_pool_wrapper("pw", {"pool": "p"}),
        ):
            with pytest.raises(actors.LLMError) as info:
                wrapper.generate(MSG, timeout=2)
            seen += [str(info.value), repr(info.value)]
            seen += [str(getattr(a, "error", "")) for a in getattr(info.value, "attempts", [])]
            seen.append(json.dumps(wrapper.get_fallback_history(100), default=str))
            seen.append(json.dumps(wrapper.health(), default=str))
        seen.append(json.dumps(rt.stats(), default=str))
        seen.append(repr(rt.config))
    seen.append(caplog.text)
    assert any("401" in s for s in seen) and any("500" in s for s in seen)  # failures were reported
    assert not [s for s in seen if KEY in s]
    assert any("could not connect to http://127.0.0.1:1/v1 " in s for s in seen)
    assert not [s for s in seen if "QUERYSECRET" in s]
    assert "c/v1/chat/completions?key=***&v=2" in caplog.text  # httpx's request lines, masked
    assert {r["query"] for r in fake.requests("c")} == {f"key={QKEY}&v=2"}  # yet the server got it
    assert any(r["headers"].get("authorization") == f"Bearer {KEY}" for r in fake.requests("a"))
