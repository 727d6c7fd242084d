"""OpenAI chat completions (``{base_url}/chat/completions``), also spoken by OpenAI-compatible servers.

Messages are already in OpenAI's shape, and unknown parameters pass through untouched, with
three exceptions, all Anthropic-only hints OpenAI would refuse: ``cache_control`` markers on
content parts and tools are removed (OpenAI caches long prompts by itself), ``thinking`` blocks
in an assistant turn are removed (they are Anthropic's record of its own reasoning), and a
tier's ``thinking`` default is left out. A request's own ``thinking`` or ``top_k`` never reaches
this provider (``actors.features`` routes it to an instance that honours it). ``logprobs``
come back in ``LLMResponse.metadata["logprobs"]`` and on stream chunks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from actors.providers.base import HTTPProvider, HTTPRequest, Messages, StreamDecoder, text_of
from actors.providers.errors import classify_payload
from actors.providers.sse import SSEEvent
from actors.response import EmbeddingResponse, LLMResponse, StreamChunk, TokenUsage, ToolCall

__all__ = [
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "OpenAIStreamDecoder",
    "build_chat_body",
    "build_embedding_body",
    "normalize_finish_reason",
    "openai_usage",
    "parse_chat_completion",
    "parse_embeddings",
]

#: Embedding parameters that reach the provider; tier defaults such as temperature do not.
EMBEDDING_PARAMS = ("dimensions", "user")

# Set by the driver, never by parameters; ``thinking`` (a tier's extended-thinking default, in
# Anthropic's shape) has no chat-completions equivalent.
_DRIVER_KEYS = ("model", "messages", "stream", "thinking")


_ANTHROPIC_ONLY_PARTS = frozenset({"thinking", "redacted_thinking"})


def _openai_message(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """``message`` without Anthropic-only content (returned as is when it has none, the usual case)."""
    content = message.get("content")
    if not isinstance(content, list) or not any(
        isinstance(p, Mapping) and ("cache_control" in p or p.get("type") in _ANTHROPIC_ONLY_PARTS)
        for p in content
    ):
        return message
    parts = [
        {k: v for k, v in p.items() if k != "cache_control"} if isinstance(p, Mapping) else p
        for p in content
        if not (isinstance(p, Mapping) and p.get("type") in _ANTHROPIC_ONLY_PARTS)
    ]
    if message.get("role") != "user" and all(
        isinstance(p, Mapping) and p.get("type") == "text" for p in parts
    ):
        return {**message, "content": "".join(p["text"] for p in parts) or None}
    return {**message, "content": parts}


def _openai_tool(tool: Any) -> Any:
    return {k: v for k, v in tool.items() if k != "cache_control"} if isinstance(tool, Mapping) else tool


def build_chat_body(
    model_name: str, messages: Messages, params: Mapping[str, Any], *, stream: bool
) -> dict[str, Any]:
    """The JSON body of a chat completion request."""
    body: dict[str, Any] = {"model": model_name, "messages": [_openai_message(m) for m in messages]}
    for key, value in params.items():
        if key not in _DRIVER_KEYS:
            body[key] = value
    if body.get("tools"):
        body["tools"] = [_openai_tool(t) for t in body["tools"]]
    if isinstance(body.get("response_format"), str):  # a tier may say just "json_object"
        body["response_format"] = {"type": body["response_format"]}
    if stream:
        body["stream"] = True
        options = body.get("stream_options")
        body["stream_options"] = (
            {**options, "include_usage": True} if isinstance(options, Mapping) else {"include_usage": True}
        )
    else:
        body.pop("stream_options", None)
    return body


def normalize_finish_reason(reason: Any) -> str | None:
    """OpenAI's words, with the legacy ``function_call`` folded into ``tool_calls``."""
    if reason is None:
        return None
    return "tool_calls" if reason == "function_call" else str(reason)


def openai_usage(usage: Any) -> TokenUsage:
    if not isinstance(usage, Mapping):
        return TokenUsage()
    return TokenUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        total_tokens=int(usage.get("total_tokens") or 0),
    )


def _tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    calls = [
        ToolCall(str(c.get("id") or ""), str(c["function"]["name"]), c["function"].get("arguments") or "{}")
        for c in message.get("tool_calls") or ()
    ]
    legacy = message.get("function_call")
    if not calls and isinstance(legacy, Mapping):
        calls.append(ToolCall("", str(legacy["name"]), legacy.get("arguments") or "{}"))
    return calls


