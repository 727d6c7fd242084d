"""The h1 upstream against a scripted HTTP/1.1 server on loopback: what it reuses and what it
drops, how bodies are framed and decoded, and TLS."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from actors.providers.h1 import H1Upstream

Answer = Callable[[bytes], bytes]  # a request's bytes to the response's bytes


def _ok(body: bytes = b'{"ok": true}', *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", "content-type: application/json", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Scripted:
    """A server answering each request with the next of ``answers``; it counts connections."""

    def __init__(self, answers: list[bytes | Callable[[asyncio.StreamWriter], object]]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0)
                if callable(answer):
                    result = answer(writer)
                    if asyncio.iscoroutine(result):
                        await result
                else:
                    writer.write(answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve(script: Scripted, tls: ssl.SSLContext | None = None) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    return server, f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}/v1/x"


@pytest.fixture
async def up() -> AsyncIterator[H1Upstream]:
    upstream = H1Upstream(httpx.Limits(keepalive_expiry=30), ssl.create_default_context())
    yield upstream
    await upstream.aclose()


async def test_a_connection_is_reused_unless_its_answer_closes_it(up: H1Upstream) -> None:
    script = Scripted([_ok(), _ok(), _ok(b"{}", "connection: close"), _ok()])
    server, url = await _serve(script)
    async with server:
        for _ in range(3):
            answer = await up.fetch("POST", url, {"content-type": "application/json"}, b"{}", 5)
            assert answer.status_code == 200
        assert script.connections == 1
        assert (await up.fetch("GET", url, {}, None, 5)).content == b'{"ok": true}'
        assert script.connections == 2  # the third answer said close
    first = script.requests[0]
    assert first.startswith(b"POST /v1/x HTTP/1.1\r\ncontent-type: application/json\r\nhost: 127.0.0.1:")
    assert b"\r\nuser-agent: llm-actors/" in first and first.endswith(b"content-length: 2\r\n\r\n{}")


async def test_a_1xx_before_the_answer_is_skipped_and_the_connection_stays_in_step(up: H1Upstream) -> None:
    async def early_hints(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)  # in a packet of its own, as a server sends it before working
        writer.write(_ok(b"answer-1"))

    script = Scripted([early_hints, _ok(b"answer-2")])
    server, url = await _serve(script)
    async with server:
        first = await up.fetch("GET", url, {}, None, 5)
        assert (first.status_code, first.content) == (200, b"answer-1") and "link" not in first.headers
        assert (await up.fetch("GET", url, {}, None, 5)).content == b"answer-2"
    assert script.connections == 1


async def test_a_body_that_ends_with_the_connection_is_whole_and_the_connection_not_reused(
    up: H1Upstream,
) -> None:
    async def until_close(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: one\n\ndata: two\n\n")
        await writer.drain()
        writer.close()

    script = Scripted([until_close, _ok()])
    server, url = await _serve(script)
    async with server:
        async with up.stream("POST", url, {}, b"{}", 5) as reply:
            assert [e.data async for batch in reply.events() for e in batch] == ["one", "two"]
        assert (await up.fetch("GET", url, {}, None, 5)).status_code == 200
    assert script.connections == 2


async def test_a_stream_left_with_its_body_unread_is_not_pooled_paused(up: H1Upstream) -> None:
    big = b"x" * (3 << 20)  # past the point where the connection stops reading
    script = Scripted([_ok(big), _ok()])
    server, url = await _serve(script)
    async with server:
        async with up.stream("GET", url, {}, None, 5) as reply:
            assert reply.status == 200  # and the body is left unread
        assert (await up.fetch("GET", url, {}, None, 2)).content == b'{"ok": true}'


async def test_requests_are_written_as_httpx_writes_them(up: H1Upstream) -> None:
    script = Scripted([_ok(), _ok()])
    server, url = await _serve(script)
    port = url.split(":")[2].split("/")[0]
    async with server:
        headers = {"Host": "api.example", "Content-Length": "99", "user-agent": "mine"}
        await up.fetch("POST", f"http://u%40s:p@127.0.0.1:{port}/v1/a b/é?q=x y", headers, b"{}", 5)
        with pytest.raises(httpx.LocalProtocolError):
            await up.fetch("GET", url, {"x-bad\r\nx-injected": "1"}, None, 5)
        with pytest.raises(httpx.LocalProtocolError):
            await up.fetch("GET", url, {"x-name": "naïve ✓"}, None, 5)
    request = script.requests[0].decode("latin-1")
    assert request.startswith("POST /v1/a%20b/%C3%A9?q=x%20y HTTP/1.1\r\n")
    assert "Host: api.example\r\n" in request and "host:" not in request  # the caller's Host wins
    assert "user-agent: mine\r\n" in request and "llm-actors" not in request
    assert "authorization: Basic dUBzOnA=\r\n" in request  # u@s:p, from the URL
    assert request.count("ontent-length") == 1 and "content-length: 2\r\n" in request


async def test_max_connections_holds_further_exchanges_until_one_ends() -> None:
    up = H1Upstream(httpx.Limits(max_connections=1), ssl.create_default_context())
    release = asyncio.Event()

    async def held(writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.write(_ok(b"first"))

    script = Scripted([held, _ok(b"second")])
    server, url = await _serve(script)
    async with server:
        first = asyncio.ensure_future(up.fetch("GET", url, {}, None, 5))
        second = asyncio.ensure_future(up.fetch("GET", url, {}, None, 5))
        while not script.requests:
            await asyncio.sleep(0)
        for _ in range(200):  # the second has every chance to go, and does not
            await asyncio.sleep(0)
        assert len(script.requests) == 1 and not second.done()
        release.set()
        assert (await first).content == b"first" and (await second).content == b"second"
    await up.aclose()


async def test_an_idle_connection_past_its_expiry_is_not_reused() -> None:
    up = H1Upstream(httpx.Limits(keepalive_expiry=0.000_001), ssl.create_default_context())
    script = Scripted([_ok(), _ok()])
    server, url = await _serve(script)
    async with server:
        await up.fetch("GET", url, {}, None, 5)
        await up.fetch("GET", url, {}, None, 5)
    await up.aclose()
    assert script.connections == 2


async def test_a_connection_whose_server_spoke_while_idle_is_dropped(up: H1Upstream) -> None:
    script = Scripted([_ok(), _ok()])
    server, url = await _serve(script)
    async with server:
        await up.fetch("GET", url, {}, None, 5)
        script.writers[0].write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        await script.writers[0].drain()
        [conn] = up._idle[("http", "127.0.0.1", server.sockets[0].getsockname()[1])]
        while conn.closed is None and not conn.transport.is_closing():  # the loop reads the 408
            await asyncio.sleep(0)
        assert (await up.fetch("GET", url, {}, None, 5)).status_code == 200
    assert script.connections == 2


async def test_chunked_and_gzip_bodies_are_read_whole(up: H1Upstream) -> None:
    packed = gzip.compress(b'{"text": "hello"}')
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    script = Scripted([chunked, _ok(packed, "content-encoding: gzip")])
    server, url = await _serve(script)
    async with server:
        assert (await up.fetch("GET", url, {}, None, 5)).content == b"hello world"
        assert (await up.fetch("GET", url, {}, None, 5)).content == b'{"text": "hello"}'
    assert script.connections == 1


async def test_events_come_as_they_are_sent_and_a_stream_left_unread_closes_its_connection(
    up: H1Upstream,
) -> None:
    sent = asyncio.Event()

    async def events(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        writer.write(b"d\r\ndata: first\n\n\r\n")
        await writer.drain()
        await sent.wait()  # the second event only once the client has the first

    script = Scripted([events, _ok()])
    server, url = await _serve(script)
    async with server:
        async with up.stream("POST", url, {}, b"{}", 5) as reply:
            assert reply.status == 200 and reply.headers["content-type"] == "text/event-stream"
            batches = reply.events()
            [first] = await batches.__anext__()
            assert first.data == "first"
            sent.set()
        assert (await up.fetch("GET", url, {}, None, 5)).status_code == 200
    assert script.connections == 2  # the half-read stream's connection was closed, not pooled


async def test_a_cancelled_exchange_does_not_leave_its_connection_in_the_pool(up: H1Upstream) -> None:
    never = asyncio.Event()

    async def hang(writer: asyncio.StreamWriter) -> None:
        await never.wait()

    script = Scripted([hang, _ok()])
    server, url = await _serve(script)
    async with server:
        task = asyncio.ensure_future(up.fetch("GET", url, {}, None, 5))
        while not script.requests:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await up.fetch("GET", url, {}, None, 5)).status_code == 200
    assert script.connections == 2


async def test_timeouts_and_refusals_are_httpx_errors(up: H1Upstream) -> None:
    async def hang(writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    script = Scripted([hang])
    server, url = await _serve(script)
    async with server:
        with pytest.raises(httpx.ReadTimeout):
            await up.fetch("GET", url, {}, None, 0.05)
    with pytest.raises(httpx.ConnectError):
        await up.fetch("GET", url, {}, None, 5)  # the server is gone
    with pytest.raises(httpx.LocalProtocolError):
        await up.fetch("GET", url, {"x-bad": "a\r\nb"}, None, 5)


def _certificate(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_tls_is_verified_against_the_context_given(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    script = Scripted([_ok(), _ok()])
    server, url = await _serve(script, server_side)
    async with server:
        trusting = H1Upstream(httpx.Limits(), ssl.create_default_context(cafile=str(cert)))
        assert (await trusting.fetch("GET", url, {}, None, 5)).content == b'{"ok": true}'
        await trusting.aclose()
        strict = H1Upstream(httpx.Limits(), ssl.create_default_context())  # the system's CAs only
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await strict.fetch("GET", url, {}, None, 5)
        await strict.aclose()
