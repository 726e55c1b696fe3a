"""Connection limits for a loopback server, enforced in uvicorn's httptools protocol.

uvicorn (0.3x, httptools) bounds neither the size nor the number of request headers, and
has no timeout for a request head or a body that stops arriving: a 100 MB header was parsed
for 17 s while other requests waited, and a half-sent head held its connection forever.
This subclass adds, per connection:

- the request head (request line and headers) at most `max_head_bytes`, counted as bytes
  arrive, before httptools buffers them; at most `max_headers` headers. Past either: 431.
- the whole head within `head_timeout_s` of the connection (or of the previous answer):
  408 when part of it came, a plain close when nothing did (an idle socket).
- each piece of a body within `body_timeout_s` of the last: 408, and the app sees the
  client gone.

Idle keep-alive (`timeout_keep_alive`) and the cap on concurrent connections with a 503
(`limit_concurrency`) are uvicorn's own settings; `uvicorn_options` sets them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_head_bytes: int = 64 * 1024
    max_headers: int = 128
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 512


LIMITS = ConnectionLimits()


def uvicorn_options(limits: ConnectionLimits = LIMITS) -> dict[str, Any]:
    return {"timeout_keep_alive": limits.keep_alive_s, "limit_concurrency": limits.max_connections}


class _Refused(Exception):
    """Raised from a parser callback to stop httptools at once."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ConnectionLimits = LIMITS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head read so far
        self._header_count = 0
        self._in_head = True  # waiting for (the rest of) a request head
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            if self._head_timer is None:
                self._start_head_timer()  # a new request on a kept-alive connection
            # The blank line that ends the head may straddle two reads: look across the seam.
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            used = self._head_bytes - len(self._tail) + (len(window) if end < 0 else end + 4)
            if used > self.limits.max_head_bytes:
                self._refuse(431, f"the request head is larger than {self.limits.max_head_bytes} bytes")
                return
            self._head_bytes += len(data)
            self._tail = window[-3:]
        elif self._body_timer is not None:
            self._restart_body_timer()
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a _Refused from a callback reaches uvicorn as a parser error
            super().send_400_response(msg)

    def shutdown(self) -> None:
        self._cancel_timers()
        super().shutdown()

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refuse(431, f"the request has more than {self.limits.max_headers} headers")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._tail = b""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        self._restart_body_timer()

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next head gets its own time; idle time before it is the keep-alive timeout's.
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    # -- timers ----------------------------------------------------------------------------

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.head_timeout_s, self._head_timed_out)

    def _restart_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_timed_out)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered (pipelined heads wait for it)
        if self._head_bytes:
            self._refuse(408, f"the request head did not arrive within {self.limits.head_timeout_s:g} s")
        elif not self.transport.is_closing():
            self.transport.close()  # nothing ever came: an idle socket

    def _body_timed_out(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body:
            return
        if not cycle.response_started:
            self._write_error(408, f"the request body stopped arriving for {self.limits.body_timeout_s:g} s")
        self._refused = True
        # The app reading the body sees the client gone (http.disconnect), and stops.
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()

    # -- answers ---------------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        self._cancel_timers()
        self._write_error(status, message)
        self.transport.close()

    def _write_error(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        # OpenAI's error shape: every client of this server reads it (Anthropic's clients too
        # read `error.message`); there is no path to choose by before a head is whole.
        body = b'{"error":{"message":"%s","type":"invalid_request_error","param":null,"code":"%d"}}' % (
            message.encode(),
            status,
        )
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        self.transport.write(head % (status, _REASONS[status], len(body)) + body)
