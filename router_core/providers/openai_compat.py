"""Any OpenAI-compatible chat server: llama.cpp's llama-server, LM Studio, vLLM, clouds.

The client's body goes upstream as it came, with the model name swapped for the
upstream's and usage asked for; chunks come back as they arrive.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import httpx
import orjson

from router_core import sse
from router_core.errors import UpstreamError
from router_core.inventory.context import TruncationWarning
from router_core.inventory.ollama_inventory import OllamaStatus
from router_core.keys import KeySource
from router_core.providers import wire
from router_core.providers.http import body_pieces, make_client, read_body, status_error, transport_error
from router_core.providers.quirks import apply_quirks
from router_core.types import JSON, ChatRequest, ChunkStream, Completion, ModelInfo, Usage


def usage_from_openai(data: Mapping[str, Any] | None, timings: Mapping[str, Any] | None = None) -> Usage:
    """Usage from OpenAI's shape (cached tokens are part of prompt_tokens there).

    Cache reads are `prompt_tokens_details.cached_tokens` (OpenAI, OpenRouter, Groq, Gemini),
    `prompt_cache_hit_tokens` (DeepSeek) or a top-level `cached_tokens` (Moonshot); cache
    writes are OpenRouter's `prompt_tokens_details.cache_write_tokens`.
    """
    data = data or {}
    prompt = int(data.get("prompt_tokens") or 0)
    details = data.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or data.get("prompt_cache_hit_tokens") or data.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    out_details = data.get("completion_tokens_details") or {}
    tps = None
    if timings and timings.get("predicted_per_second"):
        tps = float(timings["predicted_per_second"])
    return Usage(
        input_tokens=max(prompt - cached - written, 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=int(out_details.get("reasoning_tokens") or 0),
        decode_tokens_per_second=tps,
    )


_DONE: JSON = {}  # the `[DONE]` line (compared by identity)

# Pass-through (stream_raw): a batch of the upstream's bytes, whole lines only, with how
# many events it holds; then exactly one Usage.
RawPart = tuple[bytes, int] | Usage
RawStream = AsyncGenerator[RawPart, None]
# A JSON `"model": "..."` member. Text inside a string value has its quotes escaped (\"),
# so this matches keys only.
_MODEL_MEMBER = re.compile(rb'"model"\s*:\s*"(?:[^"\\]|\\.)*"')


def _null_usages(data: bytes) -> int:
    return data.count(b'"usage":null') + data.count(b'"usage": null')


def _plain_events(data: bytes) -> int | None:
    """How many events a batch holds when it is framed the usual way and nothing else:
    `data: <json>` lines, each followed by a blank line (every line break is framing; JSON
    strings cannot hold a raw one). None for anything else (comments, `event:` lines,
    `[DONE]`, an event split at its blank line): those batches are walked line by line."""
    if not (data.startswith(b"data: ") and data.endswith(b"\n\n")):
        return None
    events = data.count(b"\n\ndata: ") + 1
    return events if data.count(b"\n") == 2 * events else None


def _as_array(data: bytes) -> bytes:
    """A `_plain_events` batch's event payloads as one JSON array (checked in one call)."""
    return b"[" + data[6:-2].replace(b"\n\ndata: ", b",") + b"]"


class _ModelRename:
    """Rewrites a batch's `"model": "..."` members to the name Hybridge answers as.

    The first batch that has one goes through the regex (every spacing); its member is then
    known, and later batches get one bytes.replace of it (one scan, no decoding). A chunk
    naming another model after that keeps the upstream's name: harmless, and not worth a
    second scan of every batch. When the upstream already uses our name, nothing changes.
    """

    __slots__ = ("known", "new", "template")

    def __init__(self, name: str) -> None:
        self.new = b'"model":' + orjson.dumps(name)
        self.template = self.new.replace(b"\\", b"\\\\")  # a re.sub template: backslashes escaped
        self.known: bytes | None = None

    def __call__(self, data: bytes) -> bytes:
        known = self.known
        if known is not None:
            return data if known == self.new else data.replace(known, self.new)
        first = _MODEL_MEMBER.search(data)
        if first is None:
            return data
        self.known = first.group(0)
        return _MODEL_MEMBER.sub(self.template, data)


