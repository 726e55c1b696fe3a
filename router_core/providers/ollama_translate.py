"""OpenAI chat ⇄ Ollama native `/api/chat` (pure functions, no I/O).

Follows Ollama's docs/api.md: messages with `images` (base64) and assistant `tool_calls`
whose `arguments` are objects, `tool` messages with `tool_name`, `options` for sampling and
`num_ctx`, NDJSON answers whose last line carries the counters.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from router_core.errors import BadRequest
from router_core.types import JSON, Usage

# OpenAI sampling fields and their Ollama `options` names.
_OPTION_FIELDS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "stop": "stop",
}


def _parts(content: Any, role: str, where: str) -> list[JSON]:
    """Ollama messages for one OpenAI message's content, as openai/openai.go builds them.

    A string is one message; a list of parts is one message per part (a text part its own
    `content`, an image part its own `images`), in order, so the model's template renders
    them as Ollama's own /v1 endpoint would (not glued together).
    """
    if content is None or isinstance(content, str):
        return [{"role": role, "content": content or ""}]
    out: list[JSON] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            out.append({"role": role, "content": str(part.get("text", ""))})
        elif kind == "image_url":
            url = part.get("image_url", {})
            url = url.get("url", "") if isinstance(url, dict) else url
            head, sep, data = str(url).partition(";base64,")
            if not (head.startswith("data:image/") and sep):
                raise BadRequest(
                    "local models take images as base64 data: URLs only",
                    param=f"{where}.content[{i}].image_url",
                )
            out.append({"role": role, "content": "", "images": [data]})
        else:
            raise BadRequest(
                f"content part type '{kind}' is not supported by local models", param=f"{where}.content[{i}]"
            )
    return out or [{"role": role, "content": ""}]


def _tool_arguments(raw: Any, where: str) -> Any:
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest("tool call arguments are not valid JSON", param=where) from None
    return raw if raw is not None else {}


def _tool_calls(calls: list[JSON], where: str, call_names: dict[str, str]) -> list[JSON]:
    out = []
    for j, call in enumerate(calls):
        fn = call.get("function") or {}
        name = fn.get("name", "")
        arguments = _tool_arguments(fn.get("arguments"), f"{where}.tool_calls[{j}].function.arguments")
        item: JSON = {"function": {"name": name, "arguments": arguments}}
        if call.get("id"):
            # api/types.go ToolCall.ID: renderers match results to calls by it.
            call_names[call["id"]] = name
            item["id"] = call["id"]
        out.append(item)
    return out


def to_ollama_messages(messages: list[JSON]) -> list[JSON]:
    out: list[JSON] = []
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message["role"]
        group = _parts(message.get("content"), "system" if role == "developer" else role, where)
        last = group[-1]
        thinking = message.get("reasoning_content") or message.get("reasoning")
        if role == "assistant" and isinstance(thinking, str) and thinking:
            last["thinking"] = thinking
        if role == "assistant" and message.get("tool_calls"):
            last["tool_calls"] = _tool_calls(message["tool_calls"], where, call_names)
        if role == "tool":
            call_id = message.get("tool_call_id") or ""
            name = call_names.get(call_id)
            if name:
                last["tool_name"] = name
            if call_id:
                last["tool_call_id"] = call_id  # api/types.go Message.ToolCallID
        out.extend(group)
    return out


def think_value(
    body: JSON,
    anthropic_body: JSON | None,
    capabilities: tuple[str, ...],
    levels: bool,
    *,
    small_task: str | None = None,
) -> bool | str | None:
    """Ollama's `think` for a request, or None to leave it out.

    Never sent to a model without the `thinking` capability (a 400 there: server/routes.go).
    From the client: OpenAI `reasoning_effort` ("none" turns it off), Anthropic `thinking`
    (`{"type": "disabled"}` turns it off; a budget maps to a level). Levels go only to models
    that take them (gpt-oss); others get true/false. Absent: the model's default (thinking
    models think). Small-model work (titles, compaction) is answered without thinking, or at
    the lowest level for models that cannot switch it off (gpt-oss).
    """
    if "thinking" not in capabilities:
        return None
    if small_task is not None:
        return "low" if levels else False
    effort = body.get("reasoning_effort")
    level: str | None = None
    on: bool | None = None
    if isinstance(effort, str):
        on = effort not in ("none", "minimal")
        level = effort if effort in ("low", "medium", "high") else None
    thinking = (anthropic_body or {}).get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            on = False
        elif thinking.get("type") in ("enabled", "adaptive"):
            on = True
            budget = thinking.get("budget_tokens")
            if isinstance(budget, int):
                level = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    if on is None:
        return None
    if on and levels:
        return level or "medium"
    return on


def to_ollama_body(
    body: JSON,
    model: str,
    *,
    stream: bool,
    num_ctx: int,
    num_predict: int | None = None,
    keep_alive: str | int | None = None,
    truncate: bool | None = None,
    think: bool | str | None = None,
) -> JSON:
    """The `/api/chat` body for an OpenAI chat-completions body.

    Runner options (`num_ctx` alone of them) are the same on every request of a steady
    session, so Ollama never reloads the model; `num_predict` is not a runner option.
    """
    options: JSON = {"num_ctx": num_ctx}
    for openai_name, ollama_name in _OPTION_FIELDS.items():
        if body.get(openai_name) is not None:
            value = body[openai_name]
            options[ollama_name] = [value] if openai_name == "stop" and isinstance(value, str) else value
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if num_predict:
        options["num_predict"] = num_predict
    elif max_tokens:
        options["num_predict"] = max_tokens
    out: JSON = {
        "model": model,
        "messages": to_ollama_messages(body["messages"]),
        "stream": stream,
        "options": options,
    }
    if keep_alive is not None:
        out["keep_alive"] = keep_alive
    if truncate is not None:
        out["truncate"] = truncate
    if body.get("tools"):
        out["tools"] = body["tools"]
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_object":
            out["format"] = "json"
        elif fmt.get("type") == "json_schema":
            out["format"] = (fmt.get("json_schema") or {}).get("schema", "json")
    if think is not None:
        out["think"] = think
    return out


def keep_alive_value(setting: str) -> str | int:
    """settings' keep_alive as Ollama reads it: whole seconds as a number ("-1": forever), else the duration."""
    return int(setting) if setting.lstrip("-").isdigit() else setting


