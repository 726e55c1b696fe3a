"""RoutedChat's cancel handling, driven as the raw ASGI app it is, without a socket.

The client's side is a `receive` that says `http.disconnect` when the test decides (what
uvicorn's httptools protocol sends when the peer closes) and a `send` that keeps every
message. The upstream is the real OpenAICompatProvider over an injected transport: an
OpenAI-compatible server's event stream (platform.openai.com/docs/api-reference/chat-
streaming: `data: {chat.completion.chunk}` lines, then `data: [DONE]`), released event by
event, whose body notes when the client side closed it (httpx closes a response's stream
when its reader gives up, as the socket would be closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from router_core.records import RequestRecord
from router_core.routing.plan import Candidate, RoutePlan
from router_core.runtime import Runtime
from router_core.server.openai_request import parse_chat_request
from router_core.server.routed import RoutedChat
from router_core.types import Route
from tests.support.servers import make_settings


def event(text: str) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


class UpstreamBody(httpx.AsyncByteStream):
    """The upstream's SSE body: one event per `send`, the end at `end`; `closed` is set once
    Hybridge hung up on it."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = asyncio.Event()

    def send(self, text: str) -> None:
        self.events.put_nowait(event(text))

    def end(self) -> None:
        self.events.put_nowait(b"data: [DONE]\n\n")
        self.events.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (piece := await self.events.get()) is not None:
            yield piece

    async def aclose(self) -> None:
        self.closed.set()


