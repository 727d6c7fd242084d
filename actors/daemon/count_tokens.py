"""``POST /v1/messages/count_tokens``: Anthropic's count from an Anthropic instance, or an estimate.

The first enabled Anthropic instance on the model's route counts (with its own model name); if
the route has none, or it fails, the answer is an estimate (about four characters a token over
the system prompt, messages and tools), and ``source`` says which it is: ``instance:NAME`` or
``estimate``. Counting takes no lease: it is not a generation and has limits of its own.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog

from actors.errors import LLMError

if TYPE_CHECKING:
    from actors.daemon.chat import ChatRequest
    from actors.proxy import WrapperProxy

__all__ = ["count", "estimate"]

_log = structlog.get_logger("llm_actors.daemon")

#: Seconds an instance may take to count before the estimate answers instead.
COUNT_TIMEOUT = 10.0


async def count(wrapper: WrapperProxy, body: dict[str, Any], chat: ChatRequest) -> tuple[int, str]:
    """``(input tokens, source)`` for a messages body."""
    for target in wrapper.route.targets:
        for member in target.members:
            client = member.gate.client
            counter = getattr(client, "acount_tokens", None)
            if counter is None or member.gate.disabled_reason is not None:
                continue
            try:
                return await counter(body, timeout=COUNT_TIMEOUT), f"instance:{member.name}"
            except LLMError as exc:
                _log.warning("count_tokens failed; estimating", instance=member.name, error=str(exc))
                return estimate(chat), "estimate"
    return estimate(chat), "estimate"


def estimate(chat: ChatRequest) -> int:
    """About four characters a token, over the text of every message and the tools' JSON."""
    chars = 0
    for message in chat.messages:
        content = message.get("content")
        chars += len(content) if isinstance(content, str) else len(json.dumps(content or ""))
        if message.get("tool_calls"):
            chars += len(json.dumps(message["tool_calls"]))
    if chat.params.get("tools"):
        chars += len(json.dumps(chat.params["tools"]))
    return max(1, chars // 4)
