"""``LLMNode``: one LLM step of an agent workflow, over a wrapper, a task group, a pool or a client.

A node reads the conversation from ``state["messages"]``, puts a system prompt in front of the
most recent messages, calls its LLM client, and appends the reply to the conversation::

    node = LLMNode(wrapper_factory=factory)
    result = node.execute({"messages": [HumanMessage("hi")]}, {"llm_wrapper": "fast_group_wrapper"})
    result.state["messages"][-1]        # the reply; result.next_node, result.metadata

It is also a plain callable, ``node(state) -> {"messages": [...]}``, so it drops into a LangGraph
``StateGraph`` as a node (its configuration then comes from ``LLMNode(config=...)``).

Choosing the client, first match wins (an unknown name is an error, never a silent fall-through):

1. ``llm_wrapper``: a wrapper created in the node's factory, else one declared in the runtime's
   ``wrappers.yaml``;
2. ``llm_group``: a task-group wrapper over that reference (``group`` or ``group.tier``);
3. ``polling_pool``: a wrapper by that name in the factory, else a pool wrapper over that pool;
4. the node's ``llm_client``.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.compat.managers import TaskGroupManager
from actors.compat.routes import WrapperCache
from actors.errors import BadRequestError, WrapperConfigError
from actors.factory import Host, LLMWrapperFactory
from actors.messages import AIMessage, SystemMessage, to_message_dict
from actors.proxy import PollingPoolWrapper, TaskGroupWrapper

__all__ = ["DEFAULT_SYSTEM_PROMPT", "LLMNode", "NodeExecutionResult"]

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer the user's request accurately and concisely."

#: Request parameters a node's config passes to the model, and the name each goes by there.
PASS_THROUGH = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "stop_sequences": "stop",
    "tools": "tools",
    "tool_choice": "tool_choice",
    "parallel_tool_calls": "parallel_tool_calls",
    "response_format": "response_format",
}

#: The original node sent a reply that asked for more to this node (set ``followup_node: null`` to stop it).
DEFAULT_FOLLOWUP_NODE = "analysis_node"
#: Phrases in a reply that the original took as "needs more analysis".
DEFAULT_FOLLOWUP_MARKERS = ("需要更多信息", "无法确定", "需要进一步分析", "建议查询", "让我确认")

DEFAULTS: dict[str, Any] = {
    "include_tool_results": True,
    "max_history_messages": 10,
    "max_iterations": 10,
    "followup_node": DEFAULT_FOLLOWUP_NODE,
    "followup_markers": DEFAULT_FOLLOWUP_MARKERS,
}


@dataclass
class NodeExecutionResult:
    """What a node run produced: the new state, where the workflow goes next, and details."""

    state: dict[str, Any]
    next_node: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class LLMNode:
    """An LLM step of a workflow; safe to share between threads and event loops.

    ``config`` is the node's default configuration, merged under each call's own. Keys:
    ``llm_wrapper`` / ``llm_group`` / ``polling_pool`` (the client, see the module docstring);
    ``system_prompt`` or ``system_prompt_template`` (with ``{max_iterations}``,
    ``{current_step}``, ``{tool_results_count}``, ``{messages_count}`` and any top-level state
    key); ``include_tool_results`` (default True: ``state["tool_results"]`` go into the system
    prompt); ``max_tokens``, ``temperature``, ``top_p``, ``frequency_penalty``,
    ``presence_penalty``, ``stop_sequences`` (sent as ``stop``); ``tools`` (OpenAI dicts, or
    LangChain tools, functions and pydantic classes when langchain-core is installed),
    ``tool_choice``, ``parallel_tool_calls``, ``response_format``; ``next_node``;
    ``max_history_messages`` (default 10); ``followup_node`` / ``followup_markers`` (the
    original's routing of replies that ask for more, to ``analysis_node``; None turns it off).
    """

    def __init__(
        self,
        llm_client: Any = None,
        wrapper_factory: LLMWrapperFactory | None = None,
        task_group_manager: TaskGroupManager | None = None,
        *,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(wrapper_factory, TaskGroupManager) and not isinstance(
            task_group_manager, TaskGroupManager
        ):
            # The original's positional order was (llm_client, task_group_manager, wrapper_factory).
            wrapper_factory, task_group_manager = task_group_manager, wrapper_factory
        self.llm_client = llm_client
        self.wrapper_factory = wrapper_factory
        self.task_group_manager = task_group_manager
        self.config = dict(config or {})
        self._own = WrapperCache()  # the wrappers llm_group and polling_pool make

    # -- running --------------------------------------------------------------------------------

    def execute(
        self, state: Mapping[str, Any], config: Mapping[str, Any] | None = None
    ) -> NodeExecutionResult:
        """Run the node on this thread, with or without an event loop running in it.

        Uses the client's synchronous ``generate``: it blocks this thread (and a loop running in
        it) for the call, and never starts or nests an event loop.
        """
        cfg, client, messages, prompt, params = self._prepare(state, config)
        response = client.generate(messages=messages, parameters=params)
        return self._result(state, cfg, client, response, prompt)

    async def aexecute(
        self, state: Mapping[str, Any], config: Mapping[str, Any] | None = None
    ) -> NodeExecutionResult:
        """Run the node on the running loop, without blocking it."""
        cfg, client, messages, prompt, params = self._prepare(state, config)
        agenerate = getattr(client, "generate_async", None)
        if agenerate is not None:
            response = await agenerate(messages=messages, parameters=params)
        else:  # a sync-only client runs in a worker thread, off the loop
            response = await asyncio.to_thread(client.generate, messages=messages, parameters=params)
        return self._result(state, cfg, client, response, prompt)

    def __call__(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """LangGraph node form: ``{"messages": <the conversation with the reply appended>}``.

        The whole list is returned, so it works with a plain ``messages`` channel and with
        ``add_messages`` (which keeps the existing messages by id and appends the reply).
        """
        return {"messages": self.execute(state).state["messages"]}

    async def acall(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The async LangGraph node form (``graph.add_node("llm", node.acall)``), off the loop's thread."""
        return {"messages": (await self.aexecute(state)).state["messages"]}

    # -- choosing the client --------------------------------------------------------------------

    def get_client(self, config: Mapping[str, Any] | None = None) -> Any:
        """The client a run with ``config`` (merged over the node's) would call."""
        cfg = {**DEFAULTS, **self.config, **(config or {})}
        name = cfg.get("llm_wrapper")
        if name:
            return self._named_wrapper(name)
        group = cfg.get("llm_group")
        if group:
            return self._made("task_group", group)
        pool = cfg.get("polling_pool")
        if pool:
            if self.wrapper_factory is not None:
                wrapper = self.wrapper_factory.get_wrapper(pool)
                if wrapper is not None:
                    return wrapper
            return self._made("polling_pool", pool)
        if self.llm_client is None:
            raise WrapperConfigError(
                "LLMNode has no client for this run: set llm_wrapper, llm_group or polling_pool in the "
                "node config, or give the node an llm_client"
            )
        return self.llm_client

    def _runtime(self, why: str) -> Host:
        if self.wrapper_factory is not None:
            return self.wrapper_factory.runtime
        if self.task_group_manager is not None:
            return self.task_group_manager.runtime
        raise WrapperConfigError(
            f"LLMNode cannot resolve {why}: give the node a wrapper_factory or a task_group_manager"
        )

    def _named_wrapper(self, name: str) -> Any:
        if self.wrapper_factory is not None:
            wrapper = self.wrapper_factory.get_wrapper(name)
            if wrapper is not None:
                return wrapper
        rt = self._runtime(f"llm_wrapper {name!r}")
        configured = rt.factory.get_wrapper(name)
        if configured is not None:
            return configured
        known = sorted(
            set(self.wrapper_factory.list_wrappers() if self.wrapper_factory is not None else ())
            | set(rt.factory.list_wrappers())
        )
        raise WrapperConfigError(
            f"unknown llm_wrapper {name!r}: create it with the wrapper factory or declare it in "
            f"wrappers.yaml; known wrappers: {known or 'none'}"
        )

    def _made(self, kind: str, ref: str) -> Any:
        what = "llm_group" if kind == "task_group" else "polling_pool"
        rt = self._runtime(f"{what} {ref!r}")
        cls = TaskGroupWrapper if kind == "task_group" else PollingPoolWrapper
        cfg = {"target": ref} if kind == "task_group" else {"pool": ref}
        return self._own.get((kind, ref), rt, f"{what}:{ref}", cls, cfg)

    # -- building the request and the result ----------------------------------------------------

    def _prepare(
        self, state: Mapping[str, Any], config: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], Any, list[Any], str, dict[str, Any]]:
        cfg = {**DEFAULTS, **self.config, **(config or {})}
        client = self.get_client(config)
        history = list(state.get("messages") or [])
        prompt = self._system_prompt(state, cfg, history)
        recent = _recent(history, int(cfg["max_history_messages"]))
        messages = [_system_message(prompt, _family(history)), *recent]
        params = {out: cfg[key] for key, out in PASS_THROUGH.items() if cfg.get(key) is not None}
        if params.get("tools"):
            params["tools"] = [_tool(t) for t in params["tools"]]
        return cfg, client, messages, prompt, params

    def _system_prompt(self, state: Mapping[str, Any], cfg: Mapping[str, Any], history: list[Any]) -> str:
        tool_results = list(state.get("tool_results") or [])
        template = cfg.get("system_prompt_template")
        if template:
            values = {k: v for k, v in state.items() if isinstance(k, str)}
            values.update(
                max_iterations=state.get("max_iterations", cfg["max_iterations"]),
                current_step=state.get("current_step", ""),
                tool_results_count=len(tool_results),
                messages_count=len(history),
            )
            prompt = _fill(template, values)
        else:
            prompt = cfg.get("system_prompt") or DEFAULT_SYSTEM_PROMPT
        if cfg.get("include_tool_results") and tool_results:
            prompt += "\n\nTool results:\n" + "\n".join(_tool_line(r) for r in tool_results)
        return prompt

    def _result(
        self, state: Mapping[str, Any], cfg: Mapping[str, Any], client: Any, response: Any, prompt: str
    ) -> NodeExecutionResult:
        history = list(state.get("messages") or [])
        reply = _reply_message(response, _family(history))
        new_state = {**state, "messages": [*history, reply]}
        content = _content(response)
        next_node = cfg.get("next_node")
        if (
            next_node is None
            and cfg.get("followup_node")
            and any(marker in content for marker in cfg.get("followup_markers") or ())
        ):
            next_node = cfg["followup_node"]
        usage = getattr(response, "token_usage", None)
        info = getattr(client, "get_model_info", None)
        metadata = {
            "llm_response": response,
            "token_usage": _usage_dict(usage),
            "model_info": info() if callable(info) else {},
            "system_prompt": prompt,
            "client": getattr(client, "name", type(client).__name__),
            "model": getattr(response, "model", None),
            "instance": getattr(response, "instance", None),
            "target": getattr(response, "target", None),
        }
        return NodeExecutionResult(new_state, next_node, metadata)

    def __repr__(self) -> str:
        return f"LLMNode(config={self.config!r})"


