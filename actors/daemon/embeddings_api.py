"""``POST /v1/embeddings`` in OpenAI's shapes: request parsing and the list of embeddings.

``input`` is a string, an array of strings, an array of token ids, or an array of token-id
arrays. Upstream calls always ask for floats; ``encoding_format: base64`` is encoded here (little-
endian float32, as OpenAI sends it and the SDKs decode it), so any instance can answer either.
``dimensions`` and ``user`` reach the instance; a wrapper over chat models answers 400.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from typing import Any

from actors.daemon.chat import bad_field, check_int, check_type
from actors.messages import embedding_input_problem
from actors.response import EmbeddingResponse

__all__ = ["API", "EmbeddingRequest", "parse", "render"]

API = "embeddings"

_FORMATS = ("float", "base64")
_KNOWN = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    inputs: Any
    encoding_format: str = "float"
    params: dict[str, Any] = field(default_factory=dict)


def parse(body: dict[str, Any]) -> EmbeddingRequest:
    """An embeddings body as an ``EmbeddingRequest``; ``APIError`` 400 naming the bad field."""
    model = check_type(body, "model", str, required=True)
    if "input" not in body:
        raise bad_field("input", "is required")
    problem = embedding_input_problem(body["input"])
    if problem is not None:
        raise bad_field("input", problem.removeprefix("'input' "))
    encoding = check_type(body, "encoding_format", str) or "float"
    if encoding not in _FORMATS:
        raise bad_field("encoding_format", f"must be float or base64, not {encoding!r}")
    params: dict[str, Any] = {}
    dimensions = check_int(body, "dimensions")
    if dimensions is not None:
        params["dimensions"] = dimensions
    user = check_type(body, "user", str)
    if user:
        params["user"] = user
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise bad_field(unknown[0], f"is not an embeddings parameter; use {', '.join(sorted(_KNOWN))}")
    return EmbeddingRequest(model, body["input"], encoding, params)


def _encode(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def render(result: EmbeddingResponse, request: EmbeddingRequest) -> dict[str, Any]:
    """OpenAI's list of embedding objects, in input order."""
    encode = _encode if request.encoding_format == "base64" else list
    usage = result.token_usage
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(v)}
            for i, v in enumerate(result.embeddings)
        ],
        "model": result.model or request.model,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "total_tokens": usage.total_tokens or usage.prompt_tokens,
        },
    }
