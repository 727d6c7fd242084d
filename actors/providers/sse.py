"""Server-sent events over httpx line iterators, sync and async, sharing one line decoder."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

__all__ = ["SSEDecoder", "SSEEvent", "aiter_sse", "iter_sse"]


class SSEEvent:
    """One event: its ``event`` name (``"message"`` when unnamed) and its ``data`` text."""

    __slots__ = ("data", "event")

    def __init__(self, event: str, data: str) -> None:
        self.event = event
        self.data = data

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data!r})"


class SSEDecoder:
    """Turns lines (without their line endings) into events; ``id`` and ``retry`` are ignored."""

    __slots__ = ("_data", "_event")

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> SSEEvent | None:
        """Take one line; return the event it completes, if any."""
        if not line:
            return self.flush()
        if line[0] == ":":  # a comment, e.g. a keep-alive
            return None
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def flush(self) -> SSEEvent | None:
        """The pending event, if any (at a blank line)."""
        if not self._data:
            self._event = None
            return None
        event = SSEEvent(self._event or "message", "\n".join(self._data))
        self._event = None
        self._data = []
        return event

    def tail(self) -> tuple[SSEEvent, ...]:
        """At end of input: the last event if its blank line never came (read leniently)."""
        event = self.flush()
        return () if event is None else (event,)


def iter_sse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Events from a sync line iterator such as ``httpx.Response.iter_lines()``."""
    decoder = SSEDecoder()
    for line in lines:
        if (event := decoder.feed(line)) is not None:
            yield event
    yield from decoder.tail()


async def aiter_sse(lines: AsyncIterable[str]) -> AsyncIterator[SSEEvent]:
    """Events from an async line iterator such as ``httpx.Response.aiter_lines()``."""
    decoder = SSEDecoder()
    async for line in lines:
        if (event := decoder.feed(line)) is not None:
            yield event
    for event in decoder.tail():
        yield event
