"""The ``llm-actors serve`` daemon: one ``Runtime`` behind OpenAI- and Anthropic-shaped HTTP APIs.

Modules, one concept each::

    server.py         uvicorn, signals, drain on SIGTERM, reload on SIGHUP
    app.py            routes and wiring (Starlette)
    middleware.py     request id, access log, in-flight count, drain, auth (pure ASGI)
    state.py          what the app serves from: the runtime, models, metrics, reloads
    models.py         which wrapper a request's ``model`` names (wrappers, pools, group refs)
    calls.py          one request through a wrapper, keeping its attempts
    chat.py           a chat request in canonical form, and the field checks both APIs share
    openai_api.py     /v1/chat/completions: parsing, responses, SSE chunks, error bodies
    anthropic_api.py  /v1/messages: the same in Anthropic's shapes
    responses_api.py  /v1/responses: OpenAI's Responses API over the same chat requests
    embeddings_api.py /v1/embeddings: parsing and the list of embeddings (float or base64)
    count_tokens.py   /v1/messages/count_tokens: an Anthropic instance's count, or an estimate
    trail.py          the x-llm-actors-* response headers (who answered, fallback, overhead)
    errors.py         LLMError -> HTTP status, message and Retry-After
    metrics.py        Prometheus metrics on a registry of its own
    auth.py           the optional bearer key
    accesslog.py      structlog JSON configuration

Starlette, uvicorn and prometheus-client are an extra (``pip install 'llm-actors[daemon]'``);
``require()`` says which are missing instead of failing on an import deep inside.
"""

from __future__ import annotations

import importlib.util

__all__ = ["INSTALL_HINT", "MissingDependencies", "require"]

INSTALL_HINT = "pip install 'llm-actors[daemon]'"

_NEEDED = {"starlette": "starlette", "uvicorn": "uvicorn", "prometheus_client": "prometheus-client"}


class MissingDependencies(ImportError):
    """The daemon's extra packages are not installed."""


def require() -> None:
    """Raise ``MissingDependencies`` naming every daemon package that is not installed."""
    missing = [dist for module, dist in _NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingDependencies(
            f"the daemon needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed; "
            f"run: {INSTALL_HINT}"
        )
