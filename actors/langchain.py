"""``ChatLLMActors``: a LangChain chat model over an llm-actors wrapper (the ``langchain`` extra).

Everything LangChain and LangGraph expect of a chat model works, with the wrapper's fallback,
limits and breakers underneath::

    from actors.langchain import ChatLLMActors

    llm = ChatLLMActors(wrapper=rt.factory.get_wrapper("fast_group_wrapper"), temperature=0.2)
    llm.invoke("hi"); await llm.ainvoke(messages)
    for chunk in llm.stream("tell me a story"): print(chunk.content, end="")   # token chunks
    llm.bind_tools([get_weather]).invoke("weather in Oslo?").tool_calls
    llm.with_structured_output(Forecast).invoke("...")                         # a Forecast

Replies carry ``usage_metadata`` and ``response_metadata`` (``model_name``, ``finish_reason``,
``instance``, ``target``, ``attempts``). Because ``_stream`` is implemented, LangGraph's
``stream_mode="messages"`` shows tokens as they come. Needs ``langchain-core``
(``pip install 'llm-actors[langchain]'``); the rest of llm-actors does not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

try:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
    from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "actors.langchain needs langchain-core: pip install 'llm-actors[langchain]' (or langchain-core)"
    ) from exc
from pydantic import BaseModel, ConfigDict, Field

from actors.errors import WrapperConfigError
from actors.response import LLMResponse, StreamChunk, TokenUsage

__all__ = ["ChatLLMActors"]


class ChatLLMActors(BaseChatModel):
    """A LangChain ``BaseChatModel`` whose calls go through an llm-actors wrapper."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    wrapper: Any = Field(exclude=True)
    """The wrapper (``rt.factory.get_wrapper(name)``) every call goes through."""
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    """The deadline of one call over all its attempts (default: the wrapper's)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other parameters sent with every call (``top_p``, ``response_format``...)."""

    @classmethod
    def from_runtime(cls, runtime: Any, name: str, **fields: Any) -> ChatLLMActors:
        """The chat model over the wrapper ``name`` of ``runtime`` (declared in ``wrappers.yaml``)."""
        wrapper = runtime.factory.get_wrapper(name)
        if wrapper is None:
            known = ", ".join(runtime.factory.list_wrappers()) or "none"
            raise WrapperConfigError(f"no wrapper {name!r}; known wrappers: {known}")
        return cls(wrapper=wrapper, **fields)

    @property
    def _llm_type(self) -> str:
        return "llm-actors"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"wrapper": getattr(self.wrapper, "name", repr(self.wrapper)), **self._defaults()}

    # -- calls ------------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _result(self.wrapper.generate(messages, self._params(stop, kwargs), **self._controls()))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _result(
            await self.wrapper.generate_async(messages, self._params(stop, kwargs), **self._controls())
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in self.wrapper.stream_generate(messages, self._params(stop, kwargs), **self._controls()):
            chunk = _chunk(piece)
            if run_manager is not None and piece.delta:
                run_manager.on_llm_new_token(piece.delta, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for piece in self.wrapper.stream_generate_async(
            messages, self._params(stop, kwargs), **self._controls()
        ):
            chunk = _chunk(piece)
            if run_manager is not None and piece.delta:
                await run_manager.on_llm_new_token(piece.delta, chunk=chunk)
            yield chunk

    def _defaults(self) -> dict[str, Any]:
        out = dict(self.model_kwargs)
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        return out

    def _controls(self) -> dict[str, Any]:
        """Request controls, which the wrapper takes as keywords rather than model parameters."""
        return {"timeout": self.timeout} if self.timeout is not None else {}

    def _params(self, stop: list[str] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        params = self._defaults()
        if stop:
            params["stop"] = list(stop)
        params.update(kwargs)
        params.pop("ls_structured_output_format", None)  # LangChain's tracing hint, not a parameter
        return params

    # -- tools and structured output --------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        """This model with ``tools`` (LangChain tools, functions, pydantic classes or OpenAI dicts)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = _tool_choice(tool_choice)
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: str = "function_calling",
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[Any, Any]:
        """Answers parsed into ``schema``: through a forced tool (``function_calling``, the
        default), ``response_format`` ``json_schema``, or ``json_mode`` (any JSON object).

        Each works whichever provider answers: Anthropic instances get ``response_format`` as
        a forced tool and give the answer back as text.
        """
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        if kwargs:
            raise ValueError(f"unsupported arguments {sorted(kwargs)}")
        is_model = isinstance(schema, type) and issubclass(schema, BaseModel)
        if method == "json_schema":
            json_schema = convert_to_json_schema(schema)
            name = json_schema.get("title") or "answer"
            fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": json_schema}}
        elif method == "json_mode":
            fmt = {"type": "json_object"}
        else:
            raise ValueError(f"method must be function_calling, json_schema or json_mode, not {method!r}")
        llm = self.bind(response_format=fmt)
        parser: Runnable[Any, Any] = (
            PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
        )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")


# -- conversions ----------------------------------------------------------------------------


def _tool_choice(choice: str | bool | Mapping[str, Any]) -> Any:
    """LangChain's tool_choice in OpenAI's words (providers translate from those)."""
    if choice is True or choice == "any":
        return "required"
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def _usage(usage: TokenUsage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _metadata(reply: LLMResponse) -> dict[str, Any]:
    out = {
        "model_name": reply.model,
        "finish_reason": reply.finish_reason,
        "instance": reply.instance,
        "target": reply.target,
        "attempts": [a.to_dict() for a in reply.attempts],
    }
    if "logprobs" in reply.metadata:
        out["logprobs"] = reply.metadata["logprobs"]
    return out


def _result(reply: LLMResponse) -> ChatResult:
    calls, invalid = [], []
    for call in reply.tool_calls:
        try:
            args = json.loads(call.arguments) if call.arguments else {}
        except ValueError as exc:
            invalid.append({"name": call.name, "args": call.arguments, "id": call.id, "error": str(exc)})
            continue
        calls.append({"name": call.name, "args": args, "id": call.id, "type": "tool_call"})
    message = AIMessage(
        content=reply.content,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=_usage(reply.token_usage),
        response_metadata=_metadata(reply),
    )
    info = {"finish_reason": reply.finish_reason}
    llm_output = {"model_name": reply.model, "token_usage": _usage(reply.token_usage)}
    return ChatResult(
        generations=[ChatGeneration(message=message, generation_info=info)], llm_output=llm_output
    )


def _chunk(piece: StreamChunk) -> ChatGenerationChunk:
    fields: dict[str, Any] = {"content": piece.delta}
    if piece.tool_calls:
        fields["tool_call_chunks"] = [
            {"name": c.name, "args": c.arguments, "id": c.id, "index": i, "type": "tool_call_chunk"}
            for i, c in enumerate(piece.tool_calls)
        ]
    if piece.usage is not None:
        fields["usage_metadata"] = _usage(piece.usage)
    if piece.finish_reason is not None:
        fields["response_metadata"] = {
            "model_name": piece.model,
            "finish_reason": piece.finish_reason,
            "instance": piece.instance,
        }
        fields["chunk_position"] = "last"
    elif piece.logprobs is not None:
        fields["response_metadata"] = {"logprobs": piece.logprobs}
    info = {"finish_reason": piece.finish_reason} if piece.finish_reason else None
    return ChatGenerationChunk(message=AIMessageChunk(**fields), generation_info=info)
