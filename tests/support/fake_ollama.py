"""An Ollama-API test server whose tokens come from a real llama-server.

Ollama itself cannot be installed here, so this stands in for it. It follows Ollama's
documented API (docs/api.md in github.com/ollama/ollama; docs.ollama.com/api):

- `GET /api/version` → `{"version"}`
- `GET /api/tags` → `models[]` with name, model, modified_at, size, digest,
  details{parent_model, format, family, families, parameter_size, quantization_level}
- `GET /api/ps` → loaded models with size, size_vram, expires_at, context_length
- `POST /api/show` `{"model"}` → details, model_info (`<arch>.context_length`, block_count,
  attention.head_count_kv, key_length, value_length, embedding_length), capabilities; 404
  `{"error": "model 'x' not found"}` for an unknown model
- `GET /api/status` → `{"cloud": {"disabled", "source"}}` (server/routes.go StatusHandler;
  recent versions only: `status_endpoint=False` answers 404 as older ones do)
- `POST /api/show` of a remote model → `remote_model`, `remote_host` and no tensors; with
  the cloud disabled, 403 `{"error": "ollama cloud is disabled: remote model details are
  unavailable"}` (server/routes.go GetModelInfo)
- `POST /api/chat` → NDJSON lines `{"model","created_at","message":{"role","content"},"done":false}`
  and a final line with `done: true`, `done_reason`, `total_duration`, `load_duration`,
  `prompt_eval_count`, `prompt_eval_duration`, `eval_count`, `eval_duration` (nanoseconds);
  `"stream": false` gives one JSON object; `stream` defaults to true as in Ollama.

Like Ollama it fits the chat into `options.num_ctx` (default 4096) by dropping the oldest
non-system messages, silently, with HTTP 200 — the truncation Hybridge must prevent. Tools
are rendered into the prompt (as Ollama's templates do) so they cost prompt tokens.

Test hooks: `state.requests` (every /api/chat body), `state.replies` (generated texts), `state.cancelled` (streams whose client
went away), `state.script` (queued scripted replies, each a list of `message` dicts, for
tool-call translation tests the base model cannot produce).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

DEFAULT_NUM_CTX = 4096
VERSION = "0.12.6"


@dataclass
class FakeModel:
    name: str
    family: str = "gemma3"
    parameter_size: str = "268.10M"
    quantization_level: str = "Q4_K_M"
    size: int = 253_113_024
    context_length: int = 32768
    block_count: int = 18
    head_count_kv: int = 1
    key_length: int = 256
    value_length: int = 256
    embedding_length: int = 640
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    # Loaded into (fake) VRAM: appears in /api/ps with this many bytes on the GPU.
    loaded_vram: int | None = None
    remote_host: str | None = None  # cloud models carry remote fields in /api/tags
    # The upstream model a remote entry relays to (`ollama cp gpt-oss:120b-cloud mybig`);
    # default: the name without `-cloud`.
    remote_model: str | None = None
    # A runner that does not honour a larger options.num_ctx and runs at this context instead
    # (seen with Ollama's older llama.cpp runner, e.g. qwen2.5-coder:14b kept at 32k when 64k
    # was asked); None: num_ctx is honoured.
    runner_context: int | None = None

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "", "format": "gguf", "family": self.family, "families": [self.family],
            "parameter_size": self.parameter_size, "quantization_level": self.quantization_level,
        }

    def upstream(self) -> str:
        return self.remote_model or self.name.rsplit("-cloud", 1)[0]

    def digest(self) -> str:
        return (self.name.encode().hex() * 8)[:64]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeOllamaState:
    llama_url: str
    models: dict[str, FakeModel]
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    script: list[list[dict[str, Any]]] = field(default_factory=list)
    replies: dict[int, str] = field(default_factory=dict)  # generated text, by index in `requests`
    shows: list[str] = field(default_factory=list)  # every /api/show model asked
    cloud_disabled: bool = False
    status_endpoint: bool = True


def _error(message: str, status: int) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


def _render_tools(tools: list[dict[str, Any]]) -> str:
    return "You may call these tools:\n" + "\n".join(orjson.dumps(t).decode() for t in tools)


def _llama_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Ollama chat messages as plain-text chat for llama-server (the base model has no tool format)."""
    out: list[dict[str, str]] = []
    if tools:
        out.append({"role": "system", "content": _render_tools(tools)})
    for m in messages:
        role = m.get("role", "user")
        text = str(m.get("content") or "")
        if m.get("tool_calls"):
            text += "".join(f"\n[tool call] {orjson.dumps(c).decode()}" for c in m["tool_calls"])
        if role == "tool":
            role, text = "user", f"[tool result {m.get('tool_name', '')}] {text}"
        out.append({"role": role if role in ("system", "user", "assistant") else "user", "content": text})
    return out


