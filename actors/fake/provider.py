"""``FakeProvider``: the fake server's public face, running its event loop in a daemon thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from actors.fake.faults import Fault, FaultBook
from actors.fake.recorder import Recorder
from actors.fake.server import Hub

__all__ = ["FakeProvider"]

T = TypeVar("T")

_CALL_TIMEOUT = 10.0  # seconds a lifecycle call may take on the loop before we give up


class FakeProvider:
    """A loopback server speaking the OpenAI and Anthropic chat APIs, with per-instance faults.

    Each path prefix is an instance: ``{url}/{instance}/v1/chat/completions`` (OpenAI) and
    ``{url}/{instance}/v1/messages`` (Anthropic); also ``/v1/embeddings`` (OpenAI's, repeatable
    vectors: ``actors.fake.embeddings``) and ``/v1/messages/count_tokens``. Every method is safe to call from any thread
    while the server runs. ``requests(instance)`` keeps the last ``keep_requests`` bodies.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, keep_requests: int | None = 1000) -> None:
        self.host = host
        self._port = port
        self._faults = FaultBook()
        self._recorder = Recorder(keep_requests)
        self._hub = Hub(self._faults, self._recorder)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Start serving; returns once the port is listening."""
        if self._thread is not None:
            return self
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"fake-provider:{self._port}", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._listen())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving: abort every connection (hanging requests too) and end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._unlisten())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            self._loop = self._thread = None

    def kill(self) -> None:
        """Stop listening and abort every open connection, so clients see connection refused."""
        self._call(self._unlisten())

    def restore(self) -> None:
        """Listen again on the same port after ``kill`` (does nothing if already listening)."""
        self._call(self._listen())

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def openai_base_url(self, instance: str) -> str:
        """The ``base_url`` an OpenAI client uses for ``instance`` (includes ``/v1``)."""
        return f"{self.url}/{instance}/v1"

    def anthropic_base_url(self, instance: str) -> str:
        """The ``base_url`` an Anthropic client uses for ``instance`` (without ``/v1``)."""
        return f"{self.url}/{instance}"

    # -- faults -------------------------------------------------------------------------------

    def configure(self, instance: str, fault: Fault | None = None, /, **fields: Any) -> Fault:
        """Replace the fault of ``instance`` with ``fault`` and/or ``fields`` (see ``Fault``)."""
        if fault is not None:
            fields = {**fault.model_dump(exclude_defaults=True), **fields}
        parsed = Fault.parse(fields)
        self._faults.set(instance, parsed)
        return parsed

    def fault(self, instance: str) -> Fault | None:
        """The fault configured for ``instance``, if any."""
        return self._faults.get(instance)

    def clear(self, instance: str) -> None:
        """Remove the fault of ``instance``; it answers normally again."""
        self._faults.clear(instance)

    def reset(self) -> None:
        """Clear every fault, the stats, the log and the recorded requests; release every hold."""
        if self._loop is None:
            self._hub.reset()
        else:  # releasing sets asyncio events, which only the server's loop may do
            self._call(self._on_loop(self._hub.reset))

    # -- holding requests -----------------------------------------------------------------------

    def hold(self, *instances: str, after: int = 0) -> None:
        """From now on, requests of ``instances`` arrive (and count as in flight) but wait before
        their fault plan until ``release``: a test can act while they are surely running. With
        ``after`` > 0, a streamed answer first sends its head, its opening events and ``after``
        pieces of content, then waits (other answers wait before their plan as with 0): a test
        can see what reaches a client before the next event exists. Model listings, which health
        probes use, are not held."""
        hub = self._hub

        def hold_all() -> None:
            for instance in instances:
                hub.hold(instance, after)

        self._call(self._on_loop(hold_all))

    def release(self, *instances: str) -> int:
        """Let the held requests of ``instances`` (of every instance if none is named) go on, and
        stop holding new ones; returns how many requests were waiting."""
        hub = self._hub
        names: list[str | None] = list(instances) or [None]
        return self._call(self._on_loop(lambda: sum(hub.release(n) for n in names)))

    @contextlib.contextmanager
    def holding(self, *instances: str, after: int = 0) -> Iterator[FakeProvider]:
        """``hold`` for a block; releases on the way out even if the block fails."""
        self.hold(*instances, after=after)
        try:
            yield self
        finally:
            if self._loop is not None:
                self.release(*instances)

    # -- recording ----------------------------------------------------------------------------

    def stats(self, instance: str | None = None) -> dict[str, Any]:
        """Counters of ``instance`` (zeros if never called), or ``{instance: counters}`` for all."""
        return self._recorder.stats(instance)

    @property
    def log(self) -> list[tuple[str, str]]:
        """``(instance, api)`` of every request, in arrival order."""
        return self._recorder.log()

    def requests(self, instance: str) -> list[dict[str, Any]]:
        """``{"body": parsed JSON or None, "headers": {lower-case name: value}, "query": the raw
        query string}`` per request,
        oldest first (the last ``keep_requests`` of them)."""
        return self._recorder.requests(instance)

    def open_connections(self) -> int:
        """How many client connections are open (keep-alive ones too); a closed one is gone
        once its close has been sent."""
        hub = self._hub
        return self._call(self._on_loop(lambda: len(hub.connections)))

    def wait_for_in_flight(self, instance: str, n: int, timeout: float = 5.0) -> bool:
        """Block until ``instance`` has at least ``n`` requests in flight; False on timeout."""
        recorder = self._recorder
        return recorder.wait(lambda: recorder.in_flight(instance) >= n, timeout)

    def wait_for_idle(self, instance: str | None = None, timeout: float = 5.0) -> bool:
        """Block until no request (of ``instance``, or of any) is in flight; False on timeout."""
        recorder = self._recorder
        return recorder.wait(lambda: recorder.in_flight(instance) == 0, timeout)

    # -- loop side ----------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the fake provider is not running; call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT)

    @staticmethod
    async def _on_loop(fn: Callable[[], T]) -> T:
        return fn()

    async def _listen(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        # reuse_address lets restore() bind the same port while old sockets sit in TIME_WAIT.
        # A deep backlog: a burst of new connections must not wait on SYN retransmits.
        self._server = await loop.create_server(
            self._hub.protocol, self.host, self._port, reuse_address=True, backlog=4096
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = self._hub.abort_all()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        # Let the aborted transports run their connection_lost callbacks before the loop stops.
        await asyncio.sleep(0)
