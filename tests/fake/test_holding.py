"""Holding requests: they arrive and count as in flight, then wait until the test releases them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from actors.fake import FakeProvider

USER = [{"role": "user", "content": "hi"}]


def chat(fake: FakeProvider, instance: str, **body: Any) -> httpx.Response:
    body = {"model": "m", "messages": USER, **body}
    return httpx.post(f"{fake.openai_base_url(instance)}/chat/completions", json=body, timeout=20)


def test_held_requests_stay_in_flight_until_released(fake):
    fake.hold("a")
    with ThreadPoolExecutor(3) as pool:
        held = [pool.submit(chat, fake, "a") for _ in range(3)]
        assert fake.wait_for_in_flight("a", 3)
        assert chat(fake, "b").status_code == 200  # other instances are not held
        assert not any(f.done() for f in held)
        assert fake.stats("a")["statuses"] == {}
        assert fake.release("a") == 3
        assert [f.result().status_code for f in held] == [200] * 3
    assert fake.wait_for_idle("a")
    assert chat(fake, "a").status_code == 200  # released: new requests no longer wait


def test_a_held_request_then_plays_its_fault(fake):
    fake.configure("a", status=529, times=1)
    with fake.holding("a"), ThreadPoolExecutor(1) as pool:
        held = pool.submit(chat, fake, "a")
        assert fake.wait_for_in_flight("a", 1)
        fake.release("a")
        assert held.result().status_code == 529


def test_holding_releases_when_the_block_fails(fake):
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(RuntimeError), fake.holding("a", "b"):
            held = pool.submit(chat, fake, "a", stream=True)
            assert fake.wait_for_in_flight("a", 1)
            raise RuntimeError("the test failed while holding")
        r = held.result()
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
    assert chat(fake, "b").status_code == 200


def test_reset_releases_every_hold(fake):
    fake.hold("a", "b")
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(chat, fake, name) for name in "ab"]
        assert fake.wait_for_in_flight("a", 1) and fake.wait_for_in_flight("b", 1)
        fake.reset()
        assert [f.result().status_code for f in held] == [200, 200]


def test_hold_over_http(fake):
    with httpx.Client(timeout=5) as client, ThreadPoolExecutor(1) as pool:
        r = client.post(f"{fake.url}/_hold/a")
        assert r.status_code == 200 and r.json() == {"instance": "a", "held": True}
        held = pool.submit(chat, fake, "a")
        assert fake.wait_for_in_flight("a", 1)
        r = client.delete(f"{fake.url}/_hold/a")
        assert r.status_code == 200 and r.json() == {"instance": "a", "released": 1}
        assert held.result().status_code == 200
        assert client.get(f"{fake.url}/_hold/a").status_code == 405


def test_embeddings_are_held_but_model_listings_are_not(fake):
    with fake.holding("a"), ThreadPoolExecutor(1) as pool:
        url = f"{fake.openai_base_url('a')}/embeddings"
        held = pool.submit(httpx.post, url, json={"model": "e", "input": "x"}, timeout=20)
        assert fake.wait_for_in_flight("a", 1)
        assert httpx.get(f"{fake.openai_base_url('a')}/models", timeout=5).status_code == 200  # probes pass
        assert not held.done()
        fake.release("a")
        assert held.result().status_code == 200
