"""Routes beyond chat, the fallback headers, and CORS: unknown routes, model lookup, count_tokens."""

from __future__ import annotations

import httpx
import pytest
from daemon_helpers import main_topology, start_daemon, write_topology

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

MSG = [{"role": "user", "content": "one two three four"}]


# -- unknown routes, model lookup ------------------------------------------------------------------


def test_an_unknown_route_is_not_found_not_a_missing_model(daemon, openai_client):
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.post("/nothing/here", cast_to=object, body={})
    assert info.value.body["code"] == "not_found" and "/v1/responses" in info.value.body["message"]
    r = httpx.post(daemon.url + "/v1/messages/nothing", json={}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_a_route_without_its_v1_says_where_the_base_url_went_wrong(daemon):
    # OpenAI(base_url="http://host:8080"), without /v1: the SDK posts to /chat/completions.
    client = openai.OpenAI(base_url=daemon.url, api_key="x", max_retries=0, timeout=10)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="chat", messages=MSG)
    message = info.value.body["message"]
    assert "(did you mean /v1/chat/completions? an OpenAI client's base_url ends in /v1)" in message
    # Anthropic(base_url="http://host:8080/v1"): the SDK posts to /v1/v1/messages.
    claude = anthropic.Anthropic(base_url=daemon.url + "/v1", api_key="x", max_retries=0, timeout=10)
    with pytest.raises(anthropic.NotFoundError) as info:
        claude.messages.create(model="chat", max_tokens=5, messages=MSG)
    assert "(did you mean /v1/messages? an Anthropic client's base_url has no /v1)" in str(info.value)
    r = httpx.post(daemon.url + "/nothing/here", json={}, timeout=10)
    assert r.status_code == 404 and "did you mean" not in r.json()["error"]["message"]


def test_models_can_be_looked_up_one_by_one(openai_client, anthropic_client):
    assert openai_client.models.retrieve("basic.echelon1").id == "basic.echelon1"
    assert anthropic_client.models.retrieve("claude_wrapper").id == "claude_wrapper"
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.models.retrieve("no-such-model")
    assert info.value.body["code"] == "model_not_found"


def test_models_say_whether_they_serve_chat_or_embeddings(daemon):
    modes = {m["id"]: m["mode"] for m in daemon.get("/v1/models").json()["data"]}
    assert modes["emb"] == modes["emb.echelon2"] == "embedding"
    assert modes["chat"] == modes["basic_pool"] == modes["claude"] == "chat"
    assert daemon.get("/v1/models/emb.echelon1").json()["mode"] == "embedding"


# -- count_tokens ----------------------------------------------------------------------------------


def test_count_tokens_asks_the_anthropic_instance(fake, anthropic_client):
    raw = anthropic_client.messages.with_raw_response.count_tokens(
        model="claude_wrapper", system="be brief", messages=MSG
    )
    assert raw.parse().input_tokens == 6  # the fake counts words: system and messages
    assert raw.headers["x-llm-actors-count-source"] == "instance:anth"
    assert fake.log == [("anth", "count_tokens")]
    sent = fake.requests("anth")[-1]["body"]
    assert sent["model"] == "anth-model" and sent["system"] == "be brief" and sent["messages"] == MSG


def test_count_tokens_estimates_without_an_anthropic_instance(fake, anthropic_client):
    raw = anthropic_client.messages.with_raw_response.count_tokens(model="chat", messages=MSG)
    assert raw.parse().input_tokens == len("one two three four") // 4
    assert raw.headers["x-llm-actors-count-source"] == "estimate"
    assert fake.log == []


def test_count_tokens_estimates_when_the_instance_fails(fake, anthropic_client):
    fake.configure("anth", status=500)
    raw = anthropic_client.messages.with_raw_response.count_tokens(model="claude_wrapper", messages=MSG)
    assert raw.headers["x-llm-actors-count-source"] == "estimate" and raw.parse().input_tokens > 0


# -- fallback headers ------------------------------------------------------------------------------


def test_a_direct_answer_says_no_fallback(openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(model="hdr", messages=MSG)
    assert raw.headers["x-llm-actors-fallback"] == "false" and raw.headers["x-llm-actors-failed"] == ""
    assert float(raw.headers["x-llm-actors-overhead-ms"]) >= 0


def test_headers_name_the_failed_instances_after_a_fallback(fake, openai_client):
    fake.configure("hdr1", status=503)
    raw = openai_client.chat.completions.with_raw_response.create(model="hdr", messages=MSG)
    assert raw.headers["x-llm-actors-instance"] == "hdr2"
    assert raw.headers["x-llm-actors-fallback"] == "true" and raw.headers["x-llm-actors-failed"] == "hdr1"
    assert float(raw.headers["x-llm-actors-overhead-ms"]) >= 0


def test_a_streamed_fallback_has_the_headers_too(fake, anthropic_client):
    fake.configure("hdr1", status=529)
    with anthropic_client.messages.with_streaming_response.create(
        model="hdr", max_tokens=50, messages=MSG, stream=True
    ) as raw:
        assert raw.headers["x-llm-actors-fallback"] == "true" and raw.headers["x-llm-actors-failed"] == "hdr1"
        assert (
            raw.headers["x-llm-actors-attempts"] == "2"
            and float(raw.headers["x-llm-actors-overhead-ms"]) >= 0
        )


def test_a_failed_request_lists_every_failed_instance(fake, openai_client):
    fake.configure("hdr1", status=503)
    fake.configure("hdr2", status=503)
    with pytest.raises(openai.InternalServerError) as info:
        openai_client.chat.completions.create(model="hdr", messages=MSG)
    headers = info.value.response.headers
    assert headers["x-llm-actors-failed"] == "hdr1,hdr2" and headers["x-llm-actors-fallback"] == "true"


# -- CORS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cors_daemon(fake_provider, tmp_path_factory):
    root = write_topology(tmp_path_factory.mktemp("cors"), fake_provider, **main_topology())
    d = start_daemon(
        root,
        "--cors-origin",
        "http://app.example",
        "--cors-origin",
        "http://localhost:3000",
        "--api-key",
        "k",
    )
    yield d
    d.stop()


@pytest.mark.parametrize("origin", ["http://app.example", "http://localhost:3000"])
def test_a_preflight_from_an_allowed_origin_passes_without_a_key(cors_daemon, origin):
    r = httpx.options(
        cors_daemon.url + "/v1/chat/completions",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()


def test_other_origins_get_no_cors_headers(cors_daemon):
    r = httpx.options(
        cors_daemon.url + "/v1/chat/completions",
        headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
        timeout=10,
    )
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers


def test_answers_carry_the_cors_headers_and_expose_the_gateways(cors_daemon):
    body = {"model": "chat", "messages": MSG}
    headers = {"origin": "http://app.example", "authorization": "Bearer k"}
    r = httpx.post(cors_daemon.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://app.example"
    exposed = r.headers["access-control-expose-headers"]
    assert "x-llm-actors-instance" in exposed and "x-llm-actors-fallback" in exposed
    r = httpx.post(
        cors_daemon.url + "/v1/chat/completions", json=body, headers={"origin": "http://app.example"}
    )
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "http://app.example"


def test_without_the_option_there_are_no_cors_headers(daemon):
    r = httpx.post(
        daemon.url + "/v1/chat/completions",
        json={"model": "chat", "messages": MSG},
        headers={"origin": "http://app.example"},
        timeout=10,
    )
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
