"""The base of every llm-actors actor: typed messages, guarded handlers, small thread stacks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import pykka

from actors.reply import guarded

__all__ = ["THREAD_STACK_SIZE", "Actor", "Crash"]

log = logging.getLogger(__name__)

#: Actor threads only run short handlers; a small stack keeps 1,000+ instances cheap.
THREAD_STACK_SIZE = 256 * 1024


class Crash:
    """Test and drill hook: makes the receiving actor fail as if a handler had a bug."""

    __slots__ = ()


class Actor(pykka.ThreadingActor):
    """Dispatches each message to ``handlers[type(message)]``; nothing a handler raises escapes.

    Actors run on daemon threads so an embedding app can never hang at exit; the runtime still
    stops every actor explicitly on shutdown.
    """

    use_daemon_thread = True
    handlers: ClassVar[dict[type, str]] = {}
    #: Called from the failing actor's thread with (actor, exception) before it dies.
    on_crash: Callable[[Actor, BaseException | None], None] | None = None

    def __init__(self, *, on_crash: Callable[[Actor, BaseException | None], None] | None = None) -> None:
        super().__init__()
        self.on_crash = on_crash
        self._dispatch = {kind: guarded(getattr(self, name)) for kind, name in self.handlers.items()}

    def _start_actor_loop(self) -> None:
        # threading.stack_size is process-wide; set it only around our own thread's creation.
        with _STACK_LOCK:
            previous = threading.stack_size(THREAD_STACK_SIZE)
            try:
                super()._start_actor_loop()
            finally:
                threading.stack_size(previous)

    def on_receive(self, message: Any) -> Any:
        if type(message) is Crash:
            raise RuntimeError(f"{type(self).__name__} was told to crash")
        handler = self._dispatch.get(type(message))
        if handler is None:
            log.warning("%s got an unknown message %r", type(self).__name__, type(message).__name__)
            return None
        return handler(message)

    def on_failure(self, exc_type: Any, exc_value: BaseException | None, tb: Any) -> None:
        if self.on_crash is not None:
            try:
                self.on_crash(self, exc_value)
            except BaseException:
                log.exception("crash callback failed")


_STACK_LOCK = threading.Lock()
