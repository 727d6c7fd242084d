"""A fake LLM provider on loopback: the OpenAI and Anthropic chat APIs with fault injection.

    with FakeProvider() as fake:
        fake.configure("a", status=429, retry_after=2, times=1)
        httpx.post(f"{fake.openai_base_url('a')}/chat/completions", json=...)

Modules: ``faults`` (what goes wrong, for which requests), ``plan`` (applying a fault to a
request), ``shapes`` (the providers' JSON and SSE), ``recorder`` (what was seen), ``server``
(h11 connections, routing, control API) and ``provider`` (the thread-side ``FakeProvider``).
"""

from actors.fake.faults import Fault
from actors.fake.provider import FakeProvider

__all__ = ["FakeProvider", "Fault"]