# --------------------------------------------------------------------------- helpers


def _family(messages: Sequence[Any]) -> str:
    """Which kind of message objects the conversation uses: "langchain", "dict" or "actors"."""
    for m in messages:
        if isinstance(m, Mapping):
            continue
        if type(m).__module__.startswith("langchain"):
            return "langchain"
        return "actors"
    return "dict" if messages else "actors"


def _role(message: Any) -> str:
    try:
        return to_message_dict(message)["role"]
    except (BadRequestError, TypeError, AttributeError, KeyError, ValueError):  # not a message: no role
        return ""


def _recent(messages: list[Any], limit: int) -> list[Any]:
    """The last ``limit`` messages, widened so a tool result never loses the call it answers."""
    if limit <= 0:
        return []
    start = max(0, len(messages) - limit)
    while start > 0 and _role(messages[start]) == "tool":
        start -= 1
    return messages[start:]


def _system_message(text: str, family: str) -> Any:
    if family == "dict":
        return {"role": "system", "content": text}
    if family == "langchain":
        from langchain_core.messages import SystemMessage as LCSystemMessage

        return LCSystemMessage(content=text)
    return SystemMessage(text)


def _content(response: Any) -> str:
    """The reply text of an ``LLMResponse``, or of a plain client that returns a string."""
    return response if isinstance(response, str) else (getattr(response, "content", "") or "")


