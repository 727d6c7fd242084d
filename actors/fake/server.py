"""The fake provider's HTTP side: one h11 connection per socket, routing, and the control API.

Everything here runs on the server's event loop. A request is answered synchronously inside
``data_received`` unless its plan has to wait (latency, chunk delay, hang); only then is a task
created, so the common path costs no task, thread or timer.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import socket
import struct
from typing import Any
from urllib.parse import unquote

import h11

from actors.fake.faults import Fault, FaultBook
from actors.fake.plan import Plan, plan_chat, plan_count_tokens, plan_embeddings, plan_models
from actors.fake.recorder import InstanceStats, Recorder
from actors.fake.shapes import SHAPES, Shape

__all__ = ["Connection", "Hold", "Hub"]

_CLOSE = object()  # step: close the connection (after flushing what was written)
_CLOSE_AFTER = object()  # step: close it after a complete answer (a keep-alive timer firing)
_RESET = object()  # step: reset the connection
_HANG = object()  # step: wait until the connection or the server goes away
_HOLD = object()  # step: where a hold that lets part of a stream out waits (see ``Hold``)
_JSON = ("content-type", "application/json")
_SSE = (("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"))
_CHAT_APIS = {"chat/completions": "openai", "messages": "anthropic"}
# endpoint -> (the api the recorder counts it under, the shape it answers in, its planner)
_OTHER_APIS = {
    "embeddings": ("embeddings", "openai", plan_embeddings),
    "messages/count_tokens": ("count_tokens", "anthropic", plan_count_tokens),
}
_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Hold:
    """Requests of one instance wait on ``event`` until released: before their plan, or, with
    ``after`` > 0, a stream once its head, opening events and first ``after`` pieces of content
    are out (other answers still wait before their plan)."""

    __slots__ = ("after", "event")

    def __init__(self, after: int = 0) -> None:
        self.event = asyncio.Event()
        self.after = after


class Hub:
    """Loop-side state every connection shares: faults, the recorder, open connections."""

    def __init__(self, faults: FaultBook, recorder: Recorder) -> None:
        self.faults = faults
        self.recorder = recorder
        self.connections: set[Connection] = set()
        self.seq = itertools.count(1)
        # Instances whose requests wait (counted in flight) until released; see ``hold``.
        self.holds: dict[str, Hold] = {}

    def protocol(self) -> Connection:
        return Connection(self)

    def abort_all(self) -> list[asyncio.Task[None]]:
        """Abort every open connection (keep-alive ones too); returns the tasks to await."""
        tasks = []
        for conn in list(self.connections):
            if conn.task is not None:
                conn.task.cancel()
                tasks.append(conn.task)
            conn.transport.abort()
        return tasks

    def hold(self, instance: str, after: int = 0) -> None:
        """Make new requests of ``instance`` (not model listings) wait until ``release``: before
        their plan, or after ``after`` pieces of a stream's content (see ``Hold``). An instance
        already held keeps its hold."""
        self.holds.setdefault(instance, Hold(after))

    def release(self, instance: str | None = None) -> int:
        """Let the held requests of ``instance`` (or of all) go on; returns how many were waiting."""
        names = list(self.holds) if instance is None else [instance]
        waiting = 0
        for name in names:
            hold = self.holds.pop(name, None)
            if hold is not None:
                waiting += sum(1 for c in self.connections if c.held is hold.event)
                hold.event.set()
        return waiting

    def reset(self) -> None:
        self.release()  # a test that failed while holding must not leave requests stuck
        self.faults.clear()
        self.recorder.reset()


class Connection(asyncio.Protocol):
    """One client socket: parses requests with h11 and carries out their plans in order.

    There is no ``eof_received``: a client that shuts its side down has given up, so the
    connection closes and any request still waiting (latency, hang) ends with it.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.h11 = h11.Connection(h11.SERVER)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self._request: h11.Request | None = None
        self._body: list[bytes] = []
        self._exchange: InstanceStats | None = None  # the request in flight, until settled
        self._status: int | None = None
        self._head_sent = False
        self.held: asyncio.Event | None = None  # the hold this connection's request waits on
        self._reset_next = False  # a close_on_reuse answer went out: reset on the next request

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.hub.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._reset_next:
            self._reset()
            return
        self.h11.receive_data(data)
        self._pump()

    def _reset(self) -> None:
        # No linger: the close sends a reset, as a socket closed with data unread does.
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.hub.connections.discard(self)
        self._settle(self._status if self._head_sent else None)
        if self.task is not None:
            self.task.cancel()

    # -- request cycle ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Handle every complete request h11 has buffered, until one has to wait."""
        conn = self.h11
        while not self.closed:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._reject(exc)
                return
            if isinstance(event, h11.Data):
                self._body.append(event.data)
            elif isinstance(event, h11.Request):
                self._request = event
                self._body = []
                if conn.client_is_waiting_for_100_continue:  # curl asks before sending > 1 KiB
                    self.transport.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            elif isinstance(event, h11.EndOfMessage) and self._request is not None:
                if not self._dispatch(self._request, b"".join(self._body)):
                    return
            elif isinstance(event, h11.ConnectionClosed):
                self.transport.close()
                return
            else:  # NEED_DATA, or PAUSED while a response is still being sent
                return

    def _next_cycle(self) -> bool:
        """Ready the connection for the next request; False if it must close instead."""
        conn = self.h11
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            self.transport.close()
            return False
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            self.transport.close()
            return False
        return True

    def _reject(self, exc: h11.RemoteProtocolError) -> None:
        headers = [("content-length", "0"), ("connection", "close")]
        try:
            data = self.h11.send(h11.Response(status_code=exc.error_status_hint, headers=headers))
            self.transport.write(data + self.h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass  # too broken to answer at all
        self.transport.close()

    def _settle(self, status: int | None) -> None:
        if self._exchange is not None:
            stats, self._exchange = self._exchange, None
            self.hub.recorder.end(stats, status)

    # -- routing ------------------------------------------------------------------------------

    def _dispatch(self, request: h11.Request, raw: bytes) -> bool:
        """Answer one request; True if the connection is ready for the next one right away."""
        path = request.target.split(b"?", 1)[0].decode("latin-1")
        method = request.method
        parts = path.strip("/").split("/", 2)
        head = parts[0]
        if head.startswith("_"):
            return self._control(method, parts, raw)
        rest = path[len(head) + 2 :]
        instance = unquote(head)
        if rest.startswith("v1/") and instance:
            endpoint = rest[3:].rstrip("/")
            api = _CHAT_APIS.get(endpoint)
            if api is not None:
                if method != b"POST":
                    return self._answer(405, {"error": f"use POST for {path}"}, [("allow", "POST")])
                return self._chat(instance, api, request, raw)
            if endpoint in _OTHER_APIS:
                if method != b"POST":
                    return self._answer(405, {"error": f"use POST for {path}"}, [("allow", "POST")])
                return self._other(instance, endpoint, request, raw)
            if endpoint == "models":
                if method != b"GET":
                    return self._answer(405, {"error": f"use GET for {path}"}, [("allow", "GET")])
                return self._models(instance, request)
        shape = SHAPES["anthropic" if "anthropic-version" in _headers(request) else "openai"]
        message = f"Unknown request URL: {method.decode()} {path}. Please check the URL for typos."
        return self._send_body(404, shape.error(404, "unknown_url", message=message))

    def _chat(self, instance: str, api: str, request: h11.Request, raw: bytes) -> bool:
        headers = _headers(request)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self._exchange = self.hub.recorder.begin(instance, api, body, headers, _query(request))
        fault = self.hub.faults.draw(instance)
        shape = SHAPES[api]
        seq = next(self.hub.seq)
        hold = self.hub.holds.get(instance)
        steps = self._steps(plan_chat(shape, body, fault, seq), shape, seq, hold)
        return self._play(self._held(hold, steps))

    def _other(self, instance: str, endpoint: str, request: h11.Request, raw: bytes) -> bool:
        api, shape_name, planner = _OTHER_APIS[endpoint]
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self._exchange = self.hub.recorder.begin(instance, api, body, _headers(request), _query(request))
        shape = SHAPES[shape_name]
        plan = planner(shape, body, self.hub.faults.draw(instance))
        return self._play(
            self._held(self.hub.holds.get(instance), self._steps(plan, shape, next(self.hub.seq)))
        )

    def _held(self, hold: Hold | None, steps: list[Any]) -> list[Any]:
        """``steps`` with the instance's hold in them, if it has one: where ``_steps`` marked it
        in a stream, else first (model listings are never held: health probes use them)."""
        if hold is not None:
            self.held = hold.event
            if _HOLD in steps:
                steps[steps.index(_HOLD)] = hold.event
            else:
                steps.insert(0, hold.event)
        return steps

    def _models(self, instance: str, request: h11.Request) -> bool:
        headers = _headers(request)
        # Health probes of either provider call this; answer in the shape the caller speaks.
        shape = SHAPES["anthropic" if "anthropic-version" in headers else "openai"]
        self._exchange = self.hub.recorder.begin(instance, "models", None, headers, _query(request))
        plan = plan_models(shape, self.hub.faults.draw(instance))
        return self._play(self._steps(plan, shape, next(self.hub.seq)))

    def _control(self, method: bytes, parts: list[str], raw: bytes) -> bool:
        hub = self.hub
        name = parts[0]
        if name == "_stats" and len(parts) == 1:
            if method != b"GET":
                return self._answer(405, {"error": "use GET /_stats"}, [("allow", "GET")])
            return self._answer(200, hub.recorder.stats())
        if name == "_reset" and len(parts) == 1:
            if method != b"POST":
                return self._answer(405, {"error": "use POST /_reset"}, [("allow", "POST")])
            hub.reset()
            return self._answer(200, {"reset": True})
        if name == "_control" and len(parts) == 2 and parts[1]:
            instance = unquote(parts[1])
            if method == b"DELETE":
                hub.faults.clear(instance)
                return self._answer(200, {"instance": instance, "fault": None})
            if method == b"GET":
                fault = hub.faults.get(instance)
                return self._answer(200, {"instance": instance, "fault": _fault_json(fault)})
            if method != b"POST":
                return self._answer(
                    405, {"error": "use POST, GET or DELETE"}, [("allow", "POST, GET, DELETE")]
                )
            try:
                fields = json.loads(raw or b"{}")
                if not isinstance(fields, dict):
                    raise ValueError("the body must be a JSON object of fault fields")
                fault = Fault.parse(fields)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                return self._answer(400, {"error": str(exc)})
            hub.faults.set(instance, fault)
            return self._answer(200, {"instance": instance, "fault": _fault_json(fault)})
        if name == "_hold" and len(parts) == 2 and parts[1]:
            instance = unquote(parts[1])
            if method == b"POST":
                try:
                    fields = json.loads(raw or b"{}")
                    after = fields.get("after", 0) if isinstance(fields, dict) else None
                    if type(after) is not int or after < 0:
                        raise ValueError('the body may only say {"after": n}, n >= 0 pieces of a stream')
                except ValueError as exc:
                    return self._answer(400, {"error": str(exc)})
                hub.hold(instance, after)
                answer: dict[str, Any] = {"instance": instance, "held": True}
                return self._answer(200, {**answer, "after": after} if after else answer)
            if method == b"DELETE":
                return self._answer(200, {"instance": instance, "released": hub.release(instance)})
            return self._answer(405, {"error": "use POST or DELETE"}, [("allow", "POST, DELETE")])
        usage = (
            "control endpoints: GET /_stats, POST /_reset, POST|GET|DELETE /_control/{instance},"
            " POST|DELETE /_hold/{instance}"
        )
        return self._answer(404, {"error": usage})

    # -- responses ----------------------------------------------------------------------------

    def _answer(self, status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> bool:
        return self._send_body(status, _dumps(obj), headers)

    def _send_body(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bool:
        send = self.h11.send
        head = [_JSON, ("content-length", str(len(body))), *(headers or ())]
        response = h11.Response(status_code=status, headers=head, reason=_REASONS.get(status, b""))
        self.transport.write(send(response) + send(h11.Data(data=body)) + send(h11.EndOfMessage()))
        return self._next_cycle()

    def _steps(self, plan: Plan, shape: Shape, seq: int, hold: Hold | None = None) -> list[Any]:
        """Compile a plan into steps: bytes to write, seconds to wait, an event to wait on
        (a hold, put in by ``_held``; a stream's marked by _HOLD), or _HANG / _CLOSE / _CLOSE_AFTER / _RESET."""
        self._status = plan.status
        self._reset_next = plan.close_on_reuse
        steps: list[Any] = []
        if plan.latency:
            steps.append(plan.latency)
        if plan.hang:
            steps.append(_HANG)
            return steps
        if plan.status is None:
            steps.append(_RESET if plan.reset else _CLOSE)
            return steps
        send = self.h11.send
        request_id = (shape.request_id_header, f"req_fake{seq}")
        if plan.body is not None:
            headers = [_JSON, request_id, *plan.headers, ("content-length", str(len(plan.body)))]
            response = h11.Response(
                status_code=plan.status, headers=headers, reason=_REASONS.get(plan.status, b"")
            )
            steps.append(send(response) + send(h11.Data(data=plan.body)) + send(h11.EndOfMessage()))
            if plan.close_after:
                steps.append(_CLOSE_AFTER)
            return steps
        headers = [*_SSE, request_id, *plan.headers, ("transfer-encoding", "chunked")]
        out = send(
            h11.Response(status_code=plan.status, headers=headers, reason=_REASONS.get(plan.status, b""))
        )
        # The event a stream's hold lets out last (none: the hold waits before the plan).
        split = plan.opening + hold.after - 1 if hold is not None and hold.after else -1
        for i, event in enumerate(plan.events):
            if plan.chunk_delay and i:
                steps += [out, plan.chunk_delay]
                out = b""
            out += send(h11.Data(data=event))
            if i == split:
                steps += [out, _HOLD]
                out = b""
        if split >= len(plan.events):  # fewer pieces than the hold lets out: it waits before the end
            steps += [out, _HOLD]
            out = b""
        if plan.cut:
            steps += [out, plan.chunk_delay, _CLOSE] if plan.chunk_delay else [out, _CLOSE]
        else:
            steps.append(out + send(h11.EndOfMessage()))
            if plan.close_after:
                steps.append(_CLOSE_AFTER)
        return steps

    def _play(self, steps: list[Any], start: int = 0) -> bool:
        """Carry out steps until one has to wait; True if the request is done and the
        connection is ready for the next one."""
        last = len(steps) - (2 if steps and steps[-1] is _CLOSE_AFTER else 1)  # the answer's last write
        for i in range(start, len(steps)):
            step = steps[i]
            if type(step) is bytes:
                if i == last:
                    # Settle before the last write, so a client that has its answer also sees it counted.
                    self._settle(self._status)
                self._head_sent = True
                self.transport.write(step)
            elif step is _CLOSE or step is _CLOSE_AFTER or step is _RESET:
                self._settle(self._status)
                if step is _RESET:
                    self._reset()
                else:
                    self.transport.close()
                return False
            else:
                self.task = asyncio.get_running_loop().create_task(self._resume(steps, i))
                return False
        self._head_sent = False
        return self._next_cycle()

    async def _resume(self, steps: list[Any], i: int) -> None:
        step = steps[i]
        if step is _HANG:
            await asyncio.get_running_loop().create_future()  # released by cancellation only
        elif isinstance(step, asyncio.Event):
            try:
                await step.wait()
            finally:
                self.held = None
        else:
            await asyncio.sleep(step)
        self.task = None
        if self._play(steps, i + 1):
            self._pump()


def _query(request: h11.Request) -> str:
    return request.target.partition(b"?")[2].decode("latin-1")


def _headers(request: h11.Request) -> dict[str, str]:
    # h11 has already lower-cased the names.
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}


def _fault_json(fault: Fault | None) -> dict[str, Any] | None:
    return fault.model_dump(exclude_defaults=True) if fault is not None else None
