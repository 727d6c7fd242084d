"""Every error status, as the official SDK sees it: its own typed error with the right status."""

from __future__ import annotations

import httpx
import pytest
from daemon_helpers import MAX_BODY

openai = pytest.importorskip("openai")

MSG = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"messages": MSG}, "model"),
        ({"model": "chat"}, "messages"),
        ({"model": "chat", "messages": []}, "messages"),
        ({"model": "chat", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "chat", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "chat", "messages": MSG, "temperature": "hot"}, "temperature"),
        ({"model": "chat", "messages": MSG, "temperature": 3}, "temperature"),
        ({"model": "chat", "messages": MSG, "max_tokens": 0}, "max_tokens"),
        ({"model": "chat", "messages": MSG, "stream": "yes"}, "stream"),
        ({"model": "chat", "messages": MSG, "tools": [{"type": "function"}]}, "tools[0]"),
        ({"model": "chat", "messages": MSG, "n": 2}, "n"),
    ],
)
def test_a_bad_body_is_400_naming_the_field(openai_client, body, field):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.post("/chat/completions", cast_to=object, body=body)
    assert info.value.status_code == 400
    assert info.value.body["message"].startswith(field + ":")
    assert info.value.body["param"] == field.split("[")[0].split(".")[0]


def test_a_body_that_is_not_json_is_400(daemon):
    r = httpx.post(
        daemon.url + "/v1/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_an_unknown_model_is_404_listing_the_valid_ones(openai_client):
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.chat.completions.create(model="gpt-5-ultra", messages=MSG)
    message = info.value.body["message"]
    assert (
        "gpt-5-ultra" in message
        and "chat" in message
        and "basic_pool" in message
        and "fo.echelon2" in message
    )
    assert info.value.body["code"] == "model_not_found"


def test_a_model_naming_an_instance_or_its_upstream_model_is_404_naming_the_tiers_to_use(openai_client):
    for model, what in (("fo2", "'fo2' is an instance"), ("fo2-model", "upstream model of instance fo2")):
        with pytest.raises(openai.NotFoundError) as info:
            openai_client.chat.completions.create(model=model, messages=MSG)
        message = info.value.body["message"]
        assert what in message and "name a tier that lists it (fo.echelon2)" in message, message
        assert info.value.body["code"] == "model_not_found"


def test_every_candidate_parked_is_429_with_retry_after(fake, openai_client):
    fake.configure("rl1", status=429, retry_after=7)
    with pytest.raises(openai.RateLimitError) as info:  # the attempt itself was rate limited
        openai_client.chat.completions.create(model="rl", messages=MSG)
    assert info.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.RateLimitError) as info:  # now parked: no attempt at all
        openai_client.chat.completions.create(model="rl", messages=MSG)
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 7
    assert fake.stats("rl1")["requests"] == 1


def test_nothing_available_is_503(fake, openai_client):
    with pytest.raises(openai.InternalServerError) as info:  # the only instance is disabled (no key)
        openai_client.chat.completions.create(model="off", messages=MSG)
    assert info.value.status_code == 503 and "disabled" in info.value.body["message"]
    fake.configure("down1", status=500)
    with pytest.raises(openai.InternalServerError) as info:  # every attempt failed, unhealthy
        openai_client.chat.completions.create(model="down", messages=MSG)
    assert info.value.status_code == 503 and info.value.response.headers["x-llm-actors-attempts"] == "1"
    assert info.value.response.headers["x-llm-actors-instance"] == "down1"


def test_the_deadline_is_504(fake, openai_client):
    fake.configure("slow1", latency=3)
    with pytest.raises(openai.InternalServerError) as info:
        openai_client.chat.completions.create(model="deadline", messages=MSG)
    assert info.value.status_code == 504 and "deadline" in info.value.body["message"]


def test_an_upstream_400_passes_through_as_400(fake, openai_client):
    fake.configure("bad1", status=400)
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="bad", messages=MSG)
    assert info.value.status_code == 400
    assert info.value.response.headers["x-llm-actors-upstream-status"] == "400"
    assert fake.stats("bad1")["requests"] == 1  # the caller's fault: not retried


def test_a_body_over_the_limit_is_413(daemon, openai_client):
    big = [{"role": "user", "content": "x" * (MAX_BODY + 1)}]
    with pytest.raises(openai.APIStatusError) as info:
        openai_client.chat.completions.create(model="chat", messages=big)
    assert info.value.status_code == 413 and "--max-body" in info.value.body["message"]

    def chunks():  # no content-length: counted as it arrives
        yield b'{"model": "chat", "messages": [{"role": "user", "content": "'
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"y" * 1024
        yield b'"}]}'

    r = httpx.post(daemon.url + "/v1/chat/completions", content=chunks())
    assert r.status_code == 413
    assert daemon.get("/healthz").status_code == 200  # still serving


def test_unknown_paths_and_methods_answer_json(daemon):
    r = daemon.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    r = daemon.get("/v1/chat/completions")
    assert r.status_code == 405


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/chat/completions", {"model": "chat", "messages": [{"role": "assistant", "tool_calls": "x"}]}),
        (
            "/v1/chat/completions",
            {"model": "chat", "messages": [{"role": "assistant", "tool_calls": [{"function": "x"}]}]},
        ),
        (
            "/v1/messages",
            {
                "model": "claude_wrapper",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "image", "source": "http://x"}]}],
            },
        ),
    ],
)
def test_a_body_of_an_unexpected_shape_is_400_in_the_clients_shape(daemon, path, body):
    r = httpx.post(daemon.url + path, json=body, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["message"]


def test_a_slot_a_minute_away_is_429_at_once_with_the_true_retry_after(openai_client):
    openai_client.chat.completions.create(model="rpm", messages=MSG)  # takes the minute's one slot
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(model="rpm", messages=MSG)
    # Not the 5 s queue wait: the rolling window frees the next slot about a minute after the first.
    assert 50 <= int(info.value.response.headers["retry-after"]) <= 60
