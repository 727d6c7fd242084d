"""Session affinity: consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018).

A session key maps to a point on a ring holding ``REPLICAS`` points per member; the session's
instance is the first member clockwise from it that is available and under its load bound,
``ceil(c × (load of all + 1) / members)``. So a conversation stays on one instance (its prompt
cache keeps hitting) and moves only when that instance is unavailable or over its bound; then
it goes to the next member on the ring, the same one every time, and only the sessions of a
member that left move when membership changes. Hashes are stable across processes (BLAKE2b,
not ``hash()``), so every process of a deployment sends a session to the same instance.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Iterator, Sequence

__all__ = ["BOUND", "REPLICAS", "SessionRing"]

#: Points per member on the ring: enough that members get near-equal shares of sessions.
REPLICAS = 64
#: The load bound's slack ``c``: a member takes at most 25 % more than an equal share.
BOUND = 1.25


def _point(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"
    )


class SessionRing:
    """The ring over a fixed member list; ``choose`` picks a session's member."""

    __slots__ = ("_owners", "_points", "bound", "members")

    def __init__(self, members: Sequence[str], *, replicas: int = REPLICAS, bound: float = BOUND) -> None:
        if bound < 1:
            raise ValueError(f"bound must be at least 1, got {bound!r}")
        self.members = tuple(members)
        self.bound = float(bound)
        ring = sorted((_point(f"{name}#{i}"), name) for name in self.members for i in range(replicas))
        self._points = [p for p, _ in ring]
        self._owners = [name for _, name in ring]

    def _walk(self, key: str) -> Iterator[str]:
        if not self._points:
            return
        start = bisect.bisect(self._points, _point(key))
        owners = self._owners
        n = len(owners)
        seen: set[str] = set()
        for k in range(n):
            name = owners[(start + k) % n]
            if name not in seen:
                seen.add(name)
                yield name
                if len(seen) == len(self.members):
                    return

    def order(self, key: str) -> list[str]:
        """Every member once, in the order a session with ``key`` tries them."""
        return list(self._walk(key))

    def choose(self, key: str, available: Callable[[str], bool], load: Callable[[str], int]) -> str | None:
        """The session's member: the first in ``order(key)`` available and under its bound."""
        members = self.members
        if not members:
            return None
        total = sum(load(name) for name in members)
        cap = math.ceil(self.bound * (total + 1) / len(members))
        for name in self._walk(key):
            if load(name) < cap and available(name):
                return name
        return None
