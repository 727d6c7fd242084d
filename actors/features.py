"""Request features only some providers honour, and the rule that none is dropped silently.

Most features are translated by each provider (tools, ``response_format`` as a forced tool on
Anthropic, ``user`` as ``metadata.user_id``...). The ones below have no equivalent on some
providers: a request that asks for one is not given to an instance that cannot honour it
(capability-aware routing), and when no instance of the route can, it is refused with a
``BadRequestError`` naming the feature. Tier defaults (a tier's ``thinking_config``) are
configuration, not requests, and are not routed on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from actors.errors import BadRequestError

__all__ = ["NATIVE", "check_request", "incapable", "requested"]

_ANTHROPIC = frozenset({"anthropic", "simulated"})
_OPENAI = frozenset({"openai", "openai_compatible", "simulated"})

#: feature -> the provider kinds (``model_type``) that honour it; the simulated stand-in honours all.
NATIVE: dict[str, frozenset[str]] = {
    "thinking": _ANTHROPIC,
    "top_k": _ANTHROPIC,
    "logprobs": _OPENAI,
    "top_logprobs": _OPENAI,
    "reasoning_effort": _OPENAI,
}


def requested(params: Mapping[str, Any]) -> list[str]:
    """The routed features ``params`` ask for (empty for almost every request)."""
    out = []
    if "thinking" in params:
        thinking = params["thinking"]
        if thinking and not (isinstance(thinking, Mapping) and thinking.get("type") == "disabled"):
            out.append("thinking")
    if params.get("top_k") is not None:
        out.append("top_k")
    if params.get("logprobs"):
        out.append("logprobs")
    if params.get("top_logprobs") is not None:
        out.append("top_logprobs")
    if params.get("reasoning_effort") is not None:
        out.append("reasoning_effort")
    return out


def check_request(params: Mapping[str, Any]) -> None:
    """Refuse what no route can honour, whatever its instances: ``n`` above 1."""
    n = params.get("n")
    if n is not None and n != 1:
        raise BadRequestError(
            f"n={n!r}: one request answers with one choice here (each may fall back to a different "
            "instance); send n separate requests instead"
        )


def incapable(members: Iterable[Any], features: list[str], label: str) -> set[str]:
    """The names of ``members`` that cannot honour every feature; ``BadRequestError`` if none can.

    ``members`` have ``name`` and ``gate.client.kind`` (the provider's ``model_type``).
    """
    out: set[str] = set()
    kinds: dict[str, str] = {}
    for member in members:
        kind = getattr(member.gate.client, "kind", "")
        kinds[member.name] = kind
        if any(kind not in NATIVE[f] for f in features):
            out.add(member.name)
    if kinds and len(out) == len(kinds):
        honour = {f: sorted(k for k in NATIVE[f] if k != "simulated") for f in features}
        which = "; ".join(f"{f} needs {' or '.join(kinds_)} instances" for f, kinds_ in honour.items())
        found = ", ".join(f"{n} ({k})" for n, k in sorted(kinds.items()))
        raise BadRequestError(
            f"{label}: no instance on this route can honour {', '.join(features)} ({which}; the route has "
            f"{found}); drop the parameter or use a model whose route has such an instance"
        )
    return out
