"""HTTPProvider: the sync and async HTTP drivers every HTTP provider shares.

Subclasses supply the codec (``actors.providers.codec``); this class does the I/O around it. The
sync and async twins differ only in how they send and read, so both go through one decision core
(``_prepare``, ``_reply``, ``_probed``, the stream decoder) and fail with the same errors, built
in ``actors.providers.errors``.

A provider holds no per-call state, so one object serves any number of threads and event loops
at once; its HTTP clients come from the shared ``HTTPClients``.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote_to_bytes

import httpx

from actors import jsonio
from actors.config.models import ModelConfig
from actors.errors import BadRequestError, ConfigError
from actors.providers.clients import HTTPClients, SyncSender, default_clients, origin_of
from actors.providers.codec import (
    _SHAPE_ERRORS,
    HTTPRequest,
    Messages,
    StreamDecoder,
    encode_json,
    merge_params,
)
from actors.providers.errors import classify_status, classify_transport, malformed, unencodable
from actors.providers.provider import _MIN_TIMEOUT, Provider
from actors.providers.sse import iter_sse
from actors.providers.upstream import TRANSPORT_ERRORS, Answer
from actors.resilience.pacing import rate_limits_from_raw
from actors.response import EmbeddingResponse, LLMResponse, StreamChunk
from actors.secrets import mask_in_httpx_log, shown_url

__all__ = ["HTTPProvider"]

_perf = time.perf_counter

_JSON_TYPE = {"content-type": "application/json"}


@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx.URL:
    """``url`` as httpx parses it, once: httpx parses a string URL on every request (~10 µs),
    and a provider requests the same few URLs over and over."""
    return httpx.URL(url)


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
