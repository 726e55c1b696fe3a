"""Ollama through its native API, so each request gets a context window that holds it.

Ollama's `/v1` endpoint cannot set `num_ctx`, and its small default silently truncates
agent prompts (OpenCode #4182). `/api/chat` with `options.num_ctx` fixes that; one context
per model, chosen once (inventory/context.py), so Ollama never reloads the runner in a
steady session (server/sched.go needsReload reloads on any runner-option change).
`keep_alive` on every request, `truncate: false` where the version has it, `think` only
for models with the `thinking` capability. Discovery reads `/api/show` once per model
(from the inventory when it has it), under the client's read timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from router_core.errors import UpstreamError, UpstreamInvalid
from router_core.inventory.context import (
    ContextChoice,
    TruncationWarning,
    check_truncation,
    choose_context,
    planned_context,
)
from router_core.inventory.ollama_inventory import ModelDetails, OllamaStatus, parse_show
from router_core.inventory.prompt_tokens import SessionTokens, session_key
from router_core.inventory.shown_models import ShownModels, full_name
from router_core.privacy.ollama_cloud import cloud_models_in_tags
from router_core.providers import wire
from router_core.providers.http import answer_error, make_client, upstream_errors
from router_core.providers.ollama_translate import (
    ChunkTranslator,
    completion_from_ollama,
    keep_alive_value,
    think_value,
    to_ollama_body,
    usage_from_ollama,
)
from router_core.settings import ContextSettings
from router_core.types import ChatRequest, ChunkStream, Completion, ModelInfo

log = logging.getLogger(__name__)
# `truncate: false` (an over-long prompt is an error, not silently cut): Ollama 0.12.4 on.
TRUNCATE_SINCE = (0, 12, 4)


def version_tuple(version: str | None) -> tuple[int, ...] | None:
    parts = []
    for piece in (version or "").lstrip("v").split("-")[0].split("."):
        if not piece.isdigit():
            return None
        parts.append(int(piece))
    return tuple(parts) if parts else None


def takes_think_levels(model: str, details: ModelDetails | None) -> bool:
    """gpt-oss takes "low"/"medium"/"high" (its harmony parser); other thinking models booleans."""
    arch = (details.architecture or "") if details else ""
    return "gptoss" in arch.replace("-", "") or model.startswith("gpt-oss")


def context_length_of(model_info: dict[str, Any] | None) -> int | None:
    """`<arch>.context_length` from `/api/show`'s model_info."""
    if not model_info:
        return None
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if arch else None
    if value is None:
        value = next((v for k, v in model_info.items() if k.endswith(".context_length")), None)
    return int(value) if value else None


@dataclass(frozen=True, slots=True)
class _Turn:
    """One request's sizing, to check its answer against."""

    model: str
    key: str
    messages: list[dict[str, Any]]
    estimate: int
    choice: ContextChoice


