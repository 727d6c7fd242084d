"""``POST /v1/embeddings`` through the official ``openai`` SDK, over embedding models on the fake."""

from __future__ import annotations

import base64
import struct

import httpx
import pytest

from actors.fake.embeddings import vector

openai = pytest.importorskip("openai")


def test_the_sdks_vectors_are_what_the_instance_sent(fake, openai_client):
    # Whatever format the SDK asks for, the upstream is asked for floats.
    raw = openai_client.embeddings.with_raw_response.create(
        model="emb", input=["alpha beta", "gamma"], dimensions=4
    )
    r = raw.parse()
    assert [d.index for d in r.data] == [0, 1]
    expected = [vector("alpha beta", 4), vector("gamma", 4)]
    assert [d.embedding for d in r.data] == [pytest.approx(e, abs=1e-6) for e in expected]  # float32
    assert r.usage.prompt_tokens == r.usage.total_tokens == 3
    assert raw.headers["x-llm-actors-instance"] == "emb1" and raw.headers["x-llm-actors-fallback"] == "false"
    sent = fake.requests("emb1")[-1]["body"]
    assert sent == {
        "model": "emb1-model",
        "input": ["alpha beta", "gamma"],
        "encoding_format": "float",
        "dimensions": 4,
    }


def test_float_format_and_a_single_string(openai_client):
    r = openai_client.embeddings.create(model="emb.echelon1", input="just one", encoding_format="float")
    assert len(r.data) == 1 and r.data[0].embedding == vector("just one")


def test_base64_is_little_endian_float32(daemon):
    r = httpx.post(
        daemon.url + "/v1/embeddings",
        json={"model": "emb", "input": "x", "encoding_format": "base64"},
        timeout=10,
    )
    blob = base64.b64decode(r.json()["data"][0]["embedding"])
    floats = struct.unpack(f"<{len(blob) // 4}f", blob)
    assert list(floats) == pytest.approx(vector("x"), abs=1e-6)


def test_a_failing_instance_falls_back(fake, openai_client):
    fake.configure("emb1", status=500)
    raw = openai_client.embeddings.with_raw_response.create(
        model="emb", input="fallback", encoding_format="float"
    )
    assert raw.parse().data[0].embedding == vector("fallback")
    assert (
        raw.headers["x-llm-actors-instance"] == "emb2"
        and raw.headers["x-llm-actors-target"] == "emb.echelon2"
    )
    assert raw.headers["x-llm-actors-fallback"] == "true" and raw.headers["x-llm-actors-failed"] == "emb1"
    assert raw.headers["x-llm-actors-attempts"] == "2"


def test_chat_and_embeddings_do_not_cross(fake, openai_client):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.embeddings.create(model="chat", input="x")
    assert "mode: embedding" in info.value.body["message"] and info.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="emb", messages=[{"role": "user", "content": "x"}])
    assert "/v1/embeddings" in info.value.body["message"] and info.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.responses.create(model="emb", input="x")
    assert info.value.body["param"] == "model"
    assert fake.log == []


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "emb", "input": []}, "input"),
        ({"model": "emb", "input": [1, "a"]}, "input"),
        ({"model": "emb"}, "input"),
        ({"model": "emb", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": "emb", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "emb", "input": "x", "temperature": 1}, "temperature"),
    ],
)
def test_bad_embedding_requests_name_the_field(fake, daemon, body, param):
    r = httpx.post(daemon.url + "/v1/embeddings", json=body, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == param
    assert fake.log == []


def test_token_id_inputs_as_langchain_sends_them(fake, openai_client):
    r = openai_client.embeddings.create(model="emb", input=[[1, 2, 3], [4, 5]], encoding_format="float")
    assert [d.embedding for d in r.data] == [vector([1, 2, 3]), vector([4, 5])]
    assert fake.requests("emb1")[-1]["body"]["input"] == [[1, 2, 3], [4, 5]]
