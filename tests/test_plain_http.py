"""router_core/providers/plain_http.PlainHTTPTransport over real loopback sockets.

The server here is a raw asyncio TCP server that writes HTTP/1.1 responses byte for byte
(RFC 9112: status line, headers, Content-Length or chunked framing, keep-alive), so the
tests can also send what well-behaved servers never do: a body cut short, silence, a
kept-alive connection closed under the client. What each failure must raise is what
httpcore raises for it, so providers/http.transport_error maps both transports alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from router_core.errors import UpstreamError
from router_core.providers import http as provider_http
from router_core.providers.http import default_transport, transport_error
from router_core.providers.plain_http import PlainHTTPTransport
from tests.support.servers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one request with a Content-Length body (or none)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length) if length else b""


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A server on 127.0.0.1:0; yields its base URL and the list of connections it accepted."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        server.close()


def json_response(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def client(transport: httpx.AsyncBaseTransport, base_url: str, read_s: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=httpx.Timeout(5.0, read=read_s))


def lean() -> PlainHTTPTransport:
    transport = default_transport()
    assert isinstance(transport, PlainHTTPTransport)
    return transport


async def test_keeps_the_connection_alive_and_sends_the_request_as_given() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, body = await read_request(reader)
            seen.append((head, body))
            writer.write(json_response(b'{"n": %d}' % len(seen)))
            await writer.drain()

    async with raw_server(handler) as (url, accepted), client(lean(), url) as http:
        first = await http.post("/v1/chat/completions?x=1", content=b'{"a": 1}', headers={"x-test": "yes"})
        second = await http.get("/v1/models")
    assert (first.status_code, first.json(), second.json()) == (200, {"n": 1}, {"n": 2})
    assert len(accepted) == 1  # one connection for both requests
    head, body = seen[0]
    assert head.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert b"\r\nx-test: yes\r\n" in head and b"\r\nContent-Length: 8\r\n" in head
    assert body == b'{"a": 1}'
    assert seen[1][0].startswith(b"GET /v1/models HTTP/1.1\r\n")


async def test_streams_a_chunked_body_piece_by_piece() -> None:
    events = [b'data: {"i": %d}\n\n' % i for i in range(3)]
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n" % (len(events[0]), events[0]))
        await writer.drain()
        await release.wait()  # the first event must reach the client before the rest exists
        for event in events[1:]:
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with (
        raw_server(handler) as (url, _),
        client(lean(), url) as http,
        http.stream("POST", "/", content=b"{}") as response,
    ):
        pieces = response.aiter_raw()
        assert await anext(pieces) == events[0]
        release.set()
        rest = b"".join([piece async for piece in pieces])
    assert rest == b"".join(events[1:])


async def test_a_body_delimited_by_the_end_of_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()

    async with raw_server(handler) as (url, _), client(lean(), url) as http:
        response = await http.get("/")
    assert response.content == b"all of it"


async def test_a_body_cut_short_is_a_remote_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()

    async with raw_server(handler) as (url, _), client(lean(), url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/")


async def test_silence_is_a_read_timeout_mapped_like_httpcore() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(handler) as (url, _), client(lean(), url, read_s=0.2) as http:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await http.get("/")
    assert transport_error("local", caught.value).kind == "timeout"


async def test_the_read_timeout_counts_from_the_last_piece_not_from_the_start() -> None:
    # A chunked body trickling in for longer than the read timeout is not cut; silence after
    # it is a timeout (one timer per connection whose deadline each wait moves on).
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(8):
            writer.write(b"2\r\nab\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
        await asyncio.sleep(5)

    pieces: list[bytes] = []
    async with (
        raw_server(handler) as (url, _),
        client(lean(), url, read_s=0.3) as http,
        http.stream("GET", "/") as response,
    ):
        with pytest.raises(httpx.ReadTimeout):
            async for piece in response.aiter_raw():
                pieces.append(piece)
    # 0.8 s of trickle got through whole before the 0.3 s of silence ended it.
    assert b"".join(pieces) == b"ab" * 8


async def test_a_refused_connection_is_a_connect_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with client(lean(), f"http://127.0.0.1:{port}") as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get("/")
    mapped = transport_error("local", caught.value)
    assert isinstance(mapped, UpstreamError) and mapped.kind == "connect"


async def test_a_kept_alive_connection_the_server_closed_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(json_response(b"{}"))  # keep-alive by HTTP/1.1 default ...
        await writer.drain()
        # ... and then closed, as servers do when their keep-alive timeout runs out.

    async with raw_server(handler) as (url, accepted), client(lean(), url) as http:
        assert (await http.get("/")).status_code == 200
        await asyncio.sleep(0.05)
        assert (await http.get("/")).status_code == 200
    assert len(accepted) == 2


async def test_a_stream_left_early_closes_its_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async with raw_server(handler) as (url, accepted), client(lean(), url) as http:
        for _ in range(2):
            async with http.stream("GET", "/") as response:
                assert await anext(response.aiter_raw()) == b"first"
    assert len(accepted) == 2  # never reused mid-response


async def test_https_and_other_methods_go_to_the_fallback() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        return httpx.Response(204)

    transport = PlainHTTPTransport(lambda: httpx.MockTransport(record))
    async with httpx.AsyncClient(transport=transport) as http:
        await http.post("https://api.example.com/v1/chat/completions", content=b"{}")
        await http.delete("http://127.0.0.1:9/x")
    assert seen == ["POST https://api.example.com/v1/chat/completions", "DELETE http://127.0.0.1:9/x"]


async def test_a_header_with_a_line_break_is_refused() -> None:
    # httpx lets it into the request; h11 refuses it when sending, and so must this transport.
    async with client(lean(), "http://127.0.0.1:9") as http:
        with pytest.raises(httpx.LocalProtocolError):
            await http.get("/", headers={"x-evil": "a\r\nx-injected: 1"})


async def test_the_tls_context_is_loaded_on_the_first_https_request_and_shared() -> None:
    # A router that serves only local models never loads the CA bundle (about a megabyte a
    # context); the clouds' transports share one context.
    provider_http.tls_context.cache_clear()
    transports = [default_transport(), default_transport()]
    assert provider_http.tls_context.cache_info().currsize == 0
    port = free_port()  # nothing listens there
    for transport in transports:
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"https://127.0.0.1:{port}/")
    info = provider_http.tls_context.cache_info()
    assert (info.currsize, info.misses, info.hits) == (1, 1, 1)
