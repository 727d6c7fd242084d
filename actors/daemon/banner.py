"""What ``llm-actors serve`` tells a person once it listens: where, what it serves, what is off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.runtime import Runtime

__all__ = ["banner", "disabled_instances", "unserved_wrappers"]

#: Names listed per kind before the list is cut short.
SHOWN = 8


def disabled_instances(runtime: Runtime) -> dict[str, str]:
    """``{instance: why}`` for every instance that cannot answer for a reason of configuration."""
    table = runtime.table
    if table is None:  # not started
        return {}
    return {name: gate.disabled_reason for name, gate in table.gates.items() if gate.disabled_reason}


def unserved_wrappers(runtime: Runtime, disabled: dict[str, str]) -> list[str]:
    """Wrappers none of whose instances is enabled: every request to them would fail."""
    out = []
    for name in runtime.factory.list_wrappers():
        wrapper = runtime.factory.get_wrapper(name)
        members = {m.name for t in wrapper.route.targets for m in t.members} if wrapper is not None else set()
        if members and members <= disabled.keys():
            out.append(name)
    return out


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > SHOWN else "") if names else "none"


def _state_line(runtime: Runtime) -> str:
    """Where the limits live, when not in this process alone: a typo in ``--state`` shows here."""
    status = runtime.state_status()
    if status.get("backend") != "redis":
        return ""
    if not status.get("degraded"):
        return f"  state          {status.get('url')} (limits shared with every process using it)"
    meanwhile = (
        "requests are refused (on_outage: closed)"
        if status.get("on_outage") == "closed"
        else "each process enforces its share of every limit (on_outage: split)"
    )
    return f"  state          {status.get('url')} UNAVAILABLE ({status.get('degraded_reason')}): {meanwhile} until it answers"


def banner(url: str, runtime: Runtime, *, config_dir: str, version: str, grace: float, auth: bool) -> str:
    """The lines to print under the URL (the URL itself goes alone on the first line)."""
    config: Any = runtime.config
    how = "simulated providers" if getattr(runtime, "simulate", False) else "real providers"
    lines = [
        f"llm-actors {version} serving {config_dir} ({how}{', API key required' if auth else ''})",
        f"  OpenAI API     {url}/v1   (POST /chat/completions, /responses, /embeddings; GET /models)",
        f"  Anthropic API  {url}      (POST /v1/messages, /v1/messages/count_tokens)",
        f"  wrappers       {_names(list(config.wrappers))}",
        f"  pools          {_names(list(config.pools))}",
        f"  groups         {_names(list(config.groups))} (and group.tier)",
        f"  operations     {url}/healthz  /readyz  /v1/stats  /metrics",
    ]
    state = _state_line(runtime)
    if state:
        lines.append(state)
    disabled = disabled_instances(runtime)
    if disabled:
        total = len(runtime.config.models)
        lines.append(f"WARNING: {len(disabled)} of {total} instances are disabled and will answer nothing:")
        lines += [f"  {name}: {why}" for name, why in disabled.items()]
        dead = unserved_wrappers(runtime, disabled)
        if dead:
            lines.append(
                f"  so these wrappers have no instance at all (503 on every request): {_names(dead)}"
            )
        lines.append(
            "  Export the keys the model files name and start it again (a reload sees only the "
            "environment it started with), or try it with --simulate (no keys needed)."
        )
    lines.append(f"Stop with Ctrl-C or SIGTERM: requests in flight get up to {grace:g} s to finish.")
    return "\n".join(lines)
