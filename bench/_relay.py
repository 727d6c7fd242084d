"""A byte relay: what one more process on the path costs, as a floor for the daemon's figures.

    python bench/_relay.py HOST PORT    # prints the port it listens on, then relays to HOST:PORT

Each connection it accepts gets one to HOST:PORT, and bytes go both ways as they arrive (uvloop
when installed, no parsing, no buffering). Measured beside the daemon, it shows how much of the
time the daemon adds is the extra hop itself (a wake-up, two socket writes) and how much is the
daemon's own work.
"""

from __future__ import annotations

import asyncio
import sys

try:
    import uvloop
except ImportError:  # pragma: no cover - the daemon extra is not installed
    uvloop = None


class _Pipe(asyncio.Protocol):
    """One side of a relayed connection; what it reads goes out on ``peer``."""

    def __init__(self, peer: _Pipe | None = None) -> None:
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []  # what the client sent before the upstream connection was up

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self.peer.transport is None:
            self.early.append(data)
        else:
            self.peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class _Front(_Pipe):
    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.target = (host, port)
        self.opening: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.opening = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, back = await loop.create_connection(lambda: _Pipe(self), *self.target)
        except OSError:
            assert self.transport is not None
            self.transport.close()
            return
        self.peer = back
        assert back.transport is not None
        for data in self.early:
            back.transport.write(data)
        self.early = []


async def _serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: _Front(host, port), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    run = uvloop.run if uvloop is not None else asyncio.run
    run(_serve(sys.argv[1], int(sys.argv[2])))
