"""An Ollama front door on Hybridge's port: `OLLAMA_HOST=http://127.0.0.1:11435` points any
Ollama client (the `ollama` libraries, Continue, Zed, Open WebUI, Copilot's Ollama
provider, Aider's `ollama_chat/`) at Hybridge, and routing applies.

Follows ollama/ollama docs/api.md: `/api/version`, `/api/tags`, `/api/show`, `/api/ps`,
`/api/chat` and `/api/generate` (NDJSON while streaming, the default), errors as
`{"error": "..."}`. The models are the virtual `auto`, `local`, `cloud` plus the real
local ones, by their Ollama names; a real one is served by the Ollama provider that holds
it. Model management (`/api/pull`, `/api/delete`, ...) is refused: that is Ollama's job.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router_core.errors import BadRequest, HybridgeError
from router_core.server.chat_endpoint import ChatEndpoint, Parsed
from router_core.server.errors import error_headers
from router_core.server.helpers import json_response, new_request_id, read_json
from router_core.server.ollama_front_translate import (
    VIRTUAL,
    chat_body,
    created_at,
    final_fields,
    generate_body,
    model_name,
)
from router_core.server.openai_request import parse_chat_request
from router_core.server.routed import StreamEncoder
from router_core.server.services import ChatServices
from router_core.types import JSON, Completion, Usage

# The Ollama version reported: clients check for a minimum (Copilot wants >= 0.6.4).
OLLAMA_VERSION = "0.13.0"
NDJSON_HEADERS = [(b"content-type", b"application/x-ndjson"), (b"cache-control", b"no-cache")]
MANAGEMENT = ("pull", "push", "delete", "create", "copy", "blobs/{digest}")
DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop"}


def ollama_error(exc: HybridgeError, request_id: str) -> Response:
    return Response(
        orjson.dumps({"error": exc.message}),
        status_code=exc.status,
        media_type="application/json",
        headers=error_headers(exc, request_id),
    )


def _tool_call(call: JSON) -> JSON:
    try:
        arguments = orjson.loads(call["arguments"] or "{}")
    except orjson.JSONDecodeError:
        arguments = {"raw_arguments": call["arguments"]}
    return {"function": {"name": call["name"], "arguments": arguments}}


class OllamaStream:
    """OpenAI chunks → Ollama lines; tool calls go out whole (as Ollama's own), once done."""

    def __init__(self, model: str, field: Literal["message", "response"], started: float) -> None:
        self.model = model
        self.field = field
        self.started = started
        self.first: float | None = None
        self.calls: dict[int, JSON] = {}
        self.finish_reason: str | None = None

    def _line(self, text: str, **extra: object) -> bytes:
        body: JSON = {"model": self.model, "created_at": created_at()}
        if self.field == "message":
            body["message"] = {"role": "assistant", "content": text, **extra}
        else:
            body["response"] = text
        return orjson.dumps({**body, "done": False}) + b"\n"

    def chunk(self, chunk: JSON) -> bytes:
        if self.first is None:
            self.first = time.perf_counter()
        out = b""
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            thinking = delta.get("reasoning_content")
            if isinstance(thinking, str) and thinking and self.field == "message":
                out += self._line("", thinking=thinking)
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._line(text)
            for call in delta.get("tool_calls") or []:
                held = self.calls.setdefault(int(call.get("index") or 0), {"name": "", "arguments": ""})
                fn = call.get("function") or {}
                held["name"] += fn.get("name") or ""
                held["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def finish_line(self, usage: Usage) -> JSON:
        body: JSON = {"model": self.model, "created_at": created_at()}
        if self.field == "message":
            body["message"] = {"role": "assistant", "content": ""}
        else:
            body["response"] = ""
        return {
            **body,
            **final_fields(usage, DONE_REASONS.get(self.finish_reason or "stop", "stop"), self.started, self.first),
        }

    def finish(self, usage: Usage) -> bytes:
        out = b""
        if self.calls and self.field == "message":
            out = self._line("", tool_calls=[_tool_call(c) for _, c in sorted(self.calls.items())])
        return out + orjson.dumps(self.finish_line(usage)) + b"\n"


class OllamaEncoder:
    api: Literal["openai", "anthropic", "responses", "ollama"] = "ollama"
    stream_headers = NDJSON_HEADERS

    def __init__(self, model: str, field: Literal["message", "response"]) -> None:
        self.model = model
        self.field = field
        self.started = time.perf_counter()

    def error_response(self, exc: HybridgeError, request_id: str) -> Response:
        return ollama_error(exc, request_id)

    def stream_error(self, exc: HybridgeError, request_id: str) -> bytes:
        return orjson.dumps({"error": exc.message}) + b"\n"

    def completion(self, completion: Completion) -> bytes:
        stream = OllamaStream(self.model, self.field, self.started)
        choice = (completion.body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        calls = [
            {"index": i, "function": c.get("function") or {}} for i, c in enumerate(message.get("tool_calls") or [])
        ]
        stream.chunk({"choices": [{"delta": {"tool_calls": calls}, "finish_reason": choice.get("finish_reason")}]})
        final = stream.finish_line(completion.usage)
        text = message.get("content") or ""
        if self.field == "message":
            final["message"] = {"role": "assistant", "content": text}
            if message.get("reasoning_content"):
                final["message"]["thinking"] = message["reasoning_content"]
            if stream.calls:
                final["message"]["tool_calls"] = [_tool_call(c) for _, c in sorted(stream.calls.items())]
        else:
            final["response"] = text
        return orjson.dumps(final)

    def stream(self, model_id: str, started_at: float, request_id: str) -> StreamEncoder:
        return OllamaStream(self.model, self.field, self.started)


class OllamaChatEndpoint(ChatEndpoint):
    """POST /api/chat or /api/generate."""

    api = "ollama"

    def __init__(self, services: ChatServices, field: Literal["message", "response"]) -> None:
        super().__init__(services)
        self.field = field

    def _route_model(self, name: str) -> str:
        if name.partition(":")[0] in VIRTUAL or "/" in name:
            return name
        for provider, conf in self.services.settings.providers.items():
            if conf.kind == "ollama":
                return f"{provider}/{name}"  # a real local model: the Ollama that holds it
        raise BadRequest(f"model '{name}' not found", status=404)

    def parse(self, headers: dict[str, str], body: Any) -> Parsed:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        name = model_name(body.get("model"))
        build = chat_body if self.field == "message" else generate_body
        chat = parse_chat_request(build(body, self._route_model(name)), headers)
        return Parsed(chat, lambda: OllamaEncoder(str(body["model"]), self.field), requested_model=name)

    def error(self, exc: HybridgeError, request_id: str) -> Response:
        return ollama_error(exc, request_id)


def _details(family: str) -> JSON:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "",
        "quantization_level": "",
    }


def routes(runtime: ChatServices) -> list[BaseRoute]:
    async def version(request: Request) -> Response:
        return json_response({"version": OLLAMA_VERSION})

    async def local_names() -> list[str]:
        ollama = {p for p, conf in runtime.settings.providers.items() if conf.kind == "ollama"}
        return [ref.partition("/")[2] for ref in await runtime.list_models() if ref.partition("/")[0] in ollama]

    async def tags(request: Request) -> Response:
        names = [*VIRTUAL, *await local_names()]
        models = [
            {
                "name": n,
                "model": n,
                "modified_at": "1970-01-01T00:00:00Z",
                "size": 0,
                "digest": "",
                "details": _details("hybridge" if n in VIRTUAL else ""),
            }
            for n in names
        ]
        return json_response({"models": models})

    async def show(request: Request) -> Response:
        try:
            body = await read_json(request, runtime.settings.server.max_body_bytes)
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            name = model_name(body.get("model") or body.get("name"))
        except HybridgeError as exc:
            return ollama_error(exc, new_request_id())
        if name.partition(":")[0] not in VIRTUAL and name not in await local_names():
            return ollama_error(BadRequest(f"model '{name}' not found", status=404), new_request_id())
        context = runtime.local_context_limit() or runtime.settings.routing.local_context_tokens
        return json_response(
            {
                "modelfile": f"# served by Hybridge ({name})",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": _details("hybridge"),
                "model_info": {"general.architecture": "hybridge", "hybridge.context_length": context},
                "capabilities": ["completion", "tools"],
                "modified_at": "1970-01-01T00:00:00Z",
            }
        )

    async def ps(request: Request) -> Response:
        return json_response({"models": []})

    async def refused(request: Request) -> Response:
        what = request.url.path.removeprefix("/api/")
        err = BadRequest(
            f"Hybridge does not manage models ({what}): do that in Ollama itself "
            "(e.g. `ollama pull NAME` against Ollama's own port)",
            status=403,
        )
        return ollama_error(err, new_request_id())

    return [
        Route("/api/version", version, methods=["GET"]),
        Route("/api/tags", tags, methods=["GET"]),
        Route("/api/show", show, methods=["POST"]),
        Route("/api/ps", ps, methods=["GET"]),
        Route("/api/chat", OllamaChatEndpoint(runtime, "message"), methods=["POST"]),
        Route("/api/generate", OllamaChatEndpoint(runtime, "response"), methods=["POST"]),
        *(Route(f"/api/{name}", refused, methods=["POST", "DELETE", "HEAD"]) for name in MANAGEMENT),
    ]