def decode_line(provider: str, raw: bytes | str) -> dict[str, Any]:
    """One Ollama JSON answer (a whole body or one NDJSON line): the one place they are decoded."""
    line = wire.parse_ollama_chat_line(provider, raw)  # a wrong shape: UpstreamInvalid
    if "error" in line:
        raise UpstreamError(f"{provider}: {wire.error_message(line['error'])}", kind="server", provider=provider)
    return line


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
        shown: ShownModels | None = None,
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
        self._read_timeout_s = read_timeout_s
        # /api/show per model (full name), read once: from the inventory, or here on first use.
        self._shown: dict[str, ModelDetails | None] = {}
        # The answers this server's inventory reader shares (whichever reads first).
        self._shown_answers = shown if shown is not None else ShownModels()
        # What fits beside the weights (from total memory: stable), set by the inventory.
        self.fit_context: dict[str, int] = {}
        # num_ctx of each model's loaded runner (from /api/ps, then what this provider sent).
        self._runner_ctx: dict[str, int] = {}
        self._ps_read = False
        self._version: str | None = None
        self._version_read = False
        self._tokens = SessionTokens()
        # Answers that read far fewer prompt tokens than were sent, and who hears of them.
        self.truncation_warnings = 0
        self.on_truncation: Callable[[TruncationWarning], object] | None = None

    async def count_tokens(self, request: ChatRequest, model: str) -> int | None:
        return None  # Ollama has no counting endpoint: callers estimate

    def watch_truncation(self, listener: Callable[[TruncationWarning], object]) -> None:
        self.on_truncation = listener

    def use_inventory(self, status: OllamaStatus | None, fits: Mapping[str, int]) -> None:
        """Take what the inventory read (so /api/show is read once per model) and the fits."""
        self.fit_context = {full_name(k): v for k, v in fits.items()}
        if status is None or not status.up:
            return
        self._version, self._version_read = status.version, status.version is not None
        for m in status.models:
            if m.details is not None:
                self._shown[full_name(m.name)] = m.details
        loaded = {full_name(m.name): m.context_length for m in status.loaded}
        self._runner_ctx = {k: v for k, v in loaded.items() if v}
        self._ps_read = True

    async def _get_json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with upstream_errors(self.name):
            if method == "GET":
                response = await self._client.get(path)
            else:
                response = await self._client.post(path, content=orjson.dumps(body))
            if response.status_code >= 300:
                raise await answer_error(self.name, response)
        return wire.decode_object(self.name, response.content, f"the {path} answer")

    async def list_models(self) -> list[ModelInfo]:
        # Read /api/tags directly: the `ollama` package drops the remote fields that mark a
        # cloud model (privacy mode must hide those).
        answer = await self._get_json("GET", "/api/tags")
        entries = wire.check(self.name, wire.OllamaTags, answer, "the /api/tags answer").get("models") or []
        cloud = set(cloud_models_in_tags({"models": entries}))
        return [
            ModelInfo(self.name, name, True, remote=name in cloud)
            for entry in entries
            if isinstance(entry, dict) and (name := str(entry.get("model") or entry.get("name") or ""))
        ]

    async def details(self, model: str) -> ModelDetails | None:
        """/api/show's facts of a model, read once, under the client's read timeout."""
        key = full_name(model)
        if key not in self._shown:
            try:
                answer = self._shown_answers.get(model) or await self._get_json("POST", "/api/show", {"model": model})
            except UpstreamError as exc:
                if exc.upstream_status == 404 or exc.status == 404:
                    raise UpstreamError(
                        f"{self.name}: model '{model}' is not installed (ollama pull {model})",
                        kind="not_found",
                        status=404,
                        provider=self.name,
                    ) from None
                raise
            try:
                self._shown[key] = parse_show(answer)
            except (ValueError, TypeError, AttributeError):
                raise UpstreamInvalid(self.name, "the /api/show answer: bad model_info") from None
            self._shown_answers.put(model, answer)
        return self._shown[key]

    async def model_max_context(self, model: str) -> int | None:
        shown = await self.details(model)
        return shown.max_context if shown else None

    async def _loaded_context(self, model: str) -> int | None:
        if not self._ps_read:
            self._ps_read = True
            try:
                answer = await self._get_json("GET", "/api/ps")
            except UpstreamError:
                answer = {}
            for entry in (answer.get("models") or []) if isinstance(answer, dict) else []:
                ctx = entry.get("context_length") if isinstance(entry, dict) else None
                name = str(entry.get("model") or entry.get("name") or "") if isinstance(entry, dict) else ""
                if name and isinstance(ctx, int) and ctx > 0:
                    self._runner_ctx.setdefault(full_name(name), ctx)
        return self._runner_ctx.get(full_name(model))

    async def _truncate_flag(self) -> bool | None:
        if not self._version_read:
            self._version_read = True
            try:
                answer = await self._get_json("GET", "/api/version")
                self._version = str(answer.get("version") or "") or None if isinstance(answer, dict) else None
            except UpstreamError:
                self._version = None
        found = version_tuple(self._version)
        return False if found is not None and found >= TRUNCATE_SINCE else None

    async def planned_context(self, model: str) -> int:
        """The one context this model gets here (inventory/context.py planned_context)."""
        fit = self.fit_context.get(full_name(model))
        return planned_context(self._context, await self.model_max_context(model), fit)

    async def _chat_body(self, request: ChatRequest, model: str, stream: bool) -> tuple[bytes, _Turn]:
        """The /api/chat body and what to check the answer against."""
        key = session_key(full_name(model), request.session_id, request.messages)
        estimate = self._tokens.estimate(key, request.messages, request.tools, known=request.prompt_tokens)
        try:
            planned = await self.planned_context(model)
            choice = choose_context(
                estimate, request.max_tokens, self._context, planned, await self._loaded_context(model)
            )
        except UpstreamError as exc:
            exc.provider = self.name
            raise
        shown = self._shown.get(full_name(model))
        capabilities = shown.capabilities if shown else ()
        body = to_ollama_body(
            request.body,
            model,
            stream=stream,
            num_ctx=choice.num_ctx,
            num_predict=choice.num_predict,
            keep_alive=keep_alive_value(self._context.keep_alive),
            truncate=await self._truncate_flag(),
            think=think_value(
                request.body,
                request.anthropic_body,
                capabilities,
                takes_think_levels(model, shown),
                small_task=request.small_task,
            ),
        )
        return orjson.dumps(body), _Turn(model, key, request.messages, estimate, choice)

    def _finished(self, turn: _Turn, final: dict[str, Any]) -> None:
        """The runner now holds turn's context; the session's count calibrates its next estimate."""
        self._runner_ctx[full_name(turn.model)] = turn.choice.num_ctx
        if not self._check_truncation(turn.model, turn.estimate, turn.choice.num_ctx, final):
            count = final.get("prompt_eval_count")
            if isinstance(count, int) and count > 0:
                self._tokens.record(turn.key, turn.messages, count)

    def _check_truncation(self, model: str, estimate: int, num_ctx: int, final: dict[str, Any]) -> bool:
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
            return False
        self.truncation_warnings += 1
        log.warning("%s", warning.message)
        if self.on_truncation is not None:
            self.on_truncation(warning)
        return True

    async def complete(self, request: ChatRequest, model: str) -> Completion:
        content, turn = await self._chat_body(request, model, False)
        with upstream_errors(self.name):
            response = await self._client.post(
                "/api/chat", content=content, headers={"content-type": "application/json"}
            )
            if response.status_code >= 300:
                raise await answer_error(self.name, response)
        final = decode_line(self.name, response.content)
        self._finished(turn, final)
        body = completion_from_ollama(final, f"{self.name}/{model}", int(time.time()))
        return Completion(body=body, usage=usage_from_ollama(final))

    async def stream(self, request: ChatRequest, model: str) -> ChunkStream:
        content, turn = await self._chat_body(request, model, True)
        translator = ChunkTranslator(f"{self.name}/{model}", int(time.time()))
        final: dict[str, Any] | None = None
        with upstream_errors(self.name):
            async with self._client.stream(
                "POST", "/api/chat", content=content, headers={"content-type": "application/json"}
            ) as response:
                if response.status_code >= 300:
                    raise await answer_error(self.name, response)
                async for raw in response.aiter_lines():
                    if not raw:
                        continue
                    line = decode_line(self.name, raw)
                    for chunk in translator.translate(line):
                        yield chunk
                    if line.get("done"):
                        final = line
                        break
        if final is None:
            raise UpstreamInvalid(self.name, "the stream ended before the answer was done")
        self._finished(turn, final)
        yield usage_from_ollama(final)

    async def aclose(self) -> None:
        await self._client.aclose()
