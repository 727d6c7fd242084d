"""Chat with a running daemon (``--url``) or an in-process runtime (``--config``); no prompt: interactive.

Prints the answer on stdout (as it arrives with ``--stream``), tool calls as JSON lines, and on
stderr which instance answered after how many attempts. Exit status 1 when the request failed.
Without a prompt it reads one message per line and keeps the conversation (``/reset`` forgets
it, ``/exit`` or Ctrl-D ends it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["add_arguments", "run"]

DEFAULT_URL = "http://127.0.0.1:8080"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("prompt", nargs="?", default=None, help="the user message (none: an interactive session)")
    add("--model", required=True, metavar="NAME", help="a wrapper, polling pool or task-group reference")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--url", default=None, help=f"a running daemon (default: $LLM_ACTORS_URL, else {DEFAULT_URL})"
    )
    where.add_argument(
        "--config", default=None, metavar="DIR", help="run a runtime in-process on this configuration"
    )
    add("--simulate", action="store_true", help="with --config: simulated providers, no keys needed")
    add("--stream", action="store_true", help="print the answer as it arrives")
    add("--system", default=None, metavar="TEXT", help="a system message before the prompt")
    add("--max-tokens", type=int, default=None, metavar="N")
    add("--temperature", type=float, default=None)
    add("--api-key", default=None, metavar="KEY", help="the daemon's key (default: $LLM_ACTORS_API_KEY)")
    add(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="HTTP timeout with --url (default: 120)",
    )


def run(args: argparse.Namespace) -> int:
    params = {
        k: v for k, v in (("max_tokens", args.max_tokens), ("temperature", args.temperature)) if v is not None
    }
    if args.config is None and args.simulate:
        print(
            "error: --simulate applies to --config (a daemon chooses at start: llm-actors serve --simulate)",
            file=sys.stderr,
        )
        return 2
    if args.config is not None:
        return _in_process(args, params)
    return _turns(args, lambda messages, reply: _over_http(args, messages, params, reply))


Send = Callable[[list[dict[str, Any]], list[str]], int]


def _start(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"role": "system", "content": args.system}] if args.system else []


def _turns(args: argparse.Namespace, send: Send) -> int:
    """One prompt, or an interactive session: each line a user turn, the replies kept."""
    messages = _start(args)
    if args.prompt is not None:
        return send([*messages, {"role": "user", "content": args.prompt}], [])
    interactive = sys.stdin.isatty()
    if interactive:
        print(
            f"Chatting with {args.model}; /reset forgets the conversation, /exit or Ctrl-D ends.",
            file=sys.stderr,
        )
    code = 0
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            if interactive:
                print(file=sys.stderr)
            return code
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return code
        if text == "/reset":
            messages = _start(args)
            continue
        turn = [*messages, {"role": "user", "content": text}]
        reply: list[str] = []
        code = send(turn, reply)
        if code == 0:  # a failed turn is not part of the conversation
            messages = [*turn, {"role": "assistant", "content": "".join(reply)}]


# -- against a daemon ---------------------------------------------------------------------------


def _over_http(
    args: argparse.Namespace, messages: list[dict[str, Any]], params: dict[str, Any], reply: list[str]
) -> int:
    import httpx

    url = (args.url or os.environ.get("LLM_ACTORS_URL") or DEFAULT_URL).rstrip("/")
    key = args.api_key or os.environ.get("LLM_ACTORS_API_KEY")
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": args.model, "messages": messages, **params}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=args.timeout) as client:
            if not args.stream:
                response = client.post("/v1/chat/completions", json=body)
                if response.status_code != 200:
                    return _http_error(response.status_code, response.text)
                data = response.json()
                message = data["choices"][0]["message"]
                if message.get("content"):
                    print(message["content"], flush=True)
                    reply.append(message["content"])
                for call in message.get("tool_calls") or ():
                    print(json.dumps({"tool_call": call}))
                _trailer(response.headers, data.get("usage"))
                return 0
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    return _http_error(response.status_code, response.read().decode(errors="replace"))
                return _print_stream(response, reply)
    except httpx.HTTPError as exc:
        print(
            f"error: cannot reach the daemon at {url}: {exc}; is `llm-actors serve` running?", file=sys.stderr
        )
        return 1


def _events(response: Any) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def _print_stream(response: Any, reply: list[str]) -> int:
    usage = None
    for event in _events(response):
        if "error" in event:
            print(file=sys.stdout, flush=True)
            print(f"error: the stream failed part-way: {event['error'].get('message')}", file=sys.stderr)
            return 1
        usage = event.get("usage") or usage
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                print(delta["content"], end="", flush=True)
                reply.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                print(json.dumps({"tool_call": call}))
    print()
    _trailer(response.headers, usage)
    return 0


def _trailer(headers: Any, usage: Any) -> None:
    tokens = f", {usage.get('total_tokens')} tokens" if isinstance(usage, dict) else ""
    print(
        f"[{headers.get('x-llm-actors-instance', '?')} via {headers.get('x-llm-actors-target', '?')}, "
        f"{headers.get('x-llm-actors-attempts', '?')} attempt(s){tokens}]",
        file=sys.stderr,
    )


def _http_error(status: int, text: str) -> int:
    from actors.cli.output import daemon_error

    print(f"error: HTTP {status}: {daemon_error(status, text)}", file=sys.stderr)
    return 1


# -- in-process ---------------------------------------------------------------------------------


def _in_process(args: argparse.Namespace, params: dict[str, Any]) -> int:
    from actors.daemon.errors import APIError
    from actors.daemon.models import ModelDirectory
    from actors.errors import ConfigError
    from actors.runtime import Runtime

    try:
        runtime = Runtime.from_config(args.config, simulate=args.simulate)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with runtime:
        try:
            where = f"llm-actors check --config {shlex.quote(args.config)}"
            wrapper = ModelDirectory(runtime).get(args.model, listed_by=where)
        except APIError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        return _turns(args, lambda messages, reply: _local(args, wrapper, messages, params, reply))


def _local(
    args: argparse.Namespace,
    wrapper: Any,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    reply: list[str],
) -> int:
    from actors.errors import LLMError, NoCapacityError

    try:
        if args.stream:
            instance, last = "?", None
            for chunk in wrapper.stream_generate(messages, params):
                print(chunk.delta, end="", flush=True)
                reply.append(chunk.delta)
                instance, last = chunk.instance or instance, chunk
                for call in chunk.tool_calls:
                    print(json.dumps({"tool_call": call.to_openai()}))
            print()
            tokens = f", {last.usage.total_tokens} tokens" if last is not None and last.usage else ""
            print(f"[{instance}{tokens}]", file=sys.stderr)
            return 0
        response = wrapper.generate(messages, params)
    except LLMError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if isinstance(exc, NoCapacityError) and not args.simulate:
            print("hint: --simulate answers from simulated providers, without keys", file=sys.stderr)
        return 1
    if response.content:
        print(response.content, flush=True)
        reply.append(response.content)
    for call in response.tool_calls:
        print(json.dumps({"tool_call": call.to_openai()}))
    print(
        f"[{response.instance} via {response.target}, {len(response.attempts)} attempt(s), "
        f"{response.token_usage.total_tokens} tokens]",
        file=sys.stderr,
    )
    return 0
