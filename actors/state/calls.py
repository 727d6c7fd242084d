"""Script calls on the store: a batch of one-slot calls in one round trip, plain server or cluster.

Each call runs one script over the keys of one owner (one hash slot). A batch of several goes
out as one non-transactional pipeline: one round trip to a single server, one per node (sent
together) on a Redis Cluster, where ``RedisCluster`` groups the pipeline by node. A batch of one
is a plain ``EVALSHA``, which costs less in ``redis-py`` than a pipeline.

Scripts are called by SHA1 only; a server that lost them (a restart, a ``SCRIPT FLUSH``, a new
cluster node) answers ``NOSCRIPT`` to those calls alone, which are sent again once the scripts are
loaded (``SCRIPT LOAD`` reaches every primary of a cluster). The others already ran: sending the
whole batch again would run them twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.exceptions import NoScriptError, ResponseError

from actors.state import scripts

__all__ = ["Call", "arun", "run"]

BODIES = {name: getattr(scripts, name) for name in scripts.NAMES}
SHAS = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in BODIES.items()}


class Call(NamedTuple):
    """One script over one owner's keys."""

    script: str
    keys: Sequence[str]
    args: Sequence[Any]

    @property
    def command(self) -> tuple[Any, ...]:
        return ("EVALSHA", SHAS[self.script], len(self.keys), *self.keys, *self.args)


def run(client: Any, batch: Sequence[Call]) -> list[Any]:
    """The replies of ``batch`` in order, in one round trip (two if the server lost scripts)."""
    replies = _send(client, batch)
    missing = _missing(replies)
    if missing:
        for name in {batch[i].script for i in missing}:
            client.script_load(BODIES[name])
        for i, reply in zip(missing, _send(client, [batch[i] for i in missing]), strict=True):
            replies[i] = reply
    return _checked(replies)


async def arun(client: Any, batch: Sequence[Call]) -> list[Any]:
    """``run`` on an asyncio client."""
    replies = await _asend(client, batch)
    missing = _missing(replies)
    if missing:
        for name in {batch[i].script for i in missing}:
            await client.script_load(BODIES[name])
        for i, reply in zip(missing, await _asend(client, [batch[i] for i in missing]), strict=True):
            replies[i] = reply
    return _checked(replies)


def _send(client: Any, batch: Sequence[Call]) -> list[Any]:
    if len(batch) == 1:
        try:
            return [client.execute_command(*batch[0].command)]
        except NoScriptError as exc:
            return [exc]
    pipe = client.pipeline(transaction=False)
    for call in batch:
        pipe.execute_command(*call.command)
    return list(pipe.execute(raise_on_error=False))


async def _asend(client: Any, batch: Sequence[Call]) -> list[Any]:
    if len(batch) == 1:
        try:
            return [await client.execute_command(*batch[0].command)]
        except NoScriptError as exc:
            return [exc]
    pipe = client.pipeline(transaction=False)
    for call in batch:
        pipe.execute_command(*call.command)
    return list(await pipe.execute(raise_on_error=False))


def _missing(replies: list[Any]) -> list[int]:
    return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def _checked(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, ResponseError):  # a script error is a bug: the caller says so loudly
            raise reply
    return replies
