"""The ASGI response that runs one routed chat request.

It listens for the client's disconnect from the start, so a client that goes away cancels
the upstream call (and the local model stops generating) whether or not a byte was sent.
Headers go out with the first chunk: until then a failed candidate can still fall back,
and the headers can name the model that really answers.

What the client reads (OpenAI's chunks and errors here, Anthropic's events in
anthropic_encoder.py) comes from a ResponseEncoder; the running, fallback, headers and
record are the same for every API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, Literal, Protocol

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from router_core import sse
from router_core.errors import HybridgeError, UpstreamError
from router_core.executor import PlanFailed
from router_core.inflight import InFlightRequest
from router_core.records import LiveStream, Outcome, RequestRecord
from router_core.redact import redact
from router_core.routing.plan import Candidate, RoutePlan
from router_core.server.errors import openai_error_body, openai_error_response
from router_core.server.ready import Thrown, step
from router_core.server.services import ChatServices
from router_core.types import JSON, ChatRequest, Completion, Usage

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
# The client's disconnect is watched from this long into a request on: a quick answer (most
# non-streaming ones) never pays for the watching task; a client that left before is seen
# at once when it starts (uvicorn keeps the disconnect for the next receive()).
WATCH_AFTER_S = 0.05
log = logging.getLogger(__name__)


def _ascii(value: str) -> bytes:
    return value.encode("ascii", "replace")


def route_headers(
    candidate: Candidate | None, plan: RoutePlan | None, request_id: str, fallbacks: list[str]
) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-request-id", _ascii(request_id))]
    if candidate is not None:
        headers += [
            (b"x-hybridge-route", _ascii(candidate.route)),
            (b"x-hybridge-model", _ascii(candidate.id)),
            (b"x-hybridge-reason", _ascii(candidate.reason)),
        ]
    elif plan is not None and plan.candidates:
        first = plan.candidates[0]
        headers += [(b"x-hybridge-route", _ascii(first.route)), (b"x-hybridge-reason", _ascii(first.reason))]
    if candidate is not None and candidate.pool:
        headers.append((b"x-hybridge-pool", _ascii(candidate.pool)))
    if fallbacks:
        headers.append((b"x-hybridge-fallbacks", _ascii("; ".join(fallbacks))))
    if plan is not None and plan.kept_local:
        headers.append((b"x-hybridge-privacy", b"kept-local"))
    if plan is not None and plan.tags:
        headers.append((b"x-hybridge-tags", _ascii(",".join(sorted(plan.tags)))))
    return headers


class StreamEncoder(Protocol):
    """Turns one answer's OpenAI chunks into the bytes of the client's stream format."""

    def chunk(self, chunk: JSON) -> bytes: ...

    def finish(self, usage: Usage) -> bytes: ...


class ResponseEncoder(Protocol):
    """One client API's answers and errors."""

    api: Literal["openai", "anthropic", "responses", "ollama"]

    def error_response(self, exc: HybridgeError, request_id: str) -> Response: ...

    def stream_error(self, exc: HybridgeError, request_id: str) -> bytes: ...

    def completion(self, completion: Completion) -> bytes: ...

    def stream(self, model_id: str, started_at: float, request_id: str) -> StreamEncoder: ...


class OpenAIStream:
    def __init__(self, model_id: str, started_at: float, request_id: str) -> None:
        self.model_id = model_id
        self.started_at = started_at
        self.request_id = request_id
        self.last: JSON = {}

    def chunk(self, chunk: JSON) -> bytes:
        self.last = chunk
        return sse.data_event(chunk)

    def finish(self, usage: Usage) -> bytes:
        final = {
            "id": self.last.get("id", self.request_id),
            "object": "chat.completion.chunk",
            "created": self.last.get("created", int(self.started_at)),
            "model": self.model_id,
            "choices": [],
            "usage": usage.to_openai(),
        }
        return sse.data_event(final) + sse.DONE


class OpenAIEncoder:
    api: Literal["openai", "anthropic", "responses", "ollama"] = "openai"

    def error_response(self, exc: HybridgeError, request_id: str) -> Response:
        return openai_error_response(exc, request_id)

    def stream_error(self, exc: HybridgeError, request_id: str) -> bytes:
        # Mid-stream: an error event, never [DONE].
        return sse.data_event(openai_error_body(exc, request_id))

    def completion(self, completion: Completion) -> bytes:
        body = completion.body
        body["usage"] = completion.usage.to_openai()
        return orjson.dumps(body)

    def stream(self, model_id: str, started_at: float, request_id: str) -> StreamEncoder:
        return OpenAIStream(model_id, started_at, request_id)


OPENAI = OpenAIEncoder()


