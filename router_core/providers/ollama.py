"""Ollama through its native API, so each request gets a context window that holds it.

Ollama's `/v1` endpoint cannot set `num_ctx`, and its small default silently truncates
agent prompts (OpenCode #4182). `/api/chat` with `options.num_ctx` sized per request fixes
that. Discovery (`/api/tags`, `/api/show`) goes through the `ollama` package.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from router_core.errors import UpstreamError, UpstreamInvalid
from router_core.inventory.context import TruncationWarning, check_truncation, size_num_ctx
from router_core.privacy.ollama_cloud import cloud_models_in_tags
from router_core.providers import wire
from router_core.providers.http import make_client, status_error, transport_error
from router_core.providers.ollama_translate import (
    ChunkTranslator,
    completion_from_ollama,
    to_ollama_body,
    usage_from_ollama,
)
from router_core.routing.tokens import estimate_prompt_tokens
from router_core.settings import ContextSettings
from router_core.types import ChatRequest, ChunkStream, Completion, ModelInfo

if TYPE_CHECKING:
    import ollama

log = logging.getLogger(__name__)


def context_length_of(model_info: dict[str, Any] | None) -> int | None:
    """`<arch>.context_length` from `/api/show`'s model_info."""
    if not model_info:
        return None
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if arch else None
    if value is None:
        value = next((v for k, v in model_info.items() if k.endswith(".context_length")), None)
    return int(value) if value else None


