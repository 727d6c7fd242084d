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


def _events(lines: Any) -> Any:
    """The data of each SSE event from ``lines``, as they come."""
    for line in lines:
        if line.startswith("data: "):
            yield line[len("data: ") :]


@pytest.mark.parametrize("chunk_delay", [0.0, 0.001])
def test_a_stream_held_midway_sends_its_first_piece_then_waits(fake, chunk_delay):
    if chunk_delay:
        fake.configure("a", chunk_delay=chunk_delay)
    fake.hold("a", after=1)
    body = {"model": "m", "messages": [{"role": "user", "content": "one two three"}], "stream": True}
    url = f"{fake.openai_base_url('a')}/chat/completions"
    with httpx.Client(timeout=20) as client, client.stream("POST", url, json=body) as response:
        events = _events(response.iter_lines())
        role = next(events)
        first = next(events)  # arrives while the fake holds the rest: no release has happened yet
        assert '"role":"assistant"' in role and '"content":"echo:"' in first
        assert fake.stats("a")["in_flight"] == 1
        assert fake.release("a") == 1
        rest = list(events)
    assert rest[-1] == "[DONE]" and '"content":" one"' in rest[0]


def test_a_hold_after_more_pieces_than_a_stream_has_waits_before_its_end(fake):
    fake.hold("a", after=50)
    body = {"model": "m", "messages": USER, "stream": True}
    url = f"{fake.openai_base_url('a')}/chat/completions"
    with httpx.Client(timeout=20) as client, client.stream("POST", url, json=body) as response:
        events = _events(response.iter_lines())
        assert next(e for e in events if e == "[DONE]")  # every event, then the body stays open
        assert fake.release("a") == 1
        assert list(events) == []


def test_a_hold_midway_leaves_whole_answers_held_before_their_plan(fake):
    with fake.holding("a", after=1), ThreadPoolExecutor(1) as pool:
        held = pool.submit(chat, fake, "a")
        assert fake.wait_for_in_flight("a", 1)
        assert not held.done()
        fake.release("a")
        assert held.result().status_code == 200


def test_hold_midway_over_http(fake):
    with httpx.Client(timeout=5) as client:
        r = client.post(f"{fake.url}/_hold/a", json={"after": 2})
        assert r.status_code == 200 and r.json() == {"instance": "a", "held": True, "after": 2}
        for bad in ({"after": -1}, {"after": "2"}, [1]):
            r = client.post(f"{fake.url}/_hold/b", json=bad)
            assert r.status_code == 400 and "after" in r.json()["error"]
        assert client.delete(f"{fake.url}/_hold/a").json() == {"instance": "a", "released": 0}
