"""A lean HTTP/1.1 transport for plain-http upstreams (the local models), on httptools.

httpx's own transport (httpcore + h11) costs about a millisecond of CPU a request and tens
of microseconds per streamed chunk in pure Python; on the path of every local request that
was most of what Hybridge added (docs/performance.md). This transport speaks the same
httpx interface with the C parser uvicorn uses (httptools) on asyncio's protocols, hands a
stream body over in the pieces the socket delivered (several events at once when they
came together), and keeps connections alive per host.

It takes GET and POST with a body in memory over `http://`; anything else (https, other
methods, streamed request bodies) goes to `fallback`, httpx's own transport, made on first
use: it loads a TLS context and the CA bundle (about a megabyte of memory) that a router
serving only local models never needs. Failures are
raised as the httpx exceptions httpcore raises for them, so providers/http.transport_error
maps them the same way: ConnectError / ConnectTimeout, ReadTimeout, WriteTimeout,
PoolTimeout, RemoteProtocolError (a body cut short), ReadError (a reset).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import httptools
import httpx

METHODS = frozenset({"GET", "POST"})
BUFFER_HIGH = 1 << 20  # stop reading from the socket while this much body waits unread
Key = tuple[str, int]


def _wait_limit(timeouts: dict[str, float | None], name: str) -> float | None:
    value = timeouts.get(name)
    return None if value is None else float(value)


class _Connection(asyncio.Protocol):
    """One TCP connection; reads one response at a time through httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.lost = False
        self.lost_error: BaseException | None = None
        self.received_any = False  # a byte of the current response arrived
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.body: deque[bytes] = deque()
        # httptools' body callback, called for every piece it parses (every HTTP chunk of a
        # streamed answer: one per event): the deque's own append, so no Python frame runs
        # per piece. The bytes waiting are counted per socket read (data_received).
        self.on_body: Callable[[bytes], None] = self.body.append
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.eof_body = False  # neither content-length nor chunked: the body ends at EOF
        self.reading_paused = False
        self.idle_since = 0.0
        self._loop = asyncio.get_running_loop()  # made by loop.create_connection, in the loop
        self._wake: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._write_paused = False
        # The read timeout: one timer per connection that moves its own deadline, rather than
        # a timer made and cancelled for every wait (every streamed read).
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's class is not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            # Bytes with no request waiting: the server broke the protocol; never reuse this.
            self.close()
            return
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.lost_error = httpx.RemoteProtocolError(f"invalid HTTP response from the upstream: {exc}")
            self.close()
        if self.body:
            self.buffered += len(data)  # the body waiting, framing included: near enough for a bound
            if self.buffered > BUFFER_HIGH and not self.reading_paused and self.transport is not None:
                self.reading_paused = True
                self.transport.pause_reading()
        self._notify()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.stop_timer()
        if self.head_done and not self.complete and self.eof_body and exc is None:
            self.complete = True  # a body delimited by the end of the connection
        elif self.lost_error is None:
            self.lost_error = exc
        self._notify()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.headers = []  # an interim response (103 Early Hints...): the real one follows
            return
        self.status = status
        self.head_done = True
        names = {name.lower() for name, _ in self.headers}
        self.eof_body = b"content-length" not in names and b"transfer-encoding" not in names

    def on_message_complete(self) -> None:
        if not self.head_done:
            return  # the end of an interim response
        assert self.parser is not None
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # -- used by the transport -------------------------------------------------------------

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def wait(self, limit_s: float | None) -> None:
        """Until more of the response arrives (or the connection ends); TimeoutError when
        nothing does within `limit_s`."""
        wake = self._wake = self._loop.create_future()
        if limit_s is not None:
            self._deadline = self._loop.time() + limit_s
            if self._timer is None:
                self._timer = self._loop.call_at(self._deadline, self._check_deadline)
        try:
            await wake
        finally:
            self._wake = None

    def _check_deadline(self) -> None:
        self._timer = None
        wake = self._wake
        if wake is None or wake.done():
            return  # no one waits: the next wait sets the timer again
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)  # data came meanwhile
        else:
            wake.set_exception(TimeoutError())

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def start(self, head: bytes, content: bytes) -> None:
        assert self.transport is not None
        self.parser = httptools.HttpResponseParser(self)
        self.status, self.headers, self.head_done, self.complete = 0, [], False, False
        self.received_any = self.keep_alive = self.eof_body = False
        self.body.clear()
        self.buffered = 0
        if len(content) < 65536:
            self.transport.write(head + content)  # one segment for the usual small request
        else:
            self.transport.write(head)
            self.transport.write(content)

    async def drain(self, limit_s: float | None) -> None:
        if not self._write_paused or self.lost:
            return
        self._drained = self._loop.create_future()
        try:
            async with asyncio.timeout(limit_s):
                await self._drained
        finally:
            self._drained = None

    def take_body(self) -> bytes:
        data = b"".join(self.body) if len(self.body) > 1 else self.body[0]
        self.body.clear()
        self.buffered = 0
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.lost and not self.body

    def close(self) -> None:
        self.lost = True
        self.stop_timer()
        if self.transport is not None:
            self.transport.close()