def usage_from_ollama(final: JSON) -> Usage:
    evals = int(final.get("eval_count") or 0)
    duration_ns = int(final.get("eval_duration") or 0)
    return Usage(
        input_tokens=int(final.get("prompt_eval_count") or 0),
        output_tokens=evals,
        decode_tokens_per_second=(evals / duration_ns * 1e9) if evals and duration_ns else None,
    )


def finish_reason(done_reason: str | None, saw_tool_calls: bool) -> str:
    if saw_tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def tool_call_deltas(calls: list[JSON], first_index: int) -> list[JSON]:
    """Ollama sends each tool call whole; OpenAI streams them as indexed deltas."""
    deltas = []
    for offset, call in enumerate(calls):
        fn = call.get("function") or {}
        args = fn.get("arguments", {})
        deltas.append(
            {
                "index": first_index + offset,
                "id": call.get("id") or f"call_{secrets.token_hex(12)}",
                "type": "function",
                "function": {
                    "name": fn.get("name", ""),
                    "arguments": args if isinstance(args, str) else orjson.dumps(args).decode(),
                },
            }
        )
    return deltas


def new_completion_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


class ChunkTranslator:
    """Turns the NDJSON lines of one `/api/chat` stream into OpenAI chunks."""

    def __init__(self, model_id: str, created: int) -> None:
        self.base: JSON = {
            "id": new_completion_id(),
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_id,
        }
        self.sent_role = False
        self.tool_calls = 0

    def _chunk(self, delta: JSON, finish: str | None) -> JSON:
        return {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def translate(self, line: JSON) -> list[JSON]:
        message = line.get("message") or {}
        delta: JSON = {}
        if not self.sent_role:
            delta["role"] = "assistant"
            self.sent_role = True
        if message.get("thinking"):
            delta["reasoning_content"] = message["thinking"]
        if message.get("content"):
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = tool_call_deltas(message["tool_calls"], self.tool_calls)
            self.tool_calls += len(message["tool_calls"])
        chunks = []
        if delta:
            chunks.append(self._chunk(delta, None))
        if line.get("done"):
            chunks.append(self._chunk({}, finish_reason(line.get("done_reason"), self.tool_calls > 0)))
        return chunks


def completion_from_ollama(final: JSON, model_id: str, created: int) -> JSON:
    """An OpenAI `chat.completion` body from a non-streamed `/api/chat` answer."""
    message = final.get("message") or {}
    out: JSON = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("thinking"):
        out["reasoning_content"] = message["thinking"]
    calls = message.get("tool_calls") or []
    if calls:
        out["tool_calls"] = tool_call_deltas(calls, 0)
        for call in out["tool_calls"]:
            call.pop("index")
    return {
        "id": new_completion_id(),
        "object": "chat.completion",
        "created": created,
        "model": model_id,
        "choices": [
            {"index": 0, "message": out, "finish_reason": finish_reason(final.get("done_reason"), bool(calls))}
        ],
    }