class Client:
    """The client's end of the ASGI connection."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.got = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: Any) -> None:
        self.sent.append(message)
        self.got.set()

    def disconnect(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})

    async def wait_for_body(self, count: int = 1) -> None:
        while sum(1 for m in self.sent if m["type"] == "http.response.body") < count:
            self.got.clear()
            await asyncio.wait_for(self.got.wait(), 5)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


class Records:
    def __init__(self) -> None:
        self.items: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        self.items.append(record)


@pytest.fixture
def upstream() -> UpstreamBody:
    return UpstreamBody()


@pytest.fixture
async def runtime(upstream: UpstreamBody) -> AsyncIterator[Runtime]:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=upstream)

    settings = make_settings({"providers": {"up": {"kind": "openai-local", "base_url": "http://up.test/v1"}}})
    runtime = Runtime(settings, transport_factory=lambda: httpx.MockTransport(answer))
    yield runtime
    await runtime.aclose()


@pytest.fixture
def records(runtime: Runtime) -> Iterator[Records]:
    kept = Records()
    runtime.events.request_finished.connect(kept.add)
    yield kept


def routed(runtime: Runtime, route: Route = "local") -> RoutedChat:
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "count"}]}
    plan = RoutePlan((Candidate("up", "m", route, "test"),))
    return RoutedChat(runtime, plan, parse_chat_request(body, {}), "req_test")


async def start(
    runtime: Runtime, upstream: UpstreamBody, *texts: str, route: Route = "local"
) -> tuple[Client, asyncio.Task[None]]:
    """A client's request running; with `texts`, once the upstream sent them and the client
    has read the first body."""
    client = Client()
    task = asyncio.create_task(routed(runtime, route)({"type": "http"}, client.receive, client.send))
    for text in texts:
        upstream.send(text)
    if texts:
        await client.wait_for_body()
    return client, task


async def test_a_client_that_leaves_mid_stream_stops_the_upstream_and_is_recorded_cancelled(
    runtime: Runtime, upstream: UpstreamBody, records: Records
) -> None:
    client, task = await start(runtime, upstream, "one", " two")
    assert client.sent[0]["type"] == "http.response.start" and client.sent[0]["status"] == 200
    assert runtime.in_flight.count() == 1 and len(runtime.events.streams.running()) == 1
    client.disconnect()
    await asyncio.wait_for(task, 5)  # the client's cancel is absorbed: no error escapes
    assert not task.cancelled()
    await asyncio.wait_for(upstream.closed.wait(), 5)
    [record] = records.items
    assert record.outcome == "cancelled" and record.route == "local" and record.provider == "up"
    # Partial usage: about a token a forwarded event.
    assert record.usage.output_tokens == client.body.count(b"data: ")
    assert runtime.in_flight.count() == 0 and runtime.events.streams.running() == []


async def test_a_client_that_leaves_before_the_first_byte_gets_nothing_and_stops_the_upstream(
    runtime: Runtime, upstream: UpstreamBody, records: Records
) -> None:
    client, task = await start(runtime, upstream)
    await asyncio.sleep(0.05)  # the upstream answered 200 and is thinking
    client.disconnect()
    await asyncio.wait_for(task, 5)
    await asyncio.wait_for(upstream.closed.wait(), 5)
    assert client.sent == []
    [record] = records.items
    assert record.outcome == "cancelled" and record.usage.output_tokens == 0 and record.ttft_s is None


async def test_a_disconnect_after_the_last_byte_is_the_connection_closing_not_a_cancel(
    runtime: Runtime, upstream: UpstreamBody, records: Records
) -> None:
    client, task = await start(runtime, upstream)
    upstream.send("all")
    upstream.end()
    await asyncio.wait_for(task, 5)
    client.disconnect()
    assert client.body.endswith(b"data: [DONE]\n\n")
    [record] = records.items
    assert record.outcome == "ok" and record.error_kind is None


async def test_privacy_switched_on_stops_a_cloud_stream_with_an_error_event(
    runtime: Runtime, upstream: UpstreamBody, records: Records
) -> None:
    client, task = await start(runtime, upstream, "secret", route="cloud")
    assert runtime.in_flight.count("cloud") == 1
    runtime.set_privacy(True)
    await asyncio.wait_for(task, 5)
    await asyncio.wait_for(upstream.closed.wait(), 5)
    last = client.sent[-1]
    assert last["type"] == "http.response.body" and not last.get("more_body", False)
    assert b"secret" in client.body  # what came before the switch reached the client
    error = orjson.loads(last["body"].removeprefix(b"data: "))["error"]
    assert error["code"] == "privacy" and "privacy mode" in error["message"]
    [record] = records.items
    assert record.outcome == "error" and record.error_kind == "privacy"


async def test_a_local_stream_is_not_stopped_by_the_privacy_switch(
    runtime: Runtime, upstream: UpstreamBody, records: Records
) -> None:
    client, task = await start(runtime, upstream, "kept")
    runtime.set_privacy(True)
    upstream.end()
    await asyncio.wait_for(task, 5)
    assert client.body.endswith(b"data: [DONE]\n\n") and b"kept" in client.body
    [record] = records.items
    assert record.outcome == "ok" and record.route == "local"


async def test_a_shutdown_past_uvicorns_grace_answers_503_and_is_recorded_interrupted(
    runtime: Runtime, upstream: UpstreamBody, records: Records
) -> None:
    client, task = await start(runtime, upstream)
    await asyncio.sleep(0.05)
    # What uvicorn's Server.shutdown does to requests still running after the graceful timeout.
    task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
    await asyncio.wait_for(task, 5)
    start_message = client.sent[0]
    assert start_message["type"] == "http.response.start" and start_message["status"] == 503
    assert orjson.loads(client.body)["error"]["message"] == "Hybridge is shutting down"
    [record] = records.items
    assert record.outcome == "interrupted"


async def test_a_shutdown_mid_stream_ends_with_an_error_event_and_keeps_the_tokens(
    runtime: Runtime, upstream: UpstreamBody, records: Records
) -> None:
    client, task = await start(runtime, upstream, "a", " b")
    task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
    await asyncio.wait_for(task, 5)
    assert b'"error"' in client.sent[-1]["body"] and not client.sent[-1].get("more_body", False)
    [record] = records.items
    assert record.outcome == "interrupted" and record.usage.output_tokens >= 1
