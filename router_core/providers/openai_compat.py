"""Any OpenAI-compatible chat server: llama.cpp's llama-server, LM Studio, vLLM, clouds.

The client's body goes upstream as it came, with the model name swapped for the
upstream's and usage asked for; chunks come back as they arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson

from router_core.errors import UpstreamError
from router_core.keys import KeySource
from router_core.providers import wire
from router_core.providers.http import make_client, status_error, transport_error
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
    cached = int(
        details.get("cached_tokens") or data.get("prompt_cache_hit_tokens") or data.get("cached_tokens") or 0
    )
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


async def sse_lines(pieces: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """An event stream's lines, split as bytes: a batch for each piece the socket delivered
    (often several events at once), so a fast upstream costs one step per read, not per line.
    The last line counts even without a line break after it."""
    rest = b""
    async for piece in pieces:
        if b"\r" in piece:
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = (rest + piece).split(b"\n")
        if lines:
            yield lines
    if rest:
        yield [rest]


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

    async def _post(self, body: JSON, headers: Mapping[str, str]) -> httpx.Response:
        merged = self._client.headers.copy()  # the client's defaults (user-agent, accept-encoding...)
        merged.update(self._headers(headers))
        request = httpx.Request(
            "POST", self._chat_url, content=orjson.dumps(body), headers=merged, extensions={"timeout": self._timeout}
        )
        return await self._transport.handle_async_request(request)

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
                await response.aread()
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        if response.status_code >= 300:  # a redirect is never followed: an error too
            raise self._status_error(response.status_code, response.content, response.headers)
        body = wire.decode_object(self.name, response.content, "the chat.completion answer")
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
                    raise self._status_error(response.status_code, await response.aread(), response.headers)
                done = False
                async for lines in sse_lines(response.aiter_bytes()):
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

    async def aclose(self) -> None:
        await self._client.aclose()
