"""SessionRing: sticky, spread, bounded, stable."""

from __future__ import annotations

import collections
import os
import subprocess
import sys

from actors.resilience.affinity import SessionRing

MEMBERS = [f"m{i}" for i in range(5)]


def always(_name):
    return True


def idle(_name):
    return 0


def test_a_session_sticks_to_one_member():
    ring = SessionRing(MEMBERS)
    for key in ("alice", "bob", "conversation-17"):
        first = ring.choose(key, always, idle)
        assert all(ring.choose(key, always, idle) == first for _ in range(10))


def test_sessions_spread_over_members():
    ring = SessionRing(MEMBERS)
    counts = collections.Counter(ring.choose(f"s{i}", always, idle) for i in range(5000))
    assert set(counts) == set(MEMBERS)
    assert min(counts.values()) > 5000 / 5 * 0.6


def test_unavailable_member_moves_its_sessions_to_the_next_on_the_ring_only():
    ring = SessionRing(MEMBERS)
    before = {f"s{i}": ring.choose(f"s{i}", always, idle) for i in range(500)}
    down = "m2"
    after = {k: ring.choose(k, lambda n: n != down, idle) for k in before}
    for key, member in before.items():
        if member != down:
            assert after[key] == member  # nobody else moves
        else:
            assert after[key] == ring.order(key)[1]


def test_over_its_bound_a_member_hands_the_session_on():
    ring = SessionRing(MEMBERS, bound=1.25)
    key = "hot"
    home = ring.choose(key, always, idle)
    loads = dict.fromkeys(MEMBERS, 0)
    loads[home] = 2  # total 2 -> cap ceil(1.25 * 3 / 5) = 1: the home member is over it
    chosen = ring.choose(key, always, loads.__getitem__)
    assert chosen == ring.order(key)[1]
    loads[home] = 0
    assert ring.choose(key, always, loads.__getitem__) == home


def test_the_same_key_maps_the_same_in_every_process():
    code = (
        f"from actors.resilience.affinity import SessionRing; print(SessionRing({MEMBERS!r}).order('alice'))"
    )
    seen = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        seen.add(out.stdout.strip())
    assert seen == {str(SessionRing(MEMBERS).order("alice"))}


def test_nothing_available_is_none():
    assert SessionRing(MEMBERS).choose("x", lambda n: False, idle) is None
    assert SessionRing([]).choose("x", always, idle) is None
