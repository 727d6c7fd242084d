"""A streamed answer's first text reaches the client while the provider has sent nothing after it.

Nothing on the way (the upstream read, the SSE parser, the stream decoder, the runtime, the
renderer, the ASGI server's send) may hold an event until the next bytes arrive: the fake sends
the opening events and the first piece of text, then holds the rest until the test has read
that piece through the daemon.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from daemon_helpers import Daemon

USER = [{"role": "user", "content": "one two three"}]


@pytest.mark.parametrize(
    ("path", "model", "instance", "end"),
    [
        ("/v1/chat/completions", "slow", "slow1", "data: [DONE]"),
        ("/v1/messages", "claude", "anth", "event: message_stop"),
    ],
)
def test_the_first_text_arrives_before_the_next_event_exists(
    fake: Any, daemon: Daemon, path: str, model: str, instance: str, end: str
) -> None:
    body = {"model": model, "messages": USER, "stream": True, "max_tokens": 64}
    with fake.holding(instance, after=1), httpx.Client(timeout=10) as client:
        with client.stream("POST", daemon.url + path, json=body) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            before = []
            for line in lines:  # a read timeout here means the first text was held back
                before.append(line)
                if "echo:" in line:
                    break
            assert " one" not in "".join(before)  # the fake has not sent the next piece yet
            assert fake.release(instance) == 1
            after = list(lines)
    assert " one" in "".join(after) and end in after
