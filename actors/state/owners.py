"""The owners of shared limits (an instance ``i:NAME``, a tier ``t:GROUP.TIER``): their keys, the
script calls that admit and release a lease there, and what an admission decided.

Every key of one owner carries one hash tag, so each owner sits in one Redis Cluster slot and
every call touches one slot (see ``actors.state.scripts``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from actors.state.calls import Call

__all__ = ["WINDOW_MS", "Admission", "Owner", "decided"]

#: The rolling window of ``rpm_limit`` and ``tpm_limit``, in milliseconds.
WINDOW_MS = 60_000


class Admission(NamedTuple):
    """What ``admit`` decided: ``code`` 1 admitted, 0 full, 2 disabled, 3 parked.

    ``wait`` is the seconds until a permit may free (full) or the park ends (parked), measured
    on the store's clock from the decision; ``owner`` is the index of the owner that refused.
    """

    code: int
    wait: float
    owner: int
    detail: str


def _tag(name: str) -> str:
    # Braces would end the hash tag early and scatter one owner's keys over several slots.
    return name.replace("{", "(").replace("}", ")")


class Owner:
    """One instance (``i:NAME``) or tier (``t:GROUP.TIER``): its keys and its shared limits."""

    __slots__ = (
        "admit_keys",
        "check",
        "concurrency",
        "dis",
        "health",
        "label",
        "park",
        "probe",
        "release_keys",
        "rpm",
        "tpm",
    )

    def __init__(
        self,
        base: str,
        label: str,
        concurrency: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        health: bool = False,
    ) -> None:
        root = f"{base}:{{{_tag(label)}}}"
        cc, rpm_key, tpm_key, tpmv = f"{root}:cc", f"{root}:rpm", f"{root}:tpm", f"{root}:tpmv"
        self.park, self.dis, self.probe = f"{root}:park", f"{root}:dis", f"{root}:probe"
        self.check = f"{root}:check"  # who sends the periodic health probe (``CHECK``)
        self.admit_keys = (cc, rpm_key, tpm_key, tpmv, self.park, self.dis)
        self.release_keys = (cc, rpm_key, tpm_key, tpmv)
        self.label = label
        self.concurrency = concurrency or 0
        self.rpm = rpm or 0
        self.tpm = tpm or 0
        self.health = health  # an instance: parking and disables are checked at admission

    def admit_call(self, lease_id: str, ttl_ms: int, estimate: int) -> Call:
        """``ADMIT`` of ``lease_id`` here."""
        est = estimate if self.tpm else 0
        args = (lease_id, ttl_ms, WINDOW_MS, self.concurrency, self.rpm, self.tpm, est, int(self.health))
        return Call("ADMIT", self.admit_keys, args)

    def release_call(self, lease_id: str, channel: str, tokens: int | None, undo: bool) -> Call | None:
        """``RELEASE`` of ``lease_id`` here (``undo``: an admission another owner refused), or
        None when it would change nothing."""
        counted = tokens if (self.tpm and tokens is not None) else -1
        if not (self.concurrency or counted >= 0 or undo):
            return None
        args = (lease_id, channel, WINDOW_MS, self.concurrency, counted, self.label, int(undo))
        return Call("RELEASE", self.release_keys, args)

    @property
    def limited(self) -> bool:
        return bool(self.concurrency or self.rpm or self.tpm or self.health)

    def __repr__(self) -> str:
        return f"Owner({self.label!r}, concurrency={self.concurrency}, rpm={self.rpm}, tpm={self.tpm})"


def decided(replies: list[Any]) -> tuple[Admission, list[int]]:
    """The first refusal in owner order (or the admission), and the owners to undo then: those
    that admitted a lease another owner refused."""
    refusal: Admission | None = None
    admitted = []
    for o, (code, at, now, detail) in enumerate(replies):
        if int(code) == 1:
            admitted.append(o)
        elif refusal is None:
            why = detail.decode() if isinstance(detail, bytes) else str(detail)
            wait = max(0, int(at) - int(now)) / 1000.0 if at else 0.0
            refusal = Admission(int(code), wait, o, why)
    if refusal is None:
        return Admission(1, 0.0, -1, ""), []
    return refusal, admitted
