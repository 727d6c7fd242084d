"""The provider interface, and the sync and async HTTP drivers every HTTP provider shares.

A provider is its model's configuration plus pure codec functions: build a request from
canonical messages and parameters, parse a reply body, turn stream events into chunks. The
interface lives in three modules, re-exported here so callers import from one place:

- ``actors.providers.provider``: ``Provider``, the interface, and the boundary its public calls
  pass (anything that is not an ``LLMError`` becomes a typed ``LLMCallError``);
- ``actors.providers.http_provider``: ``HTTPProvider``, the sync and async HTTP drivers and their
  shared decision core;
- ``actors.providers.codec``: what the codecs share (``HTTPRequest``, ``merge_params``,
  ``text_of``, ``encode_json``, ``StreamDecoder``, ``ToolCallAssembler``).
"""

from __future__ import annotations

from actors.providers.codec import (
    HTTPRequest,
    Messages,
    StreamDecoder,
    ToolCallAssembler,
    encode_json,
    merge_params,
    text_of,
)
from actors.providers.http_provider import HTTPProvider
from actors.providers.provider import Provider

__all__ = [
    "HTTPProvider",
    "HTTPRequest",
    "Messages",
    "Provider",
    "StreamDecoder",
    "ToolCallAssembler",
    "encode_json",
    "merge_params",
    "text_of",
]
