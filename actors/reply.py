"""Replies from actors without blocking an event loop: a handle travels in the message.

``ask_sync`` waits on a ``ThreadingFuture`` with a timeout; ``ask_async`` awaits an asyncio
future that the actor completes with ``call_soon_threadsafe``, so a serving loop never blocks
on a pykka future (whose ``__await__`` would block the whole loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pykka

__all__ = ["DEFAULT_ASK_TIMEOUT", "Reply", "ask_async", "ask_sync", "guarded"]

log = logging.getLogger(__name__)

DEFAULT_ASK_TIMEOUT = 5.0


class Reply:
    """Where an actor sends its answer; completing it never raises into the actor."""

    __slots__ = ("future", "loop")

    def __init__(self, future: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.future = future
        self.loop = loop

    def set(self, value: Any) -> None:
        try:
            if self.loop is None:
                self.future.set(value)
            else:
                self.loop.call_soon_threadsafe(_settle, self.future, value, None)
        except RuntimeError:  # the asker's loop is closed: nobody waits any more
            pass
        except BaseException:  # never into the actor (SPEC §6), but never silently either
            log.exception("could not deliver a reply")

    def fail(self, exc: BaseException) -> None:
        try:
            if self.loop is None:
                self.future.set_exception((type(exc), exc, exc.__traceback__))
            else:
                self.loop.call_soon_threadsafe(_settle, self.future, None, exc)
        except RuntimeError:  # the asker's loop is closed: nobody waits any more
            pass
        except BaseException:
            log.exception("could not deliver a failure reply")


def _settle(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


def ask_sync(
    ref: pykka.ActorRef[Any], make: Callable[[Reply], Any], timeout: float = DEFAULT_ASK_TIMEOUT
) -> Any:
    """Send ``make(reply)`` to ``ref`` and wait up to ``timeout`` seconds for the answer."""
    future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    ref.tell(make(Reply(future)))
    return future.get(timeout=timeout)


async def ask_async(
    ref: pykka.ActorRef[Any], make: Callable[[Reply], Any], timeout: float = DEFAULT_ASK_TIMEOUT
) -> Any:
    """Send ``make(reply)`` to ``ref`` and await the answer without blocking the loop."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    ref.tell(make(Reply(future, loop)))
    return await asyncio.wait_for(future, timeout)


def guarded(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a message handler so that nothing it raises stops the actor; reply with the error."""

    def run(message: Any) -> Any:
        try:
            return handler(message)
        except BaseException as exc:  # CancelledError and friends too: see SPEC §6
            reply = getattr(message, "reply", None)
            if reply is not None:
                reply.fail(exc)
            else:
                log.exception("handler %s failed", handler.__qualname__)
            return None

    return run