def _reply_message(response: Any, family: str) -> Any:
    content = _content(response)
    calls = list(getattr(response, "tool_calls", None) or [])
    if family == "dict":
        message = getattr(response, "message", None)
        return dict(message) if isinstance(message, Mapping) else {"role": "assistant", "content": content}
    if family == "langchain":
        from langchain_core.messages import AIMessage as LCAIMessage

        lc_calls = [{"id": c.id, "name": c.name, "args": c.args, "type": "tool_call"} for c in calls]
        return LCAIMessage(content=content, tool_calls=lc_calls)
    return AIMessage(content, tool_calls=[c.to_openai() for c in calls])


def _tool(tool: Any) -> Any:
    """An OpenAI tool dict for a dict (as is) or a LangChain tool, function or pydantic class."""
    if isinstance(tool, Mapping):
        return dict(tool)
    try:
        from langchain_core.utils.function_calling import convert_to_openai_tool
    except ImportError:
        raise WrapperConfigError(
            f"tools: {tool!r} is not an OpenAI tool dict; pass dicts, or install langchain-core to pass "
            "LangChain tools, functions or pydantic classes"
        ) from None
    return convert_to_openai_tool(tool)


def _fill(template: str, values: Mapping[str, Any]) -> str:
    wanted = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    missing = sorted({f.split(".")[0].split("[")[0] for f in wanted} - set(values))
    if missing:
        raise WrapperConfigError(
            f"system_prompt_template uses unknown placeholder(s) {missing}; use {{max_iterations}}, "
            "{current_step}, {tool_results_count}, {messages_count} or a top-level state key "
            "(write {{ and }} for literal braces)"
        )
    return template.format_map(values)


def _tool_line(result: Any) -> str:
    if isinstance(result, Mapping):
        get = result.get
    else:

        def get(key: str, default: Any = None) -> Any:
            return getattr(result, key, default)

    name = get("tool_name") or get("name") or "tool"
    if get("success", True) is False:
        return f"- {name}: failed: {get('error') or 'no details'}"
    output = get("result", get("output"))
    return f"- {name}: {output if output is not None else result}"


def _usage_dict(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    if isinstance(usage, Mapping):
        return dict(usage)
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: getattr(usage, k) for k in keys if hasattr(usage, k)}
