"""Rotation strategies: distribution, fairness under drop-out, unavailability, and the registry."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from actors.rotation import (
    STRATEGIES,
    Ewma,
    LeastBusy,
    LeastRecentlyUsed,
    LowestLatency,
    RandomChoice,
    RoundRobin,
    Weighted,
    make_strategy,
)

MEMBERS = ("a", "b", "c", "d")


class FakeView:
    """Per-instance facts held in dicts; tests change them between picks."""

    def __init__(self, members=MEMBERS, **facts):
        self.down: set[str] = set(facts.get("down", ()))
        self.busy: dict[str, int] = dict(facts.get("busy", {}))
        self.lat: dict[str, float] = dict(facts.get("lat", {}))
        self.used: dict[str, float] = dict(facts.get("used", {}))
        self.weights: dict[str, float] = dict(facts.get("weights", {}))

    def available(self, name):
        return name not in self.down

    def in_flight(self, name):
        return self.busy.get(name, 0)

    def latency(self, name):
        return self.lat.get(name)

    def last_used(self, name):
        return self.used.get(name)

    def weight(self, name):
        return self.weights.get(name, 1.0)


def picks(strategy, view, n, members=MEMBERS):
    return [strategy.choose(members, view) for _ in range(n)]


# -- every strategy -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_none_when_nothing_is_available(name):
    s = make_strategy(name)
    assert s.choose(MEMBERS, FakeView(down=MEMBERS)) is None
    assert s.choose((), FakeView()) is None


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_unavailable_is_honoured(name):
    """A member this request tried is unavailable in its view: the one way to exclude it."""
    s = make_strategy(name)
    facts = dict(busy={"c": 1}, lat={"a": 0.1, "c": 0.5, "d": 0.9}, used={"a": 1.0, "c": 2.0, "d": 3.0})
    view = FakeView(down={"a", "b", "d"}, **facts)
    for _ in range(50):
        assert s.choose(MEMBERS, view) == "c"
    got = set(picks(s, FakeView(down={"a", "b"}, **facts), 50))
    assert got <= {"c", "d"}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_single_available_member(name):
    s = make_strategy(name)
    assert picks(s, FakeView(down={"a", "b", "d"}), 5) == ["c"] * 5


# -- round robin --------------------------------------------------------------------------------


def test_round_robin_cycles_in_member_order():
    assert picks(RoundRobin(), FakeView(), 8) == list("abcdabcd")


def test_round_robin_fair_when_one_drops_out():
    rr = RoundRobin()
    view = FakeView(down={"c"})
    got = picks(rr, view, 300)
    assert Counter(got) == {"a": 100, "b": 100, "d": 100}
    assert got[:6] == list("abdabd")  # the others keep their order


def test_round_robin_member_rejoins_at_its_place():
    rr = RoundRobin()
    view = FakeView(down={"c"})
    assert picks(rr, view, 4) == list("abda")
    view.down.clear()
    assert picks(rr, view, 8) == list("bcdabcda")


def test_round_robin_skipping_does_not_give_the_next_one_extra_turns():
    # A naive "counter % len(available)" would hand out a run of turns unevenly here.
    rr = RoundRobin()
    view = FakeView()
    counts = Counter()
    for i in range(400):
        view.down = {"b"} if (i // 10) % 2 else set()
        counts[rr.choose(MEMBERS, view)] += 1
    assert max(counts[m] for m in "acd") - min(counts[m] for m in "acd") <= 1


def test_round_robin_exclusion_for_one_request_does_not_skew_the_cycle():
    rr = RoundRobin()
    view = FakeView()
    assert rr.choose(MEMBERS, view) == "a"
    assert rr.choose(MEMBERS, FakeView(down={"b"})) == "c"  # a retry avoiding b
    assert picks(rr, view, 4) == list("dabc")


def test_round_robin_survives_a_shorter_member_list():
    rr = RoundRobin()
    view = FakeView()
    picks(rr, view, 3)
    assert rr.choose(("a", "b"), view) in {"a", "b"}


# -- least recently used ------------------------------------------------------------------------


def test_lru_never_used_first_then_oldest():
    view = FakeView(used={"a": 5.0, "c": 1.0})
    lru = LeastRecentlyUsed()
    assert lru.choose(MEMBERS, view) == "b"  # never used; ties by member order
    view.used["b"] = 9.0
    assert lru.choose(MEMBERS, view) == "d"
    view.used["d"] = 10.0
    assert lru.choose(MEMBERS, view) == "c"


def test_lru_ties_by_member_order_and_rotates_when_the_view_updates():
    view = FakeView(used={m: 1.0 for m in MEMBERS})
    lru = LeastRecentlyUsed()
    got = []
    for t in range(2, 10):
        name = lru.choose(MEMBERS, view)
        view.used[name] = float(t)  # the lease time
        got.append(name)
    assert got == list("abcdabcd")


# -- weighted -----------------------------------------------------------------------------------


def test_weighted_smooth_sequence_matches_nginx():
    w = Weighted({"a": 5, "b": 1, "c": 1})
    assert picks(w, FakeView(), 7, members=("a", "b", "c")) == list("aabacaa")


@pytest.mark.parametrize(
    "weights",
    [
        {"a": 1, "b": 1, "c": 1, "d": 1},
        {"a": 3, "b": 2, "c": 1, "d": 4},
        {"a": 7, "b": 1, "c": 1, "d": 1},
        {"a": 10, "b": 20, "c": 30, "d": 40},
    ],
)
def test_weighted_exact_proportions_over_every_cycle(weights):
    w = Weighted(weights)
    total = int(sum(weights.values()))
    view = FakeView()
    for _ in range(3):
        assert Counter(picks(w, view, total)) == weights


def test_weighted_reads_the_view_when_no_weights_given():
    w = make_strategy("weighted")
    view = FakeView(weights={"a": 2, "b": 1, "c": 1, "d": 0})
    got = Counter(picks(w, view, 40))
    assert got == {"a": 20, "b": 10, "c": 10}  # weight 0: never chosen


def test_weighted_unavailable_member_does_not_distort_the_others():
    weights = {"a": 3, "b": 2, "c": 1, "d": 4}
    w = Weighted(weights)
    view = FakeView(down={"d"})
    for _ in range(4):
        assert Counter(picks(w, view, 6)) == {"a": 3, "b": 2, "c": 1}


def test_weighted_member_returns_and_proportions_recover():
    weights = {"a": 3, "b": 1}
    w = Weighted(weights)
    view = FakeView(members=("a", "b"))
    members = ("a", "b")
    picks(w, view, 3, members=members)
    view.down = {"a"}
    assert picks(w, view, 5, members=members) == ["b"] * 5
    view.down = set()
    got = Counter(picks(w, view, 400, members=members))
    assert abs(got["a"] - 300) <= 4 and abs(got["b"] - 100) <= 4


def test_weighted_interleaves():
    w = Weighted({"a": 1, "b": 1})
    assert picks(w, FakeView(), 6, members=("a", "b")) == list("ababab")


# -- random -------------------------------------------------------------------------------------


def test_random_is_uniform_among_available_and_reproducible():
    view = FakeView(down={"b"})
    one = RandomChoice(random.Random(3))
    got = picks(one, view, 3000)
    assert got == picks(RandomChoice(random.Random(3)), view, 3000)
    counts = Counter(got)
    assert set(counts) == {"a", "c", "d"}
    for m in "acd":
        assert 900 <= counts[m] <= 1100


def test_make_strategy_passes_the_rng():
    s = make_strategy("random", rng=random.Random(1))
    assert s.choose(MEMBERS, FakeView()) == make_strategy("random", rng=random.Random(1)).choose(
        MEMBERS, FakeView()
    )


# -- least busy ---------------------------------------------------------------------------------


def test_least_busy_picks_fewest_in_flight():
    view = FakeView(busy={"a": 3, "b": 1, "c": 2, "d": 1})
    lb = LeastBusy()
    assert lb.choose(MEMBERS, view) == "b"
    assert lb.choose(MEMBERS, view) == "d"  # a tie with b: round robin moves on
    assert lb.choose(MEMBERS, view) == "b"


def test_least_busy_spreads_ties_round_robin():
    lb = LeastBusy()
    assert picks(lb, FakeView(), 8) == list("abcdabcd")


def test_least_busy_fills_evenly_when_counts_follow_leases():
    lb = LeastBusy()
    view = FakeView()
    for _ in range(12):
        name = lb.choose(MEMBERS, view)
        view.busy[name] = view.busy.get(name, 0) + 1
    assert view.busy == {m: 3 for m in MEMBERS}


# -- lowest latency -----------------------------------------------------------------------------


def test_lowest_latency_measures_unknown_first_then_lowest():
    view = FakeView(lat={"a": 0.5, "c": 0.2})
    ll = LowestLatency()
    assert ll.choose(MEMBERS, view) == "b"
    view.lat["b"] = 0.9
    assert ll.choose(MEMBERS, view) == "d"
    view.lat["d"] = 0.3
    assert ll.choose(MEMBERS, view) == "c"
    view.down = {"c"}
    assert ll.choose(MEMBERS, view) == "d"


def test_lowest_latency_ties_by_member_order():
    view = FakeView(lat={m: 0.25 for m in MEMBERS})
    assert picks(LowestLatency(), view, 3) == ["a"] * 3


def test_lowest_latency_re_measures_the_member_used_longest_ago_now_and_then():
    view = FakeView(
        lat={"a": 0.01, "b": 0.5, "c": 0.5, "d": 0.5}, used={"a": 9.0, "b": 1.0, "c": 2.0, "d": 3.0}
    )
    ll = LowestLatency(explore_every=5)
    got = [ll.choose(MEMBERS, view) for _ in range(10)]
    assert got == ["a"] * 4 + ["b"] + ["a"] * 4 + ["b"]


# -- Ewma ---------------------------------------------------------------------------------------


def test_ewma():
    e = Ewma(alpha=0.5)
    assert e.value is None
    assert e.update(1.0) == 1.0  # the first sample is taken as is
    assert e.update(3.0) == 2.0
    assert e.update(2.0) == 2.0
    assert Ewma().alpha == 0.3
    with pytest.raises(ValueError):
        Ewma(0.0)
    with pytest.raises(ValueError):
        Ewma(1.5)


# -- registry -----------------------------------------------------------------------------------


def test_registry_names():
    assert set(STRATEGIES) == {
        "round_robin",
        "least_recently_used",
        "weighted",
        "random",
        "least_busy",
        "lowest_latency",
    }
    for name, cls in STRATEGIES.items():
        s = make_strategy(name)
        assert isinstance(s, cls) and s.name == name


def test_each_make_returns_a_fresh_state():
    one, two = make_strategy("round_robin"), make_strategy("round_robin")
    assert one.choose(MEMBERS, FakeView()) == "a"
    assert two.choose(MEMBERS, FakeView()) == "a"


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        make_strategy("round_robbin")
    message = str(info.value)
    assert "round_robbin" in message
    for name in STRATEGIES:
        assert name in message
