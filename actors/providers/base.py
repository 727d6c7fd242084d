"""The provider interface, and the sync and async HTTP drivers every HTTP provider shares.

A provider is its model's configuration plus pure codec functions: build a request from
canonical messages and parameters, parse a reply body, turn stream events into chunks. The
drivers here do the I/O around them; the sync and async twins differ only in how they send and
read, so both go through one decision core (``_prepare``, ``_reply``, ``_probed``, the stream
decoder) and fail with the same errors, built in ``actors.providers.errors``.

A provider holds no per-call state, so one object serves any number of threads and event loops
at once; its HTTP clients come from the shared ``HTTPClients``.

Every provider's ``call``/``acall``/``stream``/``astream``/``probe``/``aprobe`` (subclasses' and
registered ones' alike) passes one boundary: whatever it raises that is not an ``LLMError``
becomes a typed ``LLMCallError`` (``errors.unexpected``), so no bare exception reaches a caller.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote_to_bytes

import httpx

from actors import jsonio
from actors.config.models import ModelConfig
from actors.errors import BadRequestError, ConfigError, LLMCallError, LLMError
from actors.providers.clients import HTTPClients, SyncSender, default_clients, origin_of
from actors.providers.errors import (
    ErrorContext,
    classify_status,
    classify_transport,
    disabled,
    interrupted,
    malformed,
    unencodable,
    unexpected,
)
from actors.providers.sse import SSEEvent, iter_sse
from actors.providers.upstream import TRANSPORT_ERRORS, Answer
from actors.resilience.pacing import rate_limits_from_raw
from actors.response import EmbeddingResponse, LLMResponse, StreamChunk, TokenUsage, ToolCall
from actors.secrets import mask_in_httpx_log, shown_url

__all__ = [
    "HTTPProvider",
    "HTTPRequest",
    "Provider",
    "StreamDecoder",
    "ToolCallAssembler",
    "merge_params",
    "text_of",
]

_perf = time.perf_counter
_MIN_TIMEOUT = 0.001
# What a codec raises when a 2xx body has the wrong shape; anything else is a bug, not the server.
_SHAPE_ERRORS = (LookupError, TypeError, ValueError, AttributeError)

Messages = Sequence[Mapping[str, Any]]

_JSON_TYPE = {"content-type": "application/json"}


def encode_json(body: Any) -> bytes:
    """A request body as JSON bytes, as strict as a provider will parse it (no NaN, valid UTF-8)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx.URL:
    """``url`` as httpx parses it, once: httpx parses a string URL on every request (~10 µs),
    and a provider requests the same few URLs over and over."""
    return httpx.URL(url)


