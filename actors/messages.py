"""Chat messages: small message classes and normalization to one canonical shape.

The canonical shape is OpenAI's chat message dict (``role``, ``content``, and ``tool_calls`` /
``tool_call_id`` / ``name`` where they apply); each provider translates from it. Accepted input:
dicts in that shape, the classes below, and any LangChain-style object (duck-typed ``.type`` and
``.content``), without importing LangChain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.errors import BadRequestError

__all__ = [
    "AIMessage",
    "BaseMessage",
    "HumanMessage",
    "SystemMessage",
    "ToolMessage",
    "embedding_input_problem",
    "normalize_messages",
    "to_message_dict",
]

# LangChain's message ``type`` names, mapped to chat roles.
_ROLE_OF_TYPE = {
    "human": "user",
    "user": "user",
    "system": "system",
    "ai": "assistant",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
    "developer": "system",
}
_ROLES = frozenset({"user", "system", "assistant", "tool"})


@dataclass
class BaseMessage:
    """A chat message; ``type`` uses LangChain's names so either kind of object works anywhere."""

    content: Any = ""
    type: str = "human"
    additional_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return _ROLE_OF_TYPE[self.type]


@dataclass
class HumanMessage(BaseMessage):
    """A message from the user."""

    type: str = "human"


@dataclass
class SystemMessage(BaseMessage):
    """Instructions for the model."""

    type: str = "system"


@dataclass
class AIMessage(BaseMessage):
    """A reply from the model, possibly with tool calls (OpenAI shape: id, name, arguments)."""

    type: str = "ai"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ToolMessage(BaseMessage):
    """The result of a tool call, answering ``tool_call_id``."""

    type: str = "tool"
    tool_call_id: str = ""
    name: str | None = None


def normalize_messages(messages: Iterable[Any] | str) -> list[dict[str, Any]]:
    """Return ``messages`` as canonical dicts; a bare string becomes one user message.

    Raises ``BadRequestError`` naming the offending message when one cannot be understood.
    """
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    try:
        out = [to_message_dict(m, index=i) for i, m in enumerate(messages)]
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise BadRequestError(
            f"messages: a message has an unexpected shape ({type(exc).__name__}: {exc})"
        ) from None
    if not out:
        raise BadRequestError("messages is empty: pass at least one message")
    return out


def to_message_dict(message: Any, *, index: int = 0) -> dict[str, Any]:
    """Translate one message of any accepted kind to the canonical dict."""
    if type(message) is dict or isinstance(message, Mapping):  # the dict check skips an ABC lookup
        return _from_mapping(message, index)
    kind = getattr(message, "type", None)
    if kind is None or not hasattr(message, "content"):
        _bad(
            index, f"{type(message).__name__} is neither a dict nor a message object with .type and .content"
        )
    role = _ROLE_OF_TYPE.get(str(kind))
    if role is None:
        _bad(index, f"unknown message type {kind!r}; use one of {sorted(_ROLE_OF_TYPE)}")
    out: dict[str, Any] = {"role": role, "content": message.content}
    if role == "assistant":
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            out["tool_calls"] = [_tool_call_to_openai(c) for c in calls]
    elif role == "tool":
        out["tool_call_id"] = getattr(message, "tool_call_id", "") or ""
        name = getattr(message, "name", None)
        if name:
            out["name"] = name
    return out


def _from_mapping(message: Mapping[str, Any], index: int) -> dict[str, Any]:
    role = message.get("role")
    if role is None and "type" in message:
        role = _ROLE_OF_TYPE.get(str(message["type"]))
    if role not in _ROLES:
        _bad(index, f"role {role!r} is not one of {sorted(_ROLES)}")
    out = dict(message)
    out.pop("type", None)
    out["role"] = role
    out.setdefault("content", "")
    if out.get("tool_calls"):
        out["tool_calls"] = [_tool_call_to_openai(c) for c in out["tool_calls"]]
    return out


def _tool_call_to_openai(call: Any) -> dict[str, Any]:
    """Accept OpenAI-shaped calls and LangChain's ``{id, name, args}`` shape."""
    if not isinstance(call, Mapping):
        call = vars(call)
    if "function" in call:
        fn = call["function"]
        args = fn.get("arguments", "")
        return {
            "id": call.get("id", ""),
            "type": "function",
            "function": {
                "name": fn.get("name", ""),
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }
    args = call.get("args", call.get("arguments", {}))
    return {
        "id": call.get("id", ""),
        "type": "function",
        "function": {
            "name": call.get("name", ""),
            "arguments": args if isinstance(args, str) else json.dumps(args),
        },
    }


def _bad(index: int, why: str) -> None:
    raise BadRequestError(f"messages[{index}]: {why}")


def embedding_input_problem(value: Any) -> str | None:
    """Why ``value`` is not one of OpenAI's embedding input forms (a string, strings, token ids
    or lists of them), or None."""
    if isinstance(value, str):
        return None
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return None
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return None
        if all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
            return None
    return "'input' must be a string, an array of strings, or an array of token arrays, and not empty"
