"""Pacing from providers' rate-limit headers: slow down before the 429, not after it.

A successful answer often says how much of the instance's quota is left:

- OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, resets as durations
  (``30s``, ``1m20s``, ``120ms``);
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``,
  resets as RFC 3339 timestamps.

``parse_rate_limits`` reads them; ``decide`` turns them into what the instance should do:

- nothing left of some limit: **park** it until that limit resets (the latest such reset), as a
  429 would, but without sending the request that gets the 429;
- little left (under ``LOW_SHARE`` of the limit, or, with no limit header, fewer than
  ``LOW_CALLS`` calls' worth): **pace** it, one call every ``reset / calls left`` seconds, so
  what is left lasts until the reset and the other instances take a larger share meanwhile;
- otherwise nothing.

Calls left are ``remaining`` for the request limit and ``remaining / tokens of this call`` for a
token limit; the tightest limit decides.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from actors.parking import MAX_RETRY_AFTER, parse_duration

__all__ = [
    "LOW_CALLS",
    "LOW_SHARE",
    "Limit",
    "PaceDecision",
    "RateLimits",
    "decide",
    "parse_rate_limits",
    "rate_limits_from_raw",
]

#: Under this share of its limit an instance is paced.
LOW_SHARE = 0.1
#: With no limit header, under this many calls' worth left an instance is paced.
LOW_CALLS = 10

# (dimension, prefix of the header names, the unit's header spelling)
_OPENAI = (("requests", "requests"), ("tokens", "tokens"))
_ANTHROPIC = (
    ("requests", "requests"),
    ("tokens", "tokens"),
    ("input_tokens", "input-tokens"),
    ("output_tokens", "output-tokens"),
)


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit as the server reported it; any part may be missing."""

    name: str
    remaining: float | None = None
    limit: float | None = None
    reset: float | None = None  # seconds from the response until the limit is whole again

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Every limit one response reported."""

    limits: tuple[Limit, ...]

    def get(self, name: str) -> Limit | None:
        for limit in self.limits:
            if limit.name == name:
                return limit
        return None


@dataclass(frozen=True, slots=True)
class PaceDecision:
    """Park the instance for ``park`` seconds, or keep ``gap`` seconds between its calls."""

    park: float | None = None
    gap: float | None = None
    reason: str = ""


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _reset(text: str | None, now_wall: float) -> float | None:
    if text is None:
        return None
    seconds = parse_duration(text)
    if seconds is None:
        try:
            when = datetime.fromisoformat(text.strip().upper())
        except (ValueError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, when.timestamp() - now_wall)
    if not 0 <= seconds < math.inf:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def parse_rate_limits(headers: Mapping[str, str], now_wall: float | None = None) -> RateLimits | None:
    """The limits a response's headers report, or None when it reports none.

    ``headers`` is looked up by lower-case name (httpx's ``Headers`` is case-insensitive);
    ``now_wall`` is the wall-clock time RFC 3339 resets are measured from.
    """
    get = headers.get
    found: list[Limit] = []
    wall: float | None = now_wall
    for families, fmt in (
        (_OPENAI, "x-ratelimit-{part}-{unit}"),
        (_ANTHROPIC, "anthropic-ratelimit-{unit}-{part}"),
    ):
        for name, unit in families:
            remaining = get(fmt.format(part="remaining", unit=unit))
            reset = get(fmt.format(part="reset", unit=unit))
            if remaining is None and reset is None:
                continue
            if wall is None:
                wall = time.time()
            found.append(
                Limit(
                    name,
                    _number(remaining),
                    _number(get(fmt.format(part="limit", unit=unit))),
                    _reset(reset, wall),
                )
            )
    return RateLimits(tuple(found)) if found else None


_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")


def rate_limits_from_raw(raw: Iterable[tuple[bytes, bytes]]) -> RateLimits | None:
    """``parse_rate_limits`` over raw header pairs (httpx's ``Headers.raw``), for ``decide``.

    Every answer passes here, so it looks at each header once, decodes only the few that
    matter, and parses resets (the slow part) only when some limit is low or spent: None when
    ``decide`` would do nothing anyway, as for most answers.
    """
    picked: dict[str, str] | None = None
    for key, value in raw:
        name = key.lower()
        if name.startswith(_PREFIXES):
            if picked is None:
                picked = {}
            picked[name.decode("latin-1")] = value.decode("latin-1").strip()
    if not picked or not _maybe_low(picked):
        return None
    return parse_rate_limits(picked)


def _maybe_low(picked: Mapping[str, str]) -> bool:
    """Whether some reported limit is spent, low, or of unknown size (``decide`` must look)."""
    for name, value in picked.items():
        if "-remaining" not in name:
            continue
        remaining = _number(value)
        if remaining is None:
            continue
        limit = _number(picked.get(name.replace("-remaining", "-limit")))
        if limit is None or remaining < LOW_SHARE * limit or remaining <= 0:
            return True
    return False


def decide(limits: RateLimits | None, tokens: int = 0) -> PaceDecision | None:
    """What the instance that sent ``limits`` should do; ``tokens`` is what the call used."""
    if limits is None:
        return None
    park: float | None = None
    parked_by = ""
    gap: float | None = None
    paced_by = ""
    for limit in limits.limits:
        if limit.reset is None or limit.remaining is None:
            continue  # without both we cannot say how long to wait
        if limit.exhausted:
            if park is None or limit.reset > park:
                park, parked_by = limit.reset, limit.name
            continue
        per_call = 1.0 if limit.name == "requests" else float(max(tokens, 1))
        calls_left = limit.remaining / per_call
        if limit.limit is not None and limit.limit > 0:
            low = limit.remaining < LOW_SHARE * limit.limit
        else:
            low = calls_left < LOW_CALLS
        if not low:
            continue
        if calls_left < 1:  # not one more call's worth: as good as nothing left
            if park is None or limit.reset > park:
                park, parked_by = limit.reset, limit.name
            continue
        spacing = limit.reset / calls_left
        if gap is None or spacing > gap:
            gap, paced_by = spacing, limit.name
    if park is not None:
        return PaceDecision(park=park, reason=f"paced: no {parked_by.replace('_', ' ')} left until the reset")
    if gap is not None and gap > 0:
        return PaceDecision(gap=gap, reason=f"paced: little {paced_by.replace('_', ' ')} left")
    return None