class FakeOllama:
    def __init__(self, llama_url: str, models: list[FakeModel] | None = None) -> None:
        models = models or [FakeModel("gemma3:270m", loaded_vram=0)]
        self.state = FakeOllamaState(llama_url.rstrip("/"), {m.name: m for m in models})
        # No keep-alive: llama-server may close an idle connection just as it is reused,
        # which surfaced as spurious 502s under load.
        self.client = httpx.AsyncClient(
            base_url=self.state.llama_url, timeout=httpx.Timeout(300, connect=5),
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self.app = Starlette(routes=[
            Route("/api/version", self.version, methods=["GET"]),
            Route("/api/status", self.status, methods=["GET"]),
            Route("/api/tags", self.tags, methods=["GET"]),
            Route("/api/ps", self.ps, methods=["GET"]),
            Route("/api/show", self.show, methods=["POST"]),
            Route("/api/chat", self.chat, methods=["POST"]),
        ])

    async def version(self, request: Request) -> Response:
        return Response(orjson.dumps({"version": VERSION}), media_type="application/json")

    async def status(self, request: Request) -> Response:
        if not self.state.status_endpoint:
            return Response(b"404 page not found", status_code=404, media_type="text/plain")
        cloud = {"disabled": self.state.cloud_disabled, "source": "env" if self.state.cloud_disabled else "none"}
        return Response(orjson.dumps({"cloud": cloud}), media_type="application/json")

    async def tags(self, request: Request) -> Response:
        models = []
        for m in self.state.models.values():
            entry: dict[str, Any] = {
                "name": m.name, "model": m.name, "modified_at": _now(), "size": m.size,
                "digest": m.digest(), "details": m.details(),
            }
            if m.remote_host:
                entry.update({"remote_model": m.upstream(), "remote_host": m.remote_host})
            models.append(entry)
        return Response(orjson.dumps({"models": models}), media_type="application/json")

    async def ps(self, request: Request) -> Response:
        expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        loaded = [
            {
                "name": m.name, "model": m.name, "size": m.size, "digest": m.digest(), "details": m.details(),
                "expires_at": expires, "size_vram": m.loaded_vram, "context_length": DEFAULT_NUM_CTX,
            }
            for m in self.state.models.values() if m.loaded_vram is not None
        ]
        return Response(orjson.dumps({"models": loaded}), media_type="application/json")

    def _model(self, body: dict[str, Any]) -> FakeModel | None:
        name = str(body.get("model") or body.get("name") or "")
        # Ollama reads a name without a tag as `:latest`.
        return self.state.models.get(name) or self.state.models.get(f"{name}:latest")

    async def show(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        asked = str(body.get("model") or body.get("name") or "")
        self.state.shows.append(asked)
        m = self._model(body)
        if m is None:
            return _error(f"model '{asked}' not found", 404)
        if m.remote_host:
            if self.state.cloud_disabled:
                return _error("ollama cloud is disabled: remote model details are unavailable", 403)
            return Response(orjson.dumps({
                "modelfile": f"FROM {m.name}\n", "details": m.details(), "remote_model": m.upstream(),
                "remote_host": m.remote_host, "model_info": {"general.architecture": m.family},
                "capabilities": m.capabilities, "modified_at": _now(),
            }), media_type="application/json")
        arch = m.family
        return Response(orjson.dumps({
            "modelfile": f"FROM {m.name}\n", "parameters": "", "template": "{{ .Prompt }}",
            "details": m.details(),
            "model_info": {
                "general.architecture": arch,
                "general.parameter_count": 268_098_176,
                f"{arch}.context_length": m.context_length,
                f"{arch}.block_count": m.block_count,
                f"{arch}.embedding_length": m.embedding_length,
                f"{arch}.attention.head_count": 4,
                f"{arch}.attention.head_count_kv": m.head_count_kv,
                f"{arch}.attention.key_length": m.key_length,
                f"{arch}.attention.value_length": m.value_length,
            },
            "capabilities": m.capabilities,
            "modified_at": _now(),
        }), media_type="application/json")

    async def _prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        prompt = (await self.client.post("/apply-template", json={"messages": messages})).json()["prompt"]
        return len((await self.client.post("/tokenize", json={"content": prompt})).json()["tokens"])

    async def _fit(self, messages: list[dict[str, str]], num_ctx: int) -> list[dict[str, str]]:
        """Drop the oldest non-system messages until the prompt fits, as Ollama does."""
        while await self._prompt_tokens(messages) >= num_ctx:
            droppable = [i for i, m in enumerate(messages[:-1]) if m["role"] != "system"]
            if not droppable:
                break
            del messages[droppable[0]]
        return messages

    async def chat(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error("invalid character in request body", 400)
        if not isinstance(body, dict) or not body.get("model"):
            return _error("model is required", 400)
        self.state.requests.append(body)
        model = self._model(body)
        if model is None:
            return _error(f"model '{body['model']}' not found", 404)
        stream = body.get("stream", True) is not False
        if self.state.script:
            return self._scripted(model.name, self.state.script.pop(0), stream)
        options = body.get("options") or {}
        num_ctx = int(options.get("num_ctx") or DEFAULT_NUM_CTX)
        if model.runner_context:
            num_ctx = min(num_ctx, model.runner_context)
        messages = await self._fit(_llama_messages(body.get("messages") or [], body.get("tools")), num_ctx)
        upstream: dict[str, Any] = {
            "messages": messages, "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": int(options.get("num_predict") or 128),
        }
        for key in ("temperature", "top_p", "seed", "stop"):
            if key in options:
                upstream[key] = options[key]
        if isinstance(body.get("format"), dict):
            upstream["response_format"] = {"type": "json_schema", "json_schema": {"schema": body["format"]}}
        lines = self._generate(model.name, upstream, len(self.state.requests) - 1)
        if stream:
            return StreamingResponse(self._ndjson(lines), media_type="application/x-ndjson")
        content, final = "", {}
        async for line in lines:
            content += line["message"]["content"]
            final = line
        final["message"]["content"] = content
        return Response(orjson.dumps(final), media_type="application/json")

    async def _ndjson(self, lines: Any) -> Any:
        finished = False
        try:
            async for line in lines:
                finished = line["done"]
                yield orjson.dumps(line) + b"\n"
        finally:
            if not finished:
                self.state.cancelled += 1

    async def _generate(self, name: str, upstream: dict[str, Any], index: int) -> Any:
        started = time.perf_counter_ns()
        finish, usage, timings, text_so_far = "stop", {}, {}, []
        async with self.client.stream("POST", "/v1/chat/completions", json=upstream) as response:
            async for raw in response.aiter_lines():
                if not raw.startswith("data: ") or raw == "data: [DONE]":
                    continue
                event = orjson.loads(raw[6:])
                usage = event.get("usage") or usage
                timings = event.get("timings") or timings
                for choice in event.get("choices") or []:
                    finish = choice.get("finish_reason") or finish
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        text_so_far.append(text)
                        yield {"model": name, "created_at": _now(),
                               "message": {"role": "assistant", "content": text}, "done": False}
        self.state.replies[index] = "".join(text_so_far)
        prompt_ns = int(float(timings.get("prompt_ms", 0)) * 1e6)
        eval_ns = int(float(timings.get("predicted_ms", 0)) * 1e6)
        yield {
            "model": name, "created_at": _now(), "message": {"role": "assistant", "content": ""},
            "done": True, "done_reason": "length" if finish == "length" else "stop",
            "total_duration": time.perf_counter_ns() - started, "load_duration": 0,
            "prompt_eval_count": int(usage.get("prompt_tokens", 0)), "prompt_eval_duration": prompt_ns,
            "eval_count": int(usage.get("completion_tokens", 0)), "eval_duration": eval_ns,
        }

    def _scripted(self, name: str, script: list[dict[str, Any]], stream: bool) -> Response:
        lines: list[dict[str, Any]] = [
            {"model": name, "created_at": _now(), "message": {"role": "assistant", **m}, "done": False} for m in script
        ]
        final = {
            "model": name, "created_at": _now(), "message": {"role": "assistant", "content": ""}, "done": True,
            "done_reason": "stop", "total_duration": 1_000_000, "load_duration": 0, "prompt_eval_count": 12,
            "prompt_eval_duration": 500_000, "eval_count": len(lines), "eval_duration": 500_000,
        }
        if stream:
            return Response(b"".join(orjson.dumps(x) + b"\n" for x in [*lines, final]), media_type="application/x-ndjson")
        merged: dict[str, Any] = {"role": "assistant", "content": "".join(m.get("content", "") for m in script)}
        calls = [c for m in script for c in m.get("tool_calls", [])]
        if calls:
            merged["tool_calls"] = calls
        return Response(orjson.dumps({**final, "message": merged}), media_type="application/json")