class OllamaProvider:
    is_local = True

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        context: ContextSettings,
        transport: httpx.AsyncBaseTransport,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 300.0,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._context = context
        self._client = make_client(
            self.base_url,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            transport=transport,
        )
        # The `ollama` package's client, made on first use (see _discovery_client).
        self._discovery: ollama.AsyncClient | None = None
        self._discovery_options: dict[str, Any] = {
            "host": self.base_url,
            "transport": transport,
            "trust_env": False,
            "follow_redirects": False,
            # The configured timeouts hold for discovery too: a hanging /api/show must not stall a request.
            "timeout": httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=30.0, pool=30.0),
        }
        # Per-model maximum context from /api/show, fetched once per model.
        self._max_context: dict[str, int | None] = {}
        # What fits in free VRAM beside the weights, set by the inventory when it knows.
        self.fit_context: dict[str, int] = {}
        # Answers that read far fewer prompt tokens than were sent, and who hears of them.
        self.truncation_warnings = 0
        self.on_truncation: Callable[[TruncationWarning], object] | None = None

    async def list_models(self) -> list[ModelInfo]:
        # Read /api/tags directly: the `ollama` package drops the remote fields that mark a
        # cloud model (privacy mode must hide those).
        try:
            response = await self._client.get("/api/tags")
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        if response.status_code >= 300:  # a redirect is never followed: an error too
            raise status_error(self.name, response.status_code, response.content, response.headers)
        entries = wire.parse(self.name, wire.OllamaTags, response.content, "the /api/tags answer").get("models") or []
        cloud = set(cloud_models_in_tags({"models": entries}))
        return [
            ModelInfo(self.name, name, True, remote=name in cloud)
            for entry in entries
            if isinstance(entry, dict) and (name := str(entry.get("model") or entry.get("name") or ""))
        ]

    def _discovery_client(self) -> ollama.AsyncClient:
        # Imported here: the package (pydantic models) holds ~9 MB an idle router need not carry.
        import ollama

        if self._discovery is None:
            self._discovery = ollama.AsyncClient(**self._discovery_options)
        return self._discovery

    async def model_max_context(self, model: str) -> int | None:
        if model not in self._max_context:
            import ollama

            try:
                shown = await self._discovery_client().show(model)
            except ollama.ResponseError as exc:
                if exc.status_code == 404:
                    raise UpstreamError(
                        f"{self.name}: model '{model}' is not installed (ollama pull {model})",
                        kind="not_found",
                        status=404,
                        provider=self.name,
                    ) from None
                raise self._discovery_error(exc) from None
            except (httpx.HTTPError, ConnectionError) as exc:
                # The ollama package turns connect failures into the builtin ConnectionError.
                raise self._discovery_error(exc) from None
            except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
                raise UpstreamInvalid(self.name, f"the /api/show answer: {type(exc).__name__}") from None
            try:
                self._max_context[model] = context_length_of(dict(shown.modelinfo or {}))
            except (ValueError, TypeError, AttributeError):
                raise UpstreamInvalid(self.name, "the /api/show answer: bad model_info") from None
        return self._max_context[model]

    def _discovery_error(self, exc: Exception) -> UpstreamError:
        import ollama

        if isinstance(exc, httpx.HTTPError):
            return transport_error(self.name, exc)
        if isinstance(exc, ollama.ResponseError):
            return status_error(self.name, exc.status_code, orjson.dumps({"error": exc.error}), {})
        return UpstreamError(f"{self.name}: cannot connect to the upstream server", kind="connect", provider=self.name)

    async def _chat_body(self, request: ChatRequest, model: str, stream: bool) -> tuple[bytes, int, int]:
        """The /api/chat body, the prompt estimate and the num_ctx it asks for."""
        estimate = estimate_prompt_tokens(request.messages, request.tools)
        try:
            num_ctx = size_num_ctx(
                estimate,
                request.max_tokens,
                self._context,
                await self.model_max_context(model),
                self.fit_context.get(model),
            )
        except UpstreamError as exc:
            exc.provider = self.name
            raise
        return orjson.dumps(to_ollama_body(request.body, model, stream=stream, num_ctx=num_ctx)), estimate, num_ctx

    def _check_truncation(self, model: str, estimate: int, num_ctx: int, final: dict[str, Any]) -> None:
        count = final.get("prompt_eval_count")
        warning = check_truncation(
            self.name,
            model,
            estimate,
            count if isinstance(count, int) else None,
            num_ctx,
            self._context.truncation_warn_ratio,
        )
        if warning is None:
            return
        self.truncation_warnings += 1
        log.warning("%s", warning.message)
        if self.on_truncation is not None:
            self.on_truncation(warning)

    async def complete(self, request: ChatRequest, model: str) -> Completion:
        content, estimate, num_ctx = await self._chat_body(request, model, False)
        try:
            response = await self._client.post(
                "/api/chat", content=content, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        if response.status_code >= 300:  # a redirect is never followed: an error too
            raise status_error(self.name, response.status_code, response.content, response.headers)
        final = wire.parse_ollama_chat_line(self.name, response.content)
        if "error" in final:
            raise UpstreamError(f"{self.name}: {wire.error_message(final['error'])}", kind="server", provider=self.name)
        self._check_truncation(model, estimate, num_ctx, final)
        body = completion_from_ollama(final, f"{self.name}/{model}", int(time.time()))
        return Completion(body=body, usage=usage_from_ollama(final))

    async def stream(self, request: ChatRequest, model: str) -> ChunkStream:
        content, estimate, num_ctx = await self._chat_body(request, model, True)
        translator = ChunkTranslator(f"{self.name}/{model}", int(time.time()))
        final: dict[str, Any] | None = None
        try:
            async with self._client.stream(
                "POST", "/api/chat", content=content, headers={"content-type": "application/json"}
            ) as response:
                if response.status_code >= 300:  # a redirect is never followed: an error too
                    raise status_error(self.name, response.status_code, await response.aread(), response.headers)
                async for raw in response.aiter_lines():
                    if not raw:
                        continue
                    line = wire.parse_ollama_chat_line(self.name, raw)
                    if "error" in line:
                        raise UpstreamError(
                            f"{self.name}: {wire.error_message(line['error'])}", kind="server", provider=self.name
                        )
                    for chunk in translator.translate(line):
                        yield chunk
                    if line.get("done"):
                        final = line
                        break
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        if final is None:
            raise UpstreamInvalid(self.name, "the stream ended before the answer was done")
        self._check_truncation(model, estimate, num_ctx, final)
        yield usage_from_ollama(final)

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._discovery is not None:
            await self._discovery._client.aclose()