def parse_chat_completion(data: Any, *, instance: str, model: str) -> LLMResponse:
    """A chat completion body as an ``LLMResponse`` (first choice); KeyError and the like on a bad shape."""
    choice = data["choices"][0]
    message = choice["message"]
    metadata: dict[str, Any] = {"provider_response_id": data.get("id")}
    if choice.get("logprobs"):
        metadata["logprobs"] = choice["logprobs"]
    return LLMResponse(
        content=text_of(message.get("content")),
        model=data.get("model") or model,
        instance=instance,
        token_usage=openai_usage(data.get("usage")),
        finish_reason=normalize_finish_reason(choice.get("finish_reason")),
        tool_calls=_tool_calls(message),
        metadata=metadata,
    )


def build_embedding_body(model_name: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """An embeddings request: floats always (the gateway encodes base64 itself when asked)."""
    body: dict[str, Any] = {"model": model_name, "input": list(inputs), "encoding_format": "float"}
    for key in EMBEDDING_PARAMS:
        if params.get(key) is not None:
            body[key] = params[key]
    return body


def parse_embeddings(data: Any, *, instance: str, model: str) -> EmbeddingResponse:
    """An embeddings body as an ``EmbeddingResponse``, vectors in input order; KeyError and the
    like on a bad shape."""
    items = sorted(data["data"], key=lambda d: d.get("index", 0))
    vectors = [[float(v) for v in item["embedding"]] for item in items]
    usage = data.get("usage") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    return EmbeddingResponse(
        embeddings=vectors,
        model=data.get("model") or model,
        instance=instance,
        token_usage=TokenUsage(prompt_tokens=prompt, total_tokens=int(usage.get("total_tokens") or prompt)),
    )


class OpenAIStreamDecoder(StreamDecoder):
    """``data:`` chunks until ``[DONE]``; usage arrives on a last chunk with no choices."""

    __slots__ = ()

    def decode(self, event: SSEEvent) -> Sequence[StreamChunk]:
        data = event.data
        if data == "[DONE]":
            return self.final()
        obj = self.load(data)
        if "error" in obj and not obj.get("choices"):
            raise self.failed(classify_payload(self.ctx, obj))
        if obj.get("model"):
            self.model = obj["model"]
        if obj.get("usage"):
            self.usage = openai_usage(obj["usage"])
        text = ""
        logprobs = None
        for choice in obj.get("choices") or ():
            if choice.get("index", 0) != 0:  # n > 1 is refused before a request is sent
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            logprobs = choice.get("logprobs")
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                self.tools.add(
                    call.get("index", 0),
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=function.get("arguments"),
                )
            if choice.get("finish_reason"):
                self.finish_reason = normalize_finish_reason(choice["finish_reason"])
        chunks = self.text(text)
        if logprobs and chunks:
            chunks[0].logprobs = logprobs
        return chunks


class OpenAIProvider(HTTPProvider):
    """OpenAI's chat completions API."""

    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    key_env = "OPENAI_API_KEY"

    def auth_headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def build_request(self, messages: Messages, params: dict[str, Any], *, stream: bool) -> HTTPRequest:
        body = build_chat_body(self.model.model_name, messages, params, stream=stream)
        return HTTPRequest("POST", self.url("/chat/completions"), body)

    def parse_response(self, data: Any) -> LLMResponse:
        if isinstance(data, dict) and "error" in data and "choices" not in data:
            raise classify_payload(self.errors, data)  # some compatible servers answer errors with 200
        return parse_chat_completion(data, instance=self.name, model=self.model.model_name)

    def stream_decoder(self) -> StreamDecoder:
        return OpenAIStreamDecoder(self.errors, self.name, self.model.model_name)

    def probe_request(self) -> HTTPRequest:
        return HTTPRequest("GET", self.url("/models"))

    def build_embedding_request(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> HTTPRequest:
        body = build_embedding_body(self.model.model_name, inputs, params)
        return HTTPRequest("POST", self.url("/embeddings"), body)

    def parse_embedding_response(self, data: Any) -> EmbeddingResponse:
        if isinstance(data, dict) and "error" in data and "data" not in data:
            raise classify_payload(self.errors, data)
        return parse_embeddings(data, instance=self.name, model=self.model.model_name)


class OpenAICompatibleProvider(OpenAIProvider):
    """A server that speaks OpenAI's API (vLLM, Ollama, LiteLLM, ...): ``base_url`` is required."""

    default_base_url = None
    key_env = "the model's api_key"