class _ResponseBody(httpx.AsyncByteStream):
    """The body as the socket delivers it; gives the connection back when read to the end."""

    def __init__(self, transport: PlainHTTPTransport, key: Key, conn: _Connection, read_s: float | None) -> None:
        self._transport = transport
        self._key = key
        self._conn = conn
        self._read_s = read_s
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.body:
                yield conn.take_body()
                continue
            if conn.complete:
                break
            if conn.lost:
                raise _lost_error(conn, "while reading the response body")
            try:
                await conn.wait(self._read_s)
            except TimeoutError:
                conn.close()
                raise httpx.ReadTimeout("the upstream sent nothing within the read timeout") from None
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._transport._release(self._key, self._conn)


def _lost_error(conn: _Connection, when: str) -> httpx.TransportError:
    err = conn.lost_error
    if isinstance(err, httpx.TransportError):
        return err
    if isinstance(err, OSError):
        return httpx.ReadError(f"connection to the upstream failed {when}: {err}")
    return httpx.RemoteProtocolError(f"the upstream closed the connection {when}")


class PlainHTTPTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        fallback: Callable[[], httpx.AsyncBaseTransport],
        *,
        max_connections: int = 512,
        max_idle_per_host: int = 64,
        keepalive_expiry_s: float = 5.0,
    ) -> None:
        self._make_fallback = fallback
        self._fallback: httpx.AsyncBaseTransport | None = None
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Key, list[_Connection]] = {}
        self._max_idle = max_idle_per_host
        self._expiry = keepalive_expiry_s
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http" or request.method not in METHODS or not isinstance(request.stream, httpx.ByteStream):
            if self._fallback is None:
                self._fallback = self._make_fallback()
            return await self._fallback.handle_async_request(request)
        content = request.content
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head = _request_head(request)
        key = (url.host, url.port or 80)
        if self._slots.locked():  # every connection busy: wait for one, within the pool timeout
            try:
                async with asyncio.timeout(_wait_limit(timeouts, "pool")):
                    await self._slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection to the upstream in time") from None
        else:
            await self._slots.acquire()  # free: taken at once, no timer needed
        try:
            return await self._send(request, key, head, content, timeouts)
        except BaseException:
            self._slots.release()
            raise

    async def _send(
        self, request: httpx.Request, key: Key, head: bytes, content: bytes, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        read_s = _wait_limit(timeouts, "read")
        conn = self._take_idle(key)
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._connect(key, _wait_limit(timeouts, "connect"))
            try:
                conn.start(head, content)
                try:
                    await conn.drain(_wait_limit(timeouts, "write"))
                except TimeoutError:
                    conn.close()
                    raise httpx.WriteTimeout("the upstream did not take the request within the write timeout") from None
                while not conn.head_done:
                    if conn.lost:
                        raise _lost_error(conn, "before answering")
                    await conn.wait(read_s)
            except TimeoutError:
                conn.close()
                raise httpx.ReadTimeout("the upstream did not answer within the read timeout") from None
            except httpx.TransportError as exc:
                conn.close()
                stale = isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and not conn.received_any
                if reused and stale:
                    # A kept-alive connection the server had already closed: once more, fresh.
                    conn, reused = None, False
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            break
        headers = conn.headers
        conn.headers = []
        return httpx.Response(
            conn.status,
            headers=headers,
            stream=_ResponseBody(self, key, conn, read_s),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )

    async def _connect(self, key: Key, limit_s: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(limit_s):
                _, conn = await loop.create_connection(_Connection, key[0], key[1])
        except TimeoutError:
            raise httpx.ConnectTimeout("connecting to the upstream timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to the upstream: {exc.strerror or exc}") from None
        return conn

    def _take_idle(self, key: Key) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.lost and now - conn.idle_since < self._expiry:
                return conn
            conn.close()
        return None

    def _release(self, key: Key, conn: _Connection) -> None:
        self._slots.release()
        if conn.reusable() and not self._closed:
            conn.stop_timer()
            conn.parser = None
            conn.idle_since = time.monotonic()
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._max_idle:
                idle.append(conn)
                return
        conn.close()

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()


def _request_head(request: httpx.Request) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), request.url.raw_path)]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw]
    lines.append(b"\r\n")
    head = b"".join(lines)
    # Each line ends with the one CR LF we put there: any other is a line break in a header.
    # (Counted over the whole head: `b"\r" in value` costs a raised and cleared TypeError
    # each time in CPython, as bytes.__contains__ tries the needle as an int first.)
    if head.count(b"\r") != len(lines) or head.count(b"\n") != len(lines):
        raise httpx.LocalProtocolError("a header holds a line break")
    return head
