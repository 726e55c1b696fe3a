"""Ollama API requests (`/api/chat`, `/api/generate`) → Hybridge's chat-completions shape,
and OpenAI chunks → Ollama's NDJSON lines.

The inverse of providers/ollama_translate.py, following Ollama's docs/api.md (ollama/ollama):
messages with `images` (base64) and `tool_calls` whose arguments are objects, `tool`
messages, `options` (num_predict, temperature, top_p, stop, seed...), `format` ("json" or
a JSON schema), `stream` true by default; answers as lines of `{"model", "created_at",
"message" | "response", "done"}` and a last line with `done_reason` and the counters
`total_duration`, `load_duration`, `prompt_eval_count`, `prompt_eval_duration`,
`eval_count`, `eval_duration` (nanoseconds).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from router_core.errors import BadRequest
from router_core.types import JSON, Usage

OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "num_predict": "max_tokens",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
VIRTUAL = ("auto", "local", "cloud")


def created_at() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def model_name(name: Any) -> str:
    """An Ollama model name without the `:latest` a client adds to a bare name."""
    if not isinstance(name, str) or not name:
        raise BadRequest("model is required", param="model")
    return name.removesuffix(":latest")


def _content(message: JSON, where: str) -> str | list[JSON]:
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise BadRequest(f"{where}.content must be a string", param=f"{where}.content")
    images = message.get("images") or []
    if not images:
        return text
    parts: list[JSON] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}} for image in images]
    return parts


def chat_messages(messages: Any) -> list[JSON]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")
    out: list[JSON] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool"):
            raise BadRequest(f"{where}.role must be system, user, assistant or tool", param=f"{where}.role")
        role = message["role"]
        converted: JSON = {"role": role, "content": _content(message, where)}
        if role == "tool":
            converted["tool_call_id"] = str(message.get("tool_call_id") or message.get("tool_name") or "call_0")
        calls = message.get("tool_calls") if role == "assistant" else None
        if calls:
            converted["tool_calls"] = [
                {
                    "id": str(call.get("id") or f"call_{i}_{j}"),
                    "type": "function",
                    "function": {
                        "name": str((call.get("function") or {}).get("name") or ""),
                        "arguments": orjson.dumps((call.get("function") or {}).get("arguments") or {}).decode(),
                    },
                }
                for j, call in enumerate(calls)
                if isinstance(call, dict)
            ]
        out.append(converted)
    return out


def _common(body: JSON, chat: JSON) -> JSON:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise BadRequest("options must be an object", param="options")
    for ollama_name, openai_name in OPTIONS.items():
        if options.get(ollama_name) is not None and not (ollama_name == "num_predict" and options[ollama_name] < 0):
            chat[openai_name] = options[ollama_name]
    fmt = body.get("format")
    if fmt == "json":
        chat["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt}}
    if body.get("tools"):
        chat["tools"] = body["tools"]
    if body.get("think") is not None:
        chat["reasoning_effort"] = "none" if body["think"] is False else "medium"
    chat["stream"] = body.get("stream", True) is not False
    return chat


def chat_body(body: JSON, model: str) -> JSON:
    return _common(body, {"model": model, "messages": chat_messages(body.get("messages"))})


def generate_body(body: JSON, model: str) -> JSON:
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string", param="prompt")
    messages: list[JSON] = []
    if isinstance(body.get("system"), str) and body["system"]:
        messages.append({"role": "system", "content": body["system"]})
    messages.append(chat_messages([{"role": "user", "content": prompt, "images": body.get("images")}])[0])
    return _common(body, {"model": model, "messages": messages})


def final_fields(usage: Usage, done_reason: str, started: float, first: float | None) -> JSON:
    """The counters of Ollama's last line; durations measured here, in nanoseconds."""
    now = time.perf_counter()
    first = first if first is not None else now
    eval_ns = int((now - first) * 1e9)
    if usage.decode_tokens_per_second and usage.output_tokens:
        eval_ns = int(usage.output_tokens / usage.decode_tokens_per_second * 1e9)
    return {
        "done": True,
        "done_reason": done_reason,
        "total_duration": int((now - started) * 1e9),
        "load_duration": 0,
        "prompt_eval_count": usage.prompt_tokens,
        "prompt_eval_duration": int((first - started) * 1e9),
        "eval_count": usage.output_tokens,
        "eval_duration": eval_ns,
    }
