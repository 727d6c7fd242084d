"""Embeddings as the fake provider and the simulated provider give them: repeatable vectors.

A vector depends only on its input (text, or a list of token ids) and its length, so tests can
compare what two instances answered, and equal inputs get equal vectors wherever they go.
"""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Any

from actors.messages import embedding_input_problem as input_problem

__all__ = ["DEFAULT_DIMENSIONS", "input_problem", "token_count", "vector"]

#: Length of a vector when the request names no ``dimensions``.
DEFAULT_DIMENSIONS = 16


def vector(item: Any, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A unit vector of ``dimensions`` floats drawn from a hash of ``item``."""
    seed = item if isinstance(item, str) else ",".join(str(t) for t in item)
    out: list[float] = []
    block = 0
    while len(out) < dimensions:
        digest = hashlib.sha256(f"{block}:{seed}".encode()).digest()
        out.extend(v / 2**31 - 1.0 for v in struct.unpack("<8I", digest))
        block += 1
    out = out[:dimensions]
    norm = math.sqrt(sum(v * v for v in out)) or 1.0
    return [round(v / norm, 6) for v in out]


def token_count(item: Any) -> int:
    """Tokens an input counts for: its words, or its token ids."""
    return max(1, len(item.split())) if isinstance(item, str) else max(1, len(item))
