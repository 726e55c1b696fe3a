"""Server-sent events, both ways: what Hybridge writes to clients and reads from upstreams.

The format is the WHATWG HTML standard's `text/event-stream`
(html.spec.whatwg.org/multipage/server-sent-events.html): lines end at CR, LF or CRLF; a
`data:` line carries the payload (one space after the colon is not part of it); `event:`
names the event; a blank line ends it. OpenAI streams unnamed `data:` events and ends with
`data: [DONE]`; Anthropic and OpenAI's Responses API name each event after its `type`.

Bytes in, bytes out, on the path of every streamed chunk: no str round trip, no dict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from router_core.types import JSON

# OpenAI's end of stream (platform.openai.com/docs/api-reference/chat-streaming).
DONE = b"data: [DONE]\n\n"


def data_event(data: JSON) -> bytes:
    """An unnamed event: `data: {json}` and the blank line (OpenAI's chunks)."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


def named_event(name: str, data: JSON) -> bytes:
    """A named event: `event: NAME`, `data: {json}`, the blank line (Anthropic, Responses)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def data_payload(line: bytes) -> bytes | None:
    """The payload of a `data:` line (surrounding spaces dropped); None for any other line."""
    if not line.startswith(b"data:"):
        return None
    return line[5:].strip()


async def lines(pieces: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """An event stream's lines, split as bytes at CR, LF or CRLF only (never at U+2028 or
    other breaks str.splitlines knows): a batch for each piece the socket delivered (often
    several events at once), so a fast upstream costs one step per read, not per line. The
    last line counts even without a line break after it."""
    rest = b""
    async for piece in pieces:
        if piece.find(b"\r") >= 0:  # find(): cheaper than `in` on bytes here (bench/hot_path.py)
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *complete, rest = (rest + piece).split(b"\n")
        if complete:
            yield complete
    if rest:
        yield [rest]
