"""The provider interface, and the boundary every provider's public calls pass.

A provider is its model's configuration plus pure codec functions (``actors.providers.codec``);
``HTTPProvider`` (``actors.providers.http_provider``) does the I/O around them for HTTP APIs.

Every provider's ``call``/``acall``/``stream``/``astream``/``probe``/``aprobe`` (subclasses' and
registered ones' alike) passes one boundary: whatever it raises that is not an ``LLMError``
becomes a typed ``LLMCallError`` (``errors.unexpected``), so no bare exception reaches a caller.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from actors.config.models import ModelConfig
from actors.errors import BadRequestError, LLMCallError, LLMError
from actors.providers.clients import HTTPClients
from actors.providers.codec import Messages, merge_params
from actors.providers.errors import ErrorContext, disabled, unexpected
from actors.response import EmbeddingResponse, LLMResponse, StreamChunk
from actors.secrets import shown_url

__all__ = ["Provider"]

_MIN_TIMEOUT = 0.001


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
