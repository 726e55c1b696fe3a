"""Anthropic's Messages API as an upstream.

OpenAI-shaped requests are translated (anthropic_translate.py); a request that came in
through our own `/v1/messages` keeps its Anthropic body and is sent on as it is, with its
`anthropic-version` and `anthropic-beta` headers. Prompt caching "auto" adds
`cache_control` breakpoints when the client set none. Errors follow
docs.claude.com/en/api/errors: HTTP errors map through http.status_error (529 is
"overloaded"), and an `error` event inside a 200 stream maps by its `error.type`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx
import orjson

from router_core import sse
from router_core.errors import UpstreamError, UpstreamInvalid
from router_core.inventory.context import TruncationWarning
from router_core.inventory.ollama_inventory import OllamaStatus
from router_core.keys import KeySource
from router_core.providers import wire
from router_core.providers.anthropic_translate import (
    StreamTranslator,
    add_cache_breakpoints,
    completion_from_anthropic,
    to_anthropic_body,
    usage_from_anthropic,
)
from router_core.providers.http import answer_error, is_context_overflow, make_client, upstream_errors
from router_core.types import JSON, ChatRequest, ChunkStream, Completion, ModelInfo

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
# An in-stream `error` event's type → (our kind, the status our client gets).
_EVENT_ERRORS = {
    "overloaded_error": ("overloaded", 503),
    "rate_limit_error": ("rate_limit", 429),
    "api_error": ("server", 502),
    "timeout_error": ("timeout", 504),
    "invalid_request_error": ("bad_request", 400),
    "request_too_large": ("bad_request", 413),
    "authentication_error": ("auth", 502),
    "permission_error": ("auth", 502),
    "not_found_error": ("not_found", 404),
    "billing_error": ("auth", 502),
}
# The fields of a Messages body that count_tokens accepts.
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def api_root(base_url: str) -> str:
    """`https://api.anthropic.com` whether the setting ends in `/v1` or not."""
    root = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return root.removesuffix("/v1")


def stream_error(provider: str, event: JSON) -> UpstreamError:
    err = event.get("error")
    if not isinstance(err, dict):  # `"error": "boom"` or worse: still the upstream's error
        err = {"message": str(err)[:500]} if err else {}
    etype = str(err.get("type") or "api_error")
    message = str(err.get("message") or etype)
    kind, status = _EVENT_ERRORS.get(etype, ("server", 502))
    if kind == "bad_request" and is_context_overflow(message):
        kind = "context_overflow"
    return UpstreamError(f"{provider}: {message}", kind=kind, status=status, provider=provider)


class AnthropicProvider:
    is_local = False

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        key: KeySource,
        transport: httpx.AsyncBaseTransport,
        prompt_cache: Literal["auto", "off"] = "auto",
        default_max_tokens: int = 4096,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 300.0,
    ) -> None:
        self.name = name
        self._key = key
        self.prompt_cache = prompt_cache
        self.default_max_tokens = default_max_tokens
        self._client = make_client(
            api_root(base_url),
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            transport=transport,
        )

    def _headers(self, request: ChatRequest | None, *, stream: bool = False) -> dict[str, str]:
        client_headers: Mapping[str, str] = request.headers if request is not None else {}
        headers = {
            "content-type": "application/json",
            "x-api-key": self._key.get(),
            "anthropic-version": client_headers.get("anthropic-version") or DEFAULT_VERSION,
        }
        beta = client_headers.get("anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta
        if stream:
            headers["accept"] = "text/event-stream"
        return headers

    async def _failed(self, response: httpx.Response) -> UpstreamError:
        return await answer_error(self.name, response, on_rejected_key=self._key.forget)

    def body_for(self, request: ChatRequest, model: str, *, stream: bool) -> JSON:
        """The Messages body to send: the client's own when it spoke Anthropic, else translated."""
        if request.anthropic_body is not None:
            body = {**request.anthropic_body, "model": model}
            body.pop("stream", None)
            if stream:
                body["stream"] = True
        else:
            body = to_anthropic_body(request.body, model, stream=stream, default_max_tokens=self.default_max_tokens)
        return add_cache_breakpoints(body) if self.prompt_cache == "auto" else body

    async def list_models(self) -> list[ModelInfo]:
        with upstream_errors(self.name):
            response = await self._client.get("/v1/models", params={"limit": 1000}, headers=self._headers(None))
            if response.status_code >= 300:
                raise await self._failed(response)
        data = wire.parse(self.name, wire.ModelList, response.content, "the /v1/models answer").get("data") or []
        return [ModelInfo(self.name, m["id"], False) for m in data]

    async def count_tokens(self, request: ChatRequest, model: str) -> int:
        """Anthropic's own count for this request (POST /v1/messages/count_tokens)."""
        full = self.body_for(request, model, stream=False)
        body = {k: full[k] for k in _COUNT_FIELDS if k in full}
        with upstream_errors(self.name):
            response = await self._client.post(
                "/v1/messages/count_tokens", content=orjson.dumps(body), headers=self._headers(request)
            )
            if response.status_code >= 300:
                raise await self._failed(response)
        counted = wire.parse(self.name, wire.AnthropicTokenCount, response.content, "the count_tokens answer")
        return int(counted["input_tokens"])

    async def complete(self, request: ChatRequest, model: str) -> Completion:
        content = orjson.dumps(self.body_for(request, model, stream=False))
        with upstream_errors(self.name):
            response = await self._client.post("/v1/messages", content=content, headers=self._headers(request))
            if response.status_code >= 300:
                raise await self._failed(response)
        message = wire.decode_object(self.name, response.content, "the message answer")
        if message.get("type") == "error":
            raise stream_error(self.name, message)
        wire.check(self.name, wire.AnthropicMessage, message, "the message answer")
        body = completion_from_anthropic(message, f"{self.name}/{model}", int(time.time()))
        return Completion(body=body, usage=usage_from_anthropic(message.get("usage")))

    async def stream(self, request: ChatRequest, model: str) -> ChunkStream:
        content = orjson.dumps(self.body_for(request, model, stream=True))
        translator = StreamTranslator(f"{self.name}/{model}", int(time.time()))
        stopped = False
        with upstream_errors(self.name):
            async with self._client.stream(
                "POST", "/v1/messages", content=content, headers=self._headers(request, stream=True)
            ) as response:
                if response.status_code >= 300:
                    raise await self._failed(response)
                async for lines in sse.lines(response.aiter_bytes()):
                    for line in lines:
                        payload = sse.data_payload(line)
                        if payload is None:
                            continue  # `event:` names repeat the data's `type`; blank lines end events
                        event = self._event(payload)
                        if event.get("type") == "error":
                            raise stream_error(self.name, event)
                        for chunk in translator.translate(event):
                            yield chunk
                        if event.get("type") == "message_stop":
                            stopped = True
                            break
                    if stopped:
                        break
        if not (stopped or translator.finished):
            raise UpstreamInvalid(self.name, "the stream ended before the answer was done")
        yield translator.usage

    def _event(self, payload: bytes) -> Any:
        event = wire.decode_object(self.name, payload, "a stream event")
        if event.get("type") == "error":
            return event  # mapped by its error.type (stream_error), whatever else it holds
        return wire.check(self.name, wire.AnthropicEvent, event, "a stream event")

    def use_inventory(self, status: OllamaStatus | None, fits: Mapping[str, int]) -> None:
        pass  # a cloud: nothing on this machine to size

    def watch_truncation(self, listener: Callable[[TruncationWarning], object]) -> None:
        pass  # Anthropic refuses a prompt over its window (context_overflow), never cuts it

    async def aclose(self) -> None:
        await self._client.aclose()