class RoutedChat:
    """Serve `request` along `plan` (streamed or whole) in the format `encoder` writes.

    `requested_model` is the model name the client sent, when routing saw another (an
    Anthropic client's `claude-haiku-...` routed as `local`).
    """

    def __init__(
        self,
        runtime: ChatServices,
        plan: RoutePlan,
        request: ChatRequest,
        request_id: str,
        encoder: ResponseEncoder = OPENAI,
        requested_model: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.plan = plan
        self.request = request
        self.request_id = request_id
        self.encoder = encoder
        self.requested_model = requested_model or request.model
        self.started_at = time.time()
        self.t0 = time.perf_counter()
        self.ttft: float | None = None
        self.candidate: Candidate | None = None
        self.fallbacks: list[str] = []
        self.usage = Usage()
        self.chunks = 0
        self.outcome: Outcome = "ok"
        self.error_kind: str | None = None
        self.error = ""
        self.response_started = False
        # The last byte went out: a disconnect after it is the connection closing, not a cancel.
        self.response_done = False
        self.tracked: InFlightRequest | None = None
        self.live: LiveStream | None = None
        # Ends a pooled backend's in-flight count once the stream is over (executor.OpenStream).
        self.release: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Plain asyncio rather than an anyio task group: anyio formats the task's repr on
        # every cancel, a cost on every request's path. The watcher starts after WATCH_AFTER_S.
        work = asyncio.current_task()
        running = True
        stopped_by_client = False

        async def watch_disconnect() -> None:
            nonlocal stopped_by_client
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    # uvicorn answers receive() with a disconnect once the response is complete,
                    # and this task may see it before it is cancelled below.
                    if not self.response_done:
                        self.outcome = "cancelled"
                    if running and work is not None:
                        stopped_by_client = True
                        work.cancel()
                    return

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.response_started = True
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.response_done = True

        watcher: asyncio.Task[None] | None = None

        def start_watching() -> None:
            nonlocal watcher
            if running:
                watcher = asyncio.get_running_loop().create_task(watch_disconnect())

        timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start_watching)
        try:
            await self._run(guarded_send)
        except asyncio.CancelledError as exc:
            # Ours (the client left): absorbed here. Anyone else's (shutdown): recorded as
            # interrupted, with the tokens it had.
            if stopped_by_client and work is not None and work.uncancel() == 0:
                pass
            else:
                if not self.response_done:
                    self.outcome = "interrupted"
                if not stopped_by_client and "shutdown" in str(exc.args[0] if exc.args else ""):
                    # uvicorn's graceful shutdown ran out of time: the client gets an error (a
                    # 503 or an error event), not a cut connection, and the log no traceback.
                    if work is not None:
                        work.uncancel()
                    with contextlib.suppress(Exception):
                        await self._fail(UpstreamError("Hybridge is shutting down", kind="cancelled", status=503), send)
                    if self.outcome == "error":  # _fail marks it; the cause was the shutdown
                        self.outcome = "interrupted"
                else:
                    raise
        finally:
            running = False
            timer.cancel()
            if watcher is not None:
                watcher.cancel()
            self._finish()

    async def _run(self, send: Send) -> None:
        try:
            # Tracked by route, so switching privacy mode on can stop a cloud answer mid-way.
            first_route = self.plan.candidates[0].route if self.plan.candidates else "local"
            with self.runtime.in_flight.track(first_route) as self.tracked:
                if self.request.stream:
                    await self._stream(send)
                else:
                    await self._complete(send)
            if self.tracked.stopped:
                provider = self.candidate.provider if self.candidate else ""
                raise UpstreamError(self.tracked.stopped, kind="privacy", status=403, provider=provider)
        except HybridgeError as exc:
            await self._fail(exc, send)
        except Exception:
            # A bug of ours: log it here, and give the client a clean error, not a traceback.
            log.exception("request %s failed", self.request_id)
            await self._fail(HybridgeError("internal error in Hybridge; see its log"), send)

    async def _fail(self, exc: HybridgeError, send: Send) -> None:
        self.outcome = "error"
        self.error_kind = exc.kind
        self.error = redact(exc.message)
        if isinstance(exc, PlanFailed):
            self.candidate = exc.candidate
            self.fallbacks = exc.fallbacks
        if self.response_started:
            # Mid-stream: no fallback any more; close with an error event.
            await send(
                {
                    "type": "http.response.body",
                    "body": self.encoder.stream_error(exc, self.request_id),
                    "more_body": False,
                }
            )
            return
        response = self.encoder.error_response(exc, self.request_id)
        for name, value in route_headers(self.candidate, self.plan, self.request_id, self.fallbacks):
            response.headers[name.decode()] = value.decode()
        await response({"type": "http"}, _no_receive, send)

    async def _complete(self, send: Send) -> None:
        self.candidate, completion, self.fallbacks = await self.runtime.executor.complete(self.plan, self.request)
        self.ttft = time.perf_counter() - self.t0
        self.usage = completion.usage
        payload = self.encoder.completion(completion)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            *route_headers(self.candidate, self.plan, self.request_id, self.fallbacks),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _stream(self, send: Send) -> None:
        # An OpenAI client: an OpenAI-compatible upstream's bytes pass straight through.
        opened = await self.runtime.executor.open_stream(self.plan, self.request, raw=self.encoder.api == "openai")
        self.candidate, self.fallbacks, self.release = opened.candidate, opened.fallbacks, opened.release
        if self.tracked is not None:
            self.tracked.route = self.candidate.route
        # NDJSON for Ollama's API (its encoder says so), server-sent events for the others.
        headers = getattr(self.encoder, "stream_headers", SSE_HEADERS) + route_headers(
            self.candidate, self.plan, self.request_id, self.fallbacks
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # Live figures: counters on the stream, read by the ledger's sampler on its timer.
        self.live = self.runtime.events.streams.open(self.request_id, self.candidate.route, self.candidate.id)
        async with aclosing(opened.rest) as rest:
            if opened.raw:
                await self._pass_through(opened.first, rest, send)
            else:
                await self._translate(opened.first, rest, send)

    async def _pass_through(self, part: Any, rest: AsyncGenerator[Any, None], send: Send) -> None:
        """The upstream's event bytes, a write per socket read; the provider ends them."""
        live = self.live
        assert live is not None
        self.ttft = time.perf_counter() - self.t0
        while not isinstance(part, Usage):
            data, events = part
            self.chunks += events
            live.add(events)
            await send({"type": "http.response.body", "body": data, "more_body": True})
            try:
                part = await anext(rest)
            except StopAsyncIteration:
                part = Usage()
        self.usage = part
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _translate(self, part: Any, rest: AsyncGenerator[Any, None], send: Send) -> None:
        """Chunks through the client's encoder: what the upstream already delivered is
        encoded and written together, in one write (see ready.py)."""
        live = self.live
        assert live is not None and self.candidate is not None
        encoder = self.encoder.stream(self.candidate.id, self.started_at, self.request_id)
        if not isinstance(part, Usage):
            self.ttft = time.perf_counter() - self.t0
        out: list[bytes] = []
        count = 0
        while True:
            if isinstance(part, Usage):
                self.usage = part
                break
            count += 1
            data = encoder.chunk(part)
            if data:
                out.append(data)
            try:
                part, pending = step(rest)
            except StopAsyncIteration:
                break
            except BaseException:
                if out:  # what came before a mid-stream failure still reaches the client
                    self.chunks += count
                    live.add(count)
                    await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
                raise
            if pending is None:
                continue  # already there: into the same write
            if out:
                self.chunks += count
                live.add(count)
                count = 0
                body = out[0] if len(out) == 1 else b"".join(out)
                out = []
                try:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                except BaseException as exc:
                    # The iterator is half-way through its next step: let it clean up first.
                    with contextlib.suppress(BaseException):
                        await Thrown(pending, exc)
                    raise
            try:
                part = await pending
            except StopAsyncIteration:
                break
        self.chunks += count
        live.add(count)
        out.append(encoder.finish(self.usage))
        await send({"type": "http.response.body", "body": b"".join(out), "more_body": False})

    def _finish(self) -> None:
        if self.release is not None:
            self.release()
        if self.outcome in ("cancelled", "interrupted") and self.usage.output_tokens == 0:
            # Partial usage: each streamed chunk carries about one token.
            self.usage = Usage(output_tokens=self.chunks)
        candidate = self.candidate
        record = RequestRecord(
            request_id=self.request_id,
            started_at=self.started_at,
            client=self.request.user_agent,
            session=self.request.session_id,
            requested_model=self.requested_model,
            api=self.encoder.api,
            route=candidate.route if candidate else "",
            reason=candidate.reason if candidate else self.plan.reason,
            provider=candidate.provider if candidate else "",
            model=candidate.model if candidate else "",
            streamed=self.request.stream,
            outcome=self.outcome,
            usage=self.usage,
            ttft_s=self.ttft,
            duration_s=time.perf_counter() - self.t0,
            error_kind=self.error_kind,
            tags=self.request.tags,
            fallbacks=tuple(self.fallbacks),
            error=self.error,
            pool=candidate.pool if candidate else "",
            backend=self.runtime.backend_addresses.get(candidate.provider, "") if candidate else "",
            messages=self.request.messages,
            tools=self.request.tools,
        )
        if self.live is not None:
            self.runtime.events.streams.close(self.live)
        self.runtime.events.request_finished.emit(record)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