def _done_end(data: bytes) -> int:
    """Where the `data: [DONE]` line ends in `data` (after its line break), or -1."""
    start = 0
    while (at := data.find(b"[DONE]", start)) >= 0:
        line_start = data.rfind(b"\n", 0, at) + 1
        line_end = data.find(b"\n", at)
        line_end = len(data) if line_end < 0 else line_end
        line = data[line_start:line_end]
        if line.startswith(b"data:") and line[5:].strip() == b"[DONE]":
            return min(line_end + 1, len(data))
        start = at + 6
    return -1


class OpenAICompatProvider:
    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        is_local: bool,
        transport: httpx.AsyncBaseTransport,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 300.0,
        headers: Mapping[str, str] | None = None,
        key: KeySource | None = None,
        vendor: str = "",
    ) -> None:
        self.name = name
        self.vendor = vendor  # a preset name: its parameter quirks apply (providers/quirks.py)
        self.is_local = is_local
        # Cloud providers: the key is read when first needed and re-read after a 401.
        self._key = key
        self._client = make_client(
            base_url.rstrip("/"),
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            transport=transport,
            headers=headers,
        )
        # Chat requests skip AsyncClient.send (auth, redirect and cookie machinery we never
        # use: redirects are refused, keys are headers) and go straight to this same
        # transport, the egress guard included: it is most of the client's cost per request.
        self._transport = transport
        # What build_request would work out again for every request (the merged URL, timeouts).
        self._chat_url = httpx.URL(base_url.rstrip("/") + "/chat/completions")
        self._timeout = self._client.timeout.as_dict()
        self._merged: dict[tuple[tuple[str, str], ...], httpx.Headers] = {}

    async def _post(self, body: JSON, headers: Mapping[str, str]) -> httpx.Response:
        content = orjson.dumps(body)
        base: httpx.Headers
        if self._key is None:
            # No key to read: the same headers every time, built once (header building was
            # a tenth of a local request's CPU).
            key = tuple(headers.items())
            cached = self._merged.get(key)
            if cached is None:
                cached = self._merged[key] = self._request_headers(headers)
            base = cached
        else:
            base = self._request_headers(self._headers(headers))
        # The body as a stream with the headers already whole: httpx's own request
        # preparation (encode the content, add Host and Content-Length, normalise every
        # header again) is skipped; the request is the same one it would build.
        request = httpx.Request(
            "POST",
            self._chat_url,
            headers=base,
            stream=httpx.ByteStream(content),
            extensions={"timeout": self._timeout},
        )
        request.headers["Content-Length"] = str(len(content))
        request.read()  # the transports and the egress guard read `request.content`
        return await self._transport.handle_async_request(request)

    def _request_headers(self, extra: Mapping[str, str]) -> httpx.Headers:
        """Host first (as httpx orders them), the client's defaults (user-agent,
        accept-encoding...), then `extra`."""
        built = httpx.Headers([(b"Host", self._chat_url.netloc)])
        built.update(self._client.headers)
        built.update(extra)
        return built

    def _headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        headers = dict(extra)
        if self._key is not None:
            headers["authorization"] = f"Bearer {self._key.get()}"
        return headers

    def _status_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        if status in (401, 403) and self._key is not None:
            self._key.forget()
        return status_error(self.name, status, body, headers)

    def _body(self, request: ChatRequest, model: str, stream: bool) -> JSON:
        body = dict(request.body)
        body["model"] = model
        body["stream"] = stream
        if stream:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream_options", None)
        return apply_quirks(self.vendor, model, body)

    async def list_models(self) -> list[ModelInfo]:
        try:
            response = await self._client.get("/models", headers=self._headers({}))
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        if response.status_code >= 300:  # a redirect is never followed: an error too
            raise self._status_error(response.status_code, response.content, response.headers)
        data = wire.parse(self.name, wire.ModelList, response.content, "the /models answer").get("data") or []
        return [ModelInfo(self.name, m["id"], self.is_local) for m in data]

    async def complete(self, request: ChatRequest, model: str) -> Completion:
        try:
            response = await self._post(self._body(request, model, False), {"content-type": "application/json"})
            try:
                content = await read_body(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        if response.status_code >= 300:  # a redirect is never followed: an error too
            raise self._status_error(response.status_code, content, response.headers)
        body = wire.decode_object(self.name, content, "the chat.completion answer")
        if "error" in body:  # some servers answer 200 with an error object
            raise UpstreamError(f"{self.name}: {wire.error_message(body['error'])}", kind="server", provider=self.name)
        wire.check(self.name, wire.OpenAICompletion, body, "the chat.completion answer")
        usage = usage_from_openai(body.pop("usage", None), body.pop("timings", None))
        body["model"] = f"{self.name}/{model}"
        return Completion(body=body, usage=usage)

    async def stream(self, request: ChatRequest, model: str) -> ChunkStream:
        our_model = f"{self.name}/{model}"
        usage: Usage | None = None
        try:
            body = self._body(request, model, True)
            response = await self._post(body, {"content-type": "application/json", "accept": "text/event-stream"})
            try:
                if response.status_code >= 300:  # a redirect is never followed: an error too
                    raise self._status_error(response.status_code, await read_body(response), response.headers)
                done = False
                async for lines in sse.lines(body_pieces(response)):
                    for line in lines:
                        chunk = self._chunk(line)
                        if chunk is _DONE:
                            done = True
                            break
                        if chunk is None:
                            continue
                        raw_usage = chunk.pop("usage", None)
                        timings = chunk.pop("timings", None)
                        if raw_usage:
                            usage = usage_from_openai(raw_usage, timings)
                        if chunk.get("choices"):
                            chunk["model"] = our_model
                            yield chunk
                    if done:
                        break
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        yield usage if usage is not None else Usage()

    async def stream_raw(self, request: ChatRequest, model: str) -> RawStream:
        """The same stream for a client that speaks OpenAI's dialect too: the upstream's
        event bytes forwarded as they arrive, a batch per socket read cut at the last event
        end (so no event is split), with only the model name rewritten (_ModelRename: a
        byte replace, no JSON decoding).

        What is checked, and where:
        - every batch: every event type-checked as a chat.completion.chunk, one msgspec call
          for the batch (the first before anything is sent, so a wrong answer can still fall
          back to the next candidate, or be a 502). A batch that does not check (a cut
          event, garbage between events, a chunk of the wrong shape) is walked line by line,
          so what came before the bad event goes out and the stream ends with an error
          event: an event that is not a chunk never reaches the client (issue 17);
        - lines a byte search says matter are decoded: an error event (raised as in
          `stream`) and the usage chunk (read for the ledger).

        Ends at `[DONE]`; an upstream that ends without it gets a usage chunk and `[DONE]`
        written for it, as `stream` does.
        """
        rename = _ModelRename(f"{self.name}/{model}")
        usage: Usage | None = None
        try:
            body = self._body(request, model, True)
            response = await self._post(body, {"content-type": "application/json", "accept": "text/event-stream"})
            try:
                if response.status_code >= 300:  # a redirect is never followed: an error too
                    raise self._status_error(response.status_code, await read_body(response), response.headers)
                done = False
                rest = b""
                async for piece in body_pieces(response):
                    # find(), not `in`: bytes.__contains__ first tries the needle as an int
                    # and raises (and clears) a TypeError every time, a third of a read's cost.
                    if piece.find(b"\r") >= 0:
                        piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                    data = rest + piece
                    # Whole events (up to the last blank line) where there is one, so a read that
                    # ends between an event's two line breaks does not split the next batch's
                    # framing; else whole lines.
                    cut = data.rfind(b"\n\n") + 2
                    if cut == 1:
                        cut = data.rfind(b"\n") + 1
                    if not cut:
                        rest = data
                        continue
                    data, rest = data[:cut], data[cut:]
                    checked = data  # the events to check: all but `[DONE]`
                    if data.find(b"[DONE]") >= 0:
                        end = _done_end(data)
                        if end >= 0:
                            done = True
                            # The event ends at a blank line: without it the client never reads it.
                            data = data[:end] if data[:end].endswith(b"\n\n") else data[:end] + b"\n"
                            checked = data[: data.rfind(b"data:", 0, end)]
                    if data.find(b'"error"') >= 0:
                        failed = self._error_in(data)
                        if failed is not None:
                            good, exc = failed
                            if good:  # what came before the error still goes out first
                                yield rename(good), good.count(b"data:")
                            raise exc
                    events = _plain_events(checked) if checked else 0
                    if events is None or (events and wire.openai_chunks_count(_as_array(checked)) != events):
                        bad = self._invalid_in(data)
                        if bad is not None:  # never forward an event that is not a chunk
                            good, exc = bad
                            if good:
                                yield rename(good), good.count(b"data:")
                            raise exc
                        events = data.count(b"data:") - (1 if done else 0)
                    usages = data.count(b'"usage"')
                    if usages and usages > _null_usages(data):
                        usage = self._raw_usage(data) or usage
                    yield rename(data), events
                    if done:
                        break
                if not done and rest.strip():  # a last line without its line break
                    chunk = self._chunk(rest)
                    if chunk is _DONE:
                        yield rest + b"\n\n", 0
                        done = True
                    elif chunk is not None:
                        usage = self._raw_usage(rest) or usage
                        yield rename(rest) + b"\n\n", 1
                if not done:
                    final: JSON = {
                        "object": "chat.completion.chunk",
                        "model": f"{self.name}/{model}",
                        "choices": [],
                        "usage": (usage or Usage()).to_openai(),
                    }
                    yield sse.data_event(final) + sse.DONE, 0
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        yield usage if usage is not None else Usage()

    def _invalid_in(self, data: bytes) -> tuple[bytes, UpstreamError] | None:
        """The bytes before the batch's first event that is not a chat.completion.chunk, and
        the error; None when every event checks (typed decode from bytes, no dicts built)."""
        at = 0
        for line in data.split(b"\n"):
            if line.startswith(b"data:"):
                payload = line[5:].strip()
                if payload != b"[DONE]":
                    try:
                        wire.check_openai_chunk_bytes(self.name, payload)
                    except UpstreamError as exc:
                        return data[:at], exc
            at += len(line) + 1
        return None

    def _error_in(self, data: bytes) -> tuple[bytes, UpstreamError] | None:
        """The bytes before the batch's error event, and the error; None when it has none."""
        at = 0
        for line in data.split(b"\n"):
            try:
                self._chunk(line)
            except UpstreamError as exc:
                return data[:at], exc
            at += len(line) + 1
        return None

    def _raw_usage(self, data: bytes) -> Usage | None:
        """Usage from the batch's usage chunk, if it has one (OpenAI writes `"usage":null`
        in every chunk before the last)."""
        found: Usage | None = None
        for line in data.split(b"\n"):
            if line.find(b'"usage"') < 0 or not line.startswith(b"data:") or _null_usages(line):
                continue
            chunk = self._chunk(line)
            if chunk is None or chunk is _DONE:
                continue
            raw = chunk.get("usage")
            if isinstance(raw, dict):
                found = usage_from_openai(raw, chunk.get("timings"))
        return found

    def _chunk(self, line: bytes) -> JSON | None:
        """The chunk a `data:` line carries; None for other lines, _DONE for `[DONE]`."""
        if not line.startswith(b"data:"):
            return None
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return _DONE
        chunk = wire.decode_object(self.name, payload, "a chat.completion.chunk event")
        if "error" in chunk:
            raise UpstreamError(f"{self.name}: {wire.error_message(chunk['error'])}", kind="server", provider=self.name)
        return wire.check(self.name, wire.OpenAIChunk, chunk, "a chat.completion.chunk event")

    async def count_tokens(self, request: ChatRequest, model: str) -> int | None:
        return None  # OpenAI's API has no counting endpoint: callers estimate

    def use_inventory(self, status: OllamaStatus | None, fits: Mapping[str, int]) -> None:
        pass  # its server's context is its own setting (llama-server -c): nothing to size here

    def watch_truncation(self, listener: Callable[[TruncationWarning], object]) -> None:
        pass  # OpenAI-compatible servers refuse a prompt over the window (context_overflow)

    async def aclose(self) -> None:
        await self._client.aclose()