def merge_params(defaults: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Call parameters over the model's defaults; a None value means "not given"."""
    merged = {k: v for k, v in defaults.items() if v is not None} if defaults else {}
    for key, value in params.items():
        if value is not None:
            merged[key] = value
    return merged


def text_of(content: Any) -> str:
    """The text of a message content: a string, or a list of text parts (others skipped)."""
    if isinstance(content, str):
        return content
    if not content:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


class HTTPRequest:
    """What to send: method, URL and JSON body (headers are the provider's, fixed at start)."""

    __slots__ = ("json", "method", "url")

    def __init__(self, method: str, url: str, json: Any = None) -> None:
        self.method = method
        self.url = url
        self.json = json

    def __repr__(self) -> str:
        return f"HTTPRequest({self.method} {self.url})"


class ToolCallAssembler:
    """Collects streamed tool-call pieces by index; the whole calls come out at the end."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}

    def add(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
    ) -> None:
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = ["", "", []]
        if id:
            call[0] = id
        if name:
            call[1] = name
        if arguments:
            call[2].append(arguments)

    def result(self) -> list[ToolCall]:
        return [ToolCall(c[0], c[1], "".join(c[2]) or "{}") for _, c in sorted(self._calls.items())]


class StreamDecoder:
    """One stream's state: turns provider events into chunks, remembers the text given so far.

    Text chunks go out as they come; tool calls, ``finish_reason`` and usage go on one final
    chunk. A failure after any text was given becomes ``StreamInterruptedError`` carrying it;
    before that it stays the ordinary error, so the runtime may still fall back.
    """

    __slots__ = (
        "ctx",
        "done",
        "finish_reason",
        "instance",
        "model",
        "parts",
        "rate_limits",
        "tools",
        "usage",
    )

    def __init__(self, ctx: ErrorContext, instance: str, model: str) -> None:
        self.ctx = ctx
        self.instance = instance
        self.model = model
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self.tools = ToolCallAssembler()
        self.done = False
        self.rate_limits: Any = None  # from the response's headers, handed on with the final chunk

    def feed(self, event: SSEEvent) -> Sequence[StreamChunk]:
        """The chunks one event makes (usually none or one); raises the classified error."""
        try:
            return self.decode(event)
        except _SHAPE_ERRORS as exc:
            why = f"unexpected event shape: {type(exc).__name__}: {exc}"
            raise self.failed(malformed(self.ctx, why, event.data)) from None

    def decode(self, event: SSEEvent) -> Sequence[StreamChunk]:
        """``feed`` for one provider; may raise lookup/type/value errors on a bad shape."""
        raise NotImplementedError

    def load(self, data: str) -> Any:
        """An event's JSON data, or the malformed-stream error."""
        try:
            return jsonio.loads(data)
        except ValueError:
            raise self.failed(malformed(self.ctx, "an event is not JSON", data)) from None

    def text(self, delta: str) -> Sequence[StreamChunk]:
        if not delta:
            return ()
        self.parts.append(delta)
        return (StreamChunk(delta=delta, instance=self.instance, model=self.model),)

    def final(self) -> Sequence[StreamChunk]:
        self.done = True
        chunk = StreamChunk(
            tool_calls=self.tools.result(),
            finish_reason=self.finish_reason or "stop",
            usage=self.usage,
            instance=self.instance,
            model=self.model,
            rate_limits=self.rate_limits,
        )
        return (chunk,)

    def end(self) -> Sequence[StreamChunk]:
        """At end of input: the final chunk if the reply was complete, else the error."""
        if self.done:
            return ()
        if self.finish_reason is not None:  # finished, only the terminator is missing: accept it
            return self.final()
        raise self.failed(malformed(self.ctx, "the stream ended before the reply was complete"))

    def failed(self, error: LLMCallError) -> LLMCallError:
        """``error`` as the caller should see it, given what the stream has already yielded."""
        return interrupted(error, "".join(self.parts)) if self.parts else error


def _guard(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a provider's public call) raising only ``LLMError``s: anything else is ``unexpected``."""

    def error(self: Provider, exc: Exception) -> LLMError:
        return unexpected(self.errors, exc)

    if name == "astream":

        @functools.wraps(fn)
        async def astream(self: Provider, *args: Any, **kwargs: Any) -> AsyncIterator[StreamChunk]:
            chunks = fn(self, *args, **kwargs)
            try:
                async for chunk in chunks:
                    yield chunk
            except LLMError:
                raise
            except Exception as exc:
                raise error(self, exc) from exc
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()

        wrapped: Any = astream
    elif name == "stream":

        @functools.wraps(fn)
        def stream(self: Provider, *args: Any, **kwargs: Any) -> Iterator[StreamChunk]:
            try:
                yield from fn(self, *args, **kwargs)
            except LLMError:
                raise
            except Exception as exc:
                raise error(self, exc) from exc

        wrapped = stream
    elif inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def acall(self: Provider, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except LLMError:
                raise
            except Exception as exc:
                raise error(self, exc) from exc

        wrapped = acall
    else:

        @functools.wraps(fn)
        def call(self: Provider, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except LLMError:
                raise
            except Exception as exc:
                raise error(self, exc) from exc

        wrapped = call
    wrapped.provider_boundary = True
    return wrapped


class Provider:
    """Speaks one model instance's API; stateless apart from its configuration.

    ``call``/``acall`` return an ``LLMResponse``, ``stream``/``astream`` yield ``StreamChunk``s,
    ``probe``/``aprobe`` check health cheaply; all raise ``actors.errors.LLMCallError`` types.
    ``timeout`` is the per-attempt limit in seconds (None: the model's ``timeout``). Over HTTP it
    bounds connecting, sending, and each wait for data (httpx's semantics): a stream may last
    longer than ``timeout`` as long as its events keep coming.
    """

    #: What to tell a user to check when the key is refused.
    key_env: ClassVar[str] = "the model's api_key"

    #: The calls that pass the boundary (see the module docstring).
    _GUARDED: ClassVar[tuple[str, ...]] = ("call", "acall", "stream", "astream", "probe", "aprobe")

    errors: ErrorContext

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls._GUARDED:
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "provider_boundary", False):
                setattr(cls, name, _guard(name, fn))

    def __init__(self, model: ModelConfig, clients: HTTPClients | None = None) -> None:
        self.model = model
        self.name = model.name or model.model_name
        self.kind: str = model.model_type
        self.provider = model.provider or model.model_type
        self.clients = clients
        self.defaults = merge_params(model.parameters, {})
        self.base_url = ""
        self.errors = self._error_context(model, self.base_url)

    def _error_context(
        self, model: ModelConfig, base_url: str, secrets: tuple[str, ...] = ()
    ) -> ErrorContext:
        return ErrorContext(
            instance=self.name,
            provider=self.provider,
            model_name=model.model_name,
            base_url=shown_url(base_url) or "(none)",
            key_hint=model.api_key_env or self.key_env,
            secrets=(*model.secrets(), *secrets),
        )

    def check_enabled(self) -> None:
        """Raise ``AuthenticationError`` with the reason if the configuration disabled this model."""
        if self.model.disabled_reason is not None:
            raise disabled(self.errors, self.model.disabled_reason)

    def call(
        self,
        messages: Messages,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> LLMResponse:
        """One reply; with a ``deadline`` (``time.monotonic``) the body must arrive by then."""
        raise NotImplementedError

    async def acall(
        self, messages: Messages, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> LLMResponse:
        raise NotImplementedError

    def stream(
        self,
        messages: Messages,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Iterator[StreamChunk]:
        """Stream a reply; past ``deadline`` (``time.monotonic``) the stream ends in a timeout,
        however steadily the server keeps sending keep-alives."""
        raise NotImplementedError

    def astream(
        self, messages: Messages, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError

    def probe(self, *, timeout: float | None = None) -> None:
        raise NotImplementedError

    async def aprobe(self, *, timeout: float | None = None) -> None:
        raise NotImplementedError

    def embed(
        self,
        inputs: Sequence[Any],
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> EmbeddingResponse:
        """Embeddings of ``inputs`` (strings or token-id lists), one vector each, in order."""
        raise self.no_embeddings()

    async def aembed(
        self, inputs: Sequence[Any], params: Mapping[str, Any], *, timeout: float | None = None
    ) -> EmbeddingResponse:
        raise self.no_embeddings()

    def no_embeddings(self) -> LLMCallError:
        return self.errors.error(
            BadRequestError,
            f"model_type {self.kind} has no embeddings API; give embedding models an openai or "
            "openai_compatible model_type",
        )

    def _seconds(self, timeout: float | None) -> float:
        return self.model.timeout if timeout is None else max(timeout, _MIN_TIMEOUT)

    def __repr__(self) -> str:
        where = f" at {shown_url(self.base_url)}" if self.base_url else ""
        return f"<{type(self).__name__} {self.name!r} model={self.model.model_name!r}{where}>"


def _until(lines: Iterator[str], deadline: float | None, response: httpx.Response) -> Iterator[str]:
    """``lines`` until ``deadline``: every line counts, keep-alive comments too."""
    if deadline is None:
        yield from lines
        return
    for line in lines:
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout(
                "the request's deadline passed while the stream was still open", request=response.request
            )
        yield line


class HTTPProvider(Provider):
    """A provider over HTTP: subclasses supply the codec, this class does the I/O."""

    #: Used when the model has no ``base_url``; None means one is required.
    default_base_url: ClassVar[str | None] = None
    clients: HTTPClients  # never None here: the process-wide ones when none are given

    def __init__(self, model: ModelConfig, clients: HTTPClients | None = None) -> None:
        super().__init__(model, clients or default_clients())
        base_url = (model.base_url or self.default_base_url or "").rstrip("/")
        if not base_url:
            raise ConfigError(f"model {self.name!r} ({model.model_type}) needs a base_url", path="base_url")
        shown = shown_url(base_url)
        try:
            self._origin = origin_of(base_url)
            url = httpx.URL(base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ConfigError(
                f"model {self.name!r}: base_url {shown!r} is not a URL ({exc})", path="base_url"
            ) from None
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"model {self.name!r}: base_url {shown!r} must start with http:// or https://",
                path="base_url",
            )
        self._headers = {**self.auth_headers(model.key()), **model.headers}
        secrets: tuple[str, ...] = ()
        #: The configured credentials that base_url's ``user:password@`` replaces (``check`` warns).
        self.replaced_by_url: tuple[str, ...] = ()
        if url.userinfo:
            # Credentials in the URL go in a header instead (httpx would send them so), so no
            # URL this provider requests, and httpx logs, carries them.
            basic = base64.b64encode(unquote_to_bytes(url.userinfo)).decode()
            self.replaced_by_url = tuple(
                f"headers.{k}" if k in model.headers else "api_key"
                for k in self._headers
                if k.lower() == "authorization"
            )
            self._headers = {k: v for k, v in self._headers.items() if k.lower() != "authorization"}
            self._headers["authorization"] = f"Basic {basic}"
            secrets = (basic,)
        # A query (some servers take the key there) goes on every request URL (``url``), never
        # into base_url, which messages show; httpx's request log lines mask its values.
        self._query = url.query.decode("ascii")
        if self._query:
            mask_in_httpx_log(model.secrets())
        self.base_url = shown
        self.errors = self._error_context(model, base_url, secrets)
        typed = any(k.lower() == "content-type" for k in self._headers)  # a model's own wins
        self._json_headers = self._headers if typed else {**self._headers, **_JSON_TYPE}
        self._timeout = httpx.Timeout(model.timeout)
        # (the sync client's default headers, ours and our JSON ones over them): see ``_sent``
        self._merged: tuple[httpx.Headers, httpx.Headers, httpx.Headers] | None = None

    def url(self, path: str, query: str = "") -> str:
        """The URL of ``path`` under base_url, with ``query`` and base_url's own query."""
        if self._query:
            query = f"{query}&{self._query}" if query else self._query
        return f"{self.base_url}{path}?{query}" if query else self.base_url + path

    # -- the codec: pure functions of configuration and data -------------------------------

    def auth_headers(self, key: str | None) -> dict[str, str]:
        """Headers that carry the key (and API version) on every request."""
        raise NotImplementedError

    def build_request(self, messages: Messages, params: dict[str, Any], *, stream: bool) -> HTTPRequest:
        """The chat request for canonical ``messages`` and merged ``params``."""
        raise NotImplementedError

    def parse_response(self, data: Any) -> LLMResponse:
        """A reply body (parsed JSON) as an ``LLMResponse``; raises a lookup/type/value error on a bad shape."""
        raise NotImplementedError

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed reply."""
        raise NotImplementedError

    def probe_request(self) -> HTTPRequest:
        """The cheap request a health probe sends."""
        raise NotImplementedError

    def build_embedding_request(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> HTTPRequest:
        """The embeddings request for ``inputs``; the base class has no embeddings API."""
        raise self.no_embeddings()

    def parse_embedding_response(self, data: Any) -> EmbeddingResponse:
        raise NotImplementedError

    # -- drivers ---------------------------------------------------------------------------

    def call(
        self,
        messages: Messages,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> LLMResponse:
        request = self._prepare(messages, params, stream=False)
        start = _perf()
        if deadline is None:
            return self._reply(Answer.of(self._send(request, timeout)), start)
        # httpx bounds each read; reading the body in parts bounds the whole exchange too.
        try:
            response = self._open(request, timeout)
            try:
                parts = []
                for part in response.iter_bytes():
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout(
                            "the request's deadline passed during the body", request=response.request
                        )
                    parts.append(part)
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise classify_transport(self.errors, exc, self._seconds(timeout)) from exc
        return self._reply(Answer.of(response, b"".join(parts)), start)

    async def acall(
        self, messages: Messages, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> LLMResponse:
        request = self._prepare(messages, params, stream=False)
        start = _perf()
        return self._reply(await self._afetch(request, timeout), start)

    def probe(self, *, timeout: float | None = None) -> None:
        self.check_enabled()
        self._probed(Answer.of(self._send(self.probe_request(), timeout)))

    def embed(
        self,
        inputs: Sequence[Any],
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> EmbeddingResponse:
        self.check_enabled()
        request = self.build_embedding_request(inputs, params)
        start = _perf()
        return self._reply(
            Answer.of(self._send(request, timeout)), start, parse=self.parse_embedding_response
        )

    async def aembed(
        self, inputs: Sequence[Any], params: Mapping[str, Any], *, timeout: float | None = None
    ) -> EmbeddingResponse:
        self.check_enabled()
        request = self.build_embedding_request(inputs, params)
        start = _perf()
        return self._reply(await self._afetch(request, timeout), start, parse=self.parse_embedding_response)

    async def aprobe(self, *, timeout: float | None = None) -> None:
        self.check_enabled()
        self._probed(await self._afetch(self.probe_request(), timeout))

    def stream(
        self,
        messages: Messages,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Iterator[StreamChunk]:
        request = self._prepare(messages, params, stream=True)
        decoder = self.stream_decoder()
        try:
            response = self._open(request, timeout)
            try:
                if not _is_event_stream(response.status_code, response.headers):
                    response.read()
                    yield from self._whole(Answer.of(response))
                    return
                decoder.rate_limits = self._rate_limits(response.headers.raw)
                for event in iter_sse(_until(response.iter_lines(), deadline, response)):
                    yield from decoder.feed(event)
            finally:
                response.close()
            yield from decoder.end()
        except httpx.HTTPError as exc:
            raise decoder.failed(classify_transport(self.errors, exc, self._seconds(timeout))) from exc

    async def astream(
        self, messages: Messages, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[StreamChunk]:
        request = self._prepare(messages, params, stream=True)
        decoder = self.stream_decoder()
        headers, body = self._wire(request)
        try:
            upstream = self.clients.upstream(self._origin)
            async with upstream.stream(
                request.method, request.url, headers, body, self._seconds(timeout)
            ) as reply:
                if not _is_event_stream(reply.status, reply.headers):
                    whole = Answer(reply.status, reply.headers, reply.raw_headers, await reply.read())
                    for chunk in self._whole(whole):
                        yield chunk
                    return
                decoder.rate_limits = self._rate_limits(reply.raw_headers)
                async for events in reply.events():
                    for event in events:
                        for chunk in decoder.feed(event):
                            yield chunk
            for chunk in decoder.end():
                yield chunk
        except TRANSPORT_ERRORS as exc:
            raise decoder.failed(classify_transport(self.errors, exc, self._seconds(timeout))) from exc

    # -- the shared core ---------------------------------------------------------------------

    def _prepare(self, messages: Messages, params: Mapping[str, Any], *, stream: bool) -> HTTPRequest:
        self.check_enabled()
        try:
            return self.build_request(messages, merge_params(self.defaults, params), stream=stream)
        except _SHAPE_ERRORS as exc:
            raise self.errors.error(
                BadRequestError,
                f"cannot build a {self.kind} request from these messages and parameters ({type(exc).__name__}: "
                f"{exc}); fix the request",
            ) from None

    def _wire(self, request: HTTPRequest) -> tuple[dict[str, str], bytes | None]:
        """The headers and encoded body of ``request``, for either client."""
        if request.json is None:
            return self._headers, None
        # Encoded here rather than by the client, so a body that cannot be JSON (NaN, a lone
        # surrogate) is the caller's fault, told as such, and not an unexpected failure.
        try:
            return self._json_headers, encode_json(request.json)
        except (ValueError, TypeError, RecursionError) as exc:
            raise unencodable(self.errors, exc) from None

    def _open(self, request: HTTPRequest, timeout: float | None) -> httpx.Response:
        """``request`` sent by the sync client; the response's body is not read yet (close it)."""
        headers, content = self._wire(request)
        sender = self.clients.sync_sender(self._origin)
        # The usual attempt timeout is the model's own: its Timeout is built once.
        if timeout is None or timeout == self._timeout.read:
            bound = self._timeout
        else:
            bound = httpx.Timeout(max(timeout, _MIN_TIMEOUT))
        return sender.open(
            request.method, _parsed_url(request.url), self._sent(sender, headers), content, bound
        )

    def _sent(self, sender: SyncSender, headers: Mapping[str, str]) -> httpx.Headers:
        """``headers`` as sent: over the client's defaults, merged once for this provider's own."""
        merged = self._merged
        if merged is None or merged[0] is not sender.defaults:
            merged = self._merged = (
                sender.defaults,
                sender.with_defaults(self._headers),
                sender.with_defaults(self._json_headers),
            )
        if headers is self._json_headers:
            return merged[2]
        if headers is self._headers:
            return merged[1]
        return sender.with_defaults(headers)

    def _send(self, request: HTTPRequest, timeout: float | None) -> httpx.Response:
        try:
            response = self._open(request, timeout)
            try:
                response.read()
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise classify_transport(self.errors, exc, self._seconds(timeout)) from exc
        return response

    async def _afetch(self, request: HTTPRequest, timeout: float | None) -> Answer:
        headers, body = self._wire(request)
        seconds = self._seconds(timeout)
        try:
            upstream = self.clients.upstream(self._origin)
            return await upstream.fetch(request.method, request.url, headers, body, seconds)
        except TRANSPORT_ERRORS as exc:
            raise classify_transport(self.errors, exc, seconds) from exc

    def _reply(self, answer: Answer, start: float, parse: Any = None) -> Any:
        """The response for a completed exchange (``parse``d, by default as a chat reply), or its
        classified error."""
        elapsed = _perf() - start
        reply = self.parsed(answer, parse or self.parse_response)
        reply.response_time = elapsed
        reply.rate_limits = self._rate_limits(answer.raw_headers)
        return reply

    def parsed(self, answer: Answer, parse: Any) -> Any:
        """``parse(JSON body)`` of a completed exchange, or its classified error."""
        status, body = answer.status_code, answer.content
        if not 200 <= status < 300:
            raise classify_status(self.errors, status, answer.headers, body)
        try:
            data = jsonio.loads(body)
        except ValueError:
            raise malformed(self.errors, "the body is not JSON", body, status_code=status) from None
        try:
            return parse(data)
        except _SHAPE_ERRORS as exc:
            why = f"unexpected shape: {type(exc).__name__}: {exc}"
            raise malformed(self.errors, why, body, status_code=status) from None

    def _rate_limits(self, raw_headers: Iterable[tuple[bytes, bytes]]) -> Any:
        """What the answer's rate-limit headers say, unless the model turned pacing off."""
        return rate_limits_from_raw(raw_headers) if self.model.pace_from_headers else None

    def _probed(self, answer: Answer) -> None:
        if not 200 <= answer.status_code < 300:
            raise classify_status(self.errors, answer.status_code, answer.headers, answer.content)

    def _whole(self, answer: Answer) -> Sequence[StreamChunk]:
        """Chunks for a streamed request answered with a whole body: an error, or a JSON reply."""
        reply = self._reply(answer, _perf())
        final = StreamChunk(
            tool_calls=reply.tool_calls,
            finish_reason=reply.finish_reason,
            usage=reply.token_usage,
            instance=reply.instance,
            model=reply.model,
            rate_limits=reply.rate_limits,
        )
        if not reply.content:
            return (final,)
        return (StreamChunk(delta=reply.content, instance=reply.instance, model=reply.model), final)


def _is_event_stream(status: int, headers: Mapping[str, str]) -> bool:
    return 200 <= status < 300 and "text/event-stream" in headers.get("content-type", "")
