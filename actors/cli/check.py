"""Validate a configuration directory and print its models, groups, pools and wrappers.

Exit status 0 when the configuration is valid (models disabled for a missing key are fine and
are listed with the reason), 1 when it is not, with every problem on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from actors.config import ConfigError, LLMConfig, load_config

__all__ = ["add_arguments", "render", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config_dir",
        nargs="?",
        default=None,
        metavar="CONFIG_DIR",
        help="the config directory (containing llms/) or the llms directory itself (default: config)",
    )
    # Every other command names its configuration with --config: check takes it too.
    parser.add_argument("--config", default=None, metavar="DIR", help="the same as CONFIG_DIR")


def run(args: argparse.Namespace) -> int:
    if args.config is not None and args.config_dir is not None and args.config != args.config_dir:
        sys.stderr.write(
            f"error: two configurations given ({args.config_dir} and --config {args.config}); give one\n"
        )
        return 2
    try:
        config = load_config(args.config or args.config_dir or "config")
    except ConfigError as exc:
        _print_errors(exc, sys.stderr)
        return 1
    sys.stdout.write(render(config))
    return 0


def _print_errors(exc: ConfigError, out: TextIO) -> None:
    count = len(exc.issues)
    out.write(f"error: the configuration is invalid ({count} problem{'s' if count != 1 else ''}):\n")
    for issue in exc.issues:
        out.write(f"  {issue}\n")


def render(config: LLMConfig) -> str:
    """The topology as plain-text tables."""
    parts = [_models(config), _groups(config), _pools(config), _wrappers(config), _summary(config)]
    return "\n".join(p for p in parts if p)


# ------------------------------------------------------------------------------- sections


def _models(config: LLMConfig) -> str:
    rows = [
        (
            name,
            m.provider,
            m.model_type,
            m.model_name,
            "enabled" if m.enabled else f"disabled: {m.disabled_reason}",
        )
        for name, m in config.models.items()
    ]
    return _section(
        f"Models ({len(rows)})", _table(("MODEL", "PROVIDER", "TYPE", "MODEL NAME", "STATE"), rows)
    )


def _groups(config: LLMConfig) -> str:
    blocks = []
    for name, group in config.groups.items():
        fb = group.effective_fallback
        cb = fb.circuit_breaker
        lines = [f"{name}" + (f" - {group.description}" if group.description else "")]
        lines.append(
            f"  strategy {fb.strategy.value}, max_attempts {fb.max_attempts}, retry_delay {_num(fb.retry_delay)}s, "
            f"breaker {cb.failure_threshold} failures / {_num(cb.recovery_time)}s / {cb.half_open_requests} half-open"
        )
        lines.append(f"  fallback_groups: {', '.join(fb.fallback_groups) or '(none)'}")
        rows = [
            (
                tier_name,
                str(t.priority),
                ", ".join(t.models),
                _opt(t.concurrency_limit),
                _opt(t.rpm_limit),
                _opt(t.timeout, "s"),
                str(t.max_retries),
                _num(t.temperature),
                str(t.max_tokens),
            )
            for tier_name, t in group.tiers_by_priority()
        ]
        table = _table(
            ("TIER", "PRIO", "MODELS", "CONC", "RPM", "TIMEOUT", "RETRIES", "TEMP", "MAX_TOKENS"), rows
        )
        lines += ["  " + line for line in table.splitlines()]
        blocks.append("\n".join(lines))
    return _section(f"Task groups ({len(config.groups)})", "\n\n".join(blocks))


def _pools(config: LLMConfig) -> str:
    blocks = []
    for name, pool in config.pools.items():
        fb = pool.effective_fallback
        lines = [f"{name}" + (f" - {pool.description}" if pool.description else "")]
        lines.append(
            f"  rotation {pool.rotation_strategy.value}, fallback {fb.strategy.value} x{fb.max_instance_attempts}, "
            f"health check every {_num(pool.health_check_interval)}s, out after {pool.failure_threshold} failures "
            f"for {_num(pool.recovery_time)}s"
        )
        rows = []
        for group, tier, model in config.pool_members(name):
            m = config.models.get(model)
            state = "enabled" if m is None or m.enabled else "disabled"
            weight = pool.weights.get(model, m.weight if m else 1.0) if pool.weights else None
            rows.append((f"{group}.{tier}", model, state) + ((_num(weight),) if weight is not None else ()))
        headers: tuple[str, ...] = ("TIER", "MODEL", "STATE") + (("WEIGHT",) if pool.weights else ())
        lines += ["  " + line for line in _table(headers, rows).splitlines()]
        blocks.append("\n".join(lines))
    return _section(f"Polling pools ({len(config.pools)})", "\n\n".join(blocks))


def _wrappers(config: LLMConfig) -> str:
    rows = []
    for name, w in config.wrappers.items():
        if w.type.value == "task_group":
            over = w.target or ""
            detail = (
                "fallback_groups: " + ", ".join(w.fallback_groups) if w.fallback_groups is not None else ""
            )
        else:
            over = f"pool {w.pool}"
            detail = f"max_instance_attempts: {w.max_instance_attempts}" if w.max_instance_attempts else ""
        rows.append((name, w.type.value, over, _opt(w.timeout, "s"), detail))
    if not rows:
        return _section("Wrappers (0)", "(no wrappers.yaml)")
    return _section(
        f"Wrappers ({len(rows)})", _table(("WRAPPER", "TYPE", "TARGET", "TIMEOUT", "OVERRIDES"), rows)
    )


def _summary(config: LLMConfig) -> str:
    disabled = config.disabled_models()
    lines = [
        f"OK: {len(config.models)} models ({len(disabled)} disabled), {len(config.groups)} task groups, "
        f"{len(config.pools)} polling pools, {len(config.wrappers)} wrappers."
    ]
    if disabled:
        by_reason: dict[str, list[str]] = {}
        for name, m in disabled.items():
            by_reason.setdefault(m.disabled_reason or "", []).append(name)
        plural = "s take" if len(disabled) != 1 else " takes"
        lines.append(
            f"{len(disabled)} disabled model{plural} no requests until the cause is fixed and reloaded:"
        )
        for reason, names in by_reason.items():
            lines.append(f"  {reason}: {', '.join(names)}")
    if not config.enabled_models():
        lines.append(
            "Warning: no model is enabled; every request will fail. Set the API key variables above."
        )
    lines += _replaced_credentials(config)
    if config.global_fallback is not None:
        lines.append(
            "Note: global_fallback.yaml is migration input only and is not applied; "
            "run `llm-actors migrate` to move it into each group's fallback_config."
        )
    return "\n".join(lines) + "\n"


def _replaced_credentials(config: LLMConfig) -> list[str]:
    """A warning per model whose base_url credentials replace its key (or Authorization header)."""
    from actors.errors import LLMError
    from actors.providers import make_provider

    warnings = []
    for name, model in config.models.items():
        if not model.base_url or "@" not in model.base_url:
            continue
        try:  # the provider knows which header carries its key: build it (no connection is made)
            replaced = getattr(make_provider(model), "replaced_by_url", ())
        except LLMError:
            continue
        if replaced:
            warnings.append(
                f"Warning: model {name} has credentials in its base_url (user:password@), sent as Basic "
                f"auth in place of its {' and '.join(replaced)}, which is never sent; keep one of them."
            )
    return warnings


# ------------------------------------------------------------------------------- formatting


def _section(title: str, body: str) -> str:
    return f"{title}\n{'=' * len(title)}\n{body}\n"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=False)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    return "\n".join(out)


def _num(value: float) -> str:
    return f"{value:g}"


def _opt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{_num(value)}{unit}" if isinstance(value, float) else f"{value}{unit}"
