"""OpenAI chat ⇄ Anthropic Messages for an Anthropic upstream (pure functions, no I/O).

Follows Anthropic's Messages API reference (docs.claude.com/en/api/messages): a top-level
`system`, alternating user/assistant turns of content blocks (`text`, `image` with a base64
or url source, `tool_use`, `tool_result`), `tools` with `input_schema`, `tool_choice`
(auto/any/tool/none), `stop_sequences`, a required `max_tokens`; streaming as the SSE events
of docs.claude.com/en/docs/build-with-claude/streaming; prompt caching with
`cache_control: {"type": "ephemeral"}` breakpoints (at most 4) as in
docs.claude.com/en/docs/build-with-claude/prompt-caching.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson

from router_core.errors import BadRequest
from router_core.routing.tokens import CHARS_PER_TOKEN, IMAGE_TOKENS
from router_core.types import JSON, Usage

# Anthropic's stop_reason → OpenAI's finish_reason.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Blocks that came in through /v1/messages and pass through as they are.
NATIVE_BLOCKS = frozenset({"image", "document", "search_result"})
# Blocks a cache_control breakpoint may sit on (thinking blocks cannot hold one).
CACHEABLE_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "search_result"})
CACHE_MIN_TOKENS = 1024
MAX_BREAKPOINTS = 4
EPHEMERAL: JSON = {"type": "ephemeral"}
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def tool_id(raw: Any) -> str:
    """Anthropic tool ids must match ^[a-zA-Z0-9_-]+$; other servers' ids may not."""
    text = _BAD_ID_CHARS.sub("_", str(raw or ""))
    return text or f"toolu_{secrets.token_hex(12)}"


def _image_block(url: Any, where: str) -> JSON:
    url = str(url or "")
    if url.startswith("data:"):
        head, sep, data = url.partition(";base64,")
        media = head[5:]
        if not sep or media not in IMAGE_TYPES:
            raise BadRequest(f"Anthropic takes base64 images of type {', '.join(sorted(IMAGE_TYPES))}", param=where)
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest("an image_url must be a data: URL or an http(s) URL", param=where)


def _content_blocks(content: Any, where: str) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            if not part.get("text"):
                continue  # Anthropic rejects empty text blocks
            block: JSON = {"type": "text", "text": part["text"]}
        elif kind == "image_url":
            url = part.get("image_url")
            block = _image_block(url.get("url") if isinstance(url, dict) else url, f"{where}.content[{j}].image_url")
        elif kind in NATIVE_BLOCKS:
            block = {k: v for k, v in part.items() if k != "cache_control"}
        else:
            raise BadRequest(f"content part type '{kind}' cannot be sent to Anthropic", param=f"{where}.content[{j}]")
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _tool_input(raw: Any, where: str) -> JSON:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise BadRequest("tool call arguments are not valid JSON", param=where) from None
    if not isinstance(value, dict):
        raise BadRequest("tool call arguments must be a JSON object for Anthropic", param=where)
    return value


def _tool_result(message: JSON, where: str) -> JSON:
    content = message.get("content")
    result: JSON = {"type": "tool_result", "tool_use_id": tool_id(message.get("tool_call_id"))}
    if isinstance(content, str):
        result["content"] = content
    else:
        result["content"] = _content_blocks(content, where)
    return result


def to_anthropic_messages(messages: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    """(system blocks, messages): system turns gather into `system`, tool turns become
    `tool_result` blocks of a user turn, and same-role neighbours merge into one turn."""
    system: list[JSON] = []
    out: list[JSON] = []

    def append(role: str, blocks: list[JSON]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message["role"]
        if role in ("system", "developer"):
            for block in _content_blocks(message.get("content"), where):
                if block["type"] != "text":
                    raise BadRequest("a system message can hold only text", param=f"{where}.content")
                system.append(block)
        elif role == "user":
            append("user", _content_blocks(message.get("content"), where))
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"), where)
            for j, call in enumerate(message.get("tool_calls") or []):
                fn = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tool_id(call.get("id")),
                        "name": fn.get("name", ""),
                        "input": _tool_input(fn.get("arguments"), f"{where}.tool_calls[{j}].function.arguments"),
                    }
                )
            append("assistant", blocks)
        else:  # tool / function
            append("user", [_tool_result(message, where)])
    if not out:
        raise BadRequest("Anthropic needs at least one user or assistant message", param="messages")
    return system, out


def to_anthropic_tools(tools: list[JSON]) -> list[JSON]:
    out = []
    for tool in tools:
        fn = tool["function"]
        schema = dict(fn.get("parameters") or {"type": "object", "properties": {}})
        schema.setdefault("type", "object")
        item: JSON = {"name": fn["name"], "input_schema": schema}
        if fn.get("description"):
            item["description"] = fn["description"]
        out.append(item)
    return out


def to_anthropic_tool_choice(choice: Any, parallel: Any) -> JSON | None:
    out: JSON | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    else:
        out = {"type": "tool", "name": choice["function"]["name"]}
    if parallel is False:
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
        if out["type"] == "none":
            out.pop("disable_parallel_tool_use")
    return out


def to_anthropic_body(body: JSON, model: str, *, stream: bool, default_max_tokens: int) -> JSON:
    """The Messages body for an OpenAI chat-completions body."""
    system, messages = to_anthropic_messages(body["messages"])
    out: JSON = {
        "model": model,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens,
        "messages": messages,
    }
    if system:
        out["system"] = system
    if stream:
        out["stream"] = True
    if body.get("temperature") is not None:
        out["temperature"] = min(float(body["temperature"]), 1.0)  # OpenAI allows up to 2
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    stops = [s for s in stops if s.strip()]  # Anthropic refuses whitespace-only sequences
    if stops:
        out["stop_sequences"] = stops
    if body.get("tools"):
        # Sent even with tool_choice "none": a history holding tool_use blocks needs them.
        out["tools"] = to_anthropic_tools(body["tools"])
        choice = to_anthropic_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    return out


# Prompt caching ----------------------------------------------------------------------------


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return len(block) // CHARS_PER_TOKEN
    if not isinstance(block, dict):
        return 0
    if block.get("type") == "image":
        return IMAGE_TOKENS
    text = block.get("text")
    if isinstance(text, str):
        return len(text) // CHARS_PER_TOKEN
    return len(orjson.dumps(block)) // CHARS_PER_TOKEN


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, list):
        return content
    return [content] if content else []


def has_cache_control(body: JSON) -> bool:
    if "cache_control" in body:
        return True
    parts = [*(body.get("tools") or []), *_blocks(body.get("system"))]
    for message in body.get("messages") or []:
        parts += _blocks(message.get("content"))
    return any(isinstance(p, dict) and "cache_control" in p for p in parts)


def _as_blocks(content: Any) -> list[Any]:
    """String content as a list of one text block, so a block can carry cache_control."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _mark_last_cacheable(blocks: list[Any]) -> bool:
    for i in range(len(blocks) - 1, -1, -1):
        block = blocks[i]
        if isinstance(block, dict) and block.get("type") in CACHEABLE_BLOCKS:
            blocks[i] = {**block, "cache_control": EPHEMERAL}
            return True
    return False


def add_cache_breakpoints(body: JSON, min_tokens: int = CACHE_MIN_TOKENS) -> JSON:
    """Prompt caching "auto": breakpoints where the prefix before them will repeat.

    Anthropic caches tools → system → messages as one prefix. We mark the end of the
    system prompt (or of the tools when there is none) once that prefix is over
    `min_tokens`, the last message (the next turn starts with all of this), and the end of
    the previous user turn (a cache hit even when the newest turn adds more than the 20
    blocks a breakpoint looks back over). A body the client already marked is left alone.
    """
    if has_cache_control(body):
        return body
    out = dict(body)
    tools = [dict(t) for t in out.get("tools") or []]
    system = _as_blocks(out["system"]) if out.get("system") else []
    messages = [dict(m) for m in out.get("messages") or []]
    prefix = sum(_block_tokens(t) for t in tools) + sum(_block_tokens(b) for b in system)
    marks = 0
    if prefix >= min_tokens:
        if system and _mark_last_cacheable(system):
            marks += 1
        elif tools:
            tools[-1]["cache_control"] = EPHEMERAL
            marks += 1
    running = prefix
    totals = []
    for message in messages:
        running += sum(_block_tokens(b) for b in _blocks(message.get("content")))
        totals.append(running)
    targets = []
    if messages and totals[-1] >= min_tokens:
        targets.append(len(messages) - 1)
        users = [i for i, m in enumerate(messages[:-1]) if m.get("role") == "user" and totals[i] >= min_tokens]
        if users and users[-1] < len(messages) - 2:
            targets.append(users[-1])
    for index in targets:
        if marks >= MAX_BREAKPOINTS:
            break
        content = _as_blocks(messages[index].get("content") or [])
        if _mark_last_cacheable(content):
            messages[index]["content"] = content
            marks += 1
    if tools:
        out["tools"] = tools
    if system:
        out["system"] = system
    out["messages"] = messages
    return out


# Responses ---------------------------------------------------------------------------------


def _thinking_tokens(data: JSON) -> int | None:
    details = data.get("output_tokens_details")
    value = details.get("thinking_tokens") if isinstance(details, dict) else None
    return int(value) if value is not None else None


def usage_from_anthropic(data: JSON | None) -> Usage:
    """Anthropic's usage is already ours: input_tokens excludes cache reads and writes."""
    data = data or {}
    return Usage(
        input_tokens=int(data.get("input_tokens") or 0),
        output_tokens=int(data.get("output_tokens") or 0),
        cache_read_tokens=int(data.get("cache_read_input_tokens") or 0),
        cache_write_tokens=int(data.get("cache_creation_input_tokens") or 0),
        reasoning_tokens=_thinking_tokens(data) or 0,
    )


def merge_usage(usage: Usage, data: JSON | None) -> Usage:
    """A message_delta's usage: cumulative counts that replace the ones it carries."""
    if not data:
        return usage
    fields = (
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("cache_read_input_tokens", "cache_read_tokens"),
        ("cache_creation_input_tokens", "cache_write_tokens"),
    )
    for wire, ours in fields:
        if data.get(wire) is not None:
            setattr(usage, ours, int(data[wire]))
    thinking = _thinking_tokens(data)
    if thinking is not None:
        usage.reasoning_tokens = thinking
    return usage


def completion_from_anthropic(message: JSON, model_id: str, created: int) -> JSON:
    """An OpenAI `chat.completion` body from a Messages response."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[JSON] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")  # a null is as good as absent
        elif kind == "thinking":
            thinking.append(block.get("thinking") or "")
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id") or "",
                    "type": "function",
                    "function": {
                        "name": block.get("name") or "",
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    out: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if thinking:
        out["reasoning_content"] = "".join(thinking)
    if calls:
        out["tool_calls"] = calls
    return {
        "id": message.get("id") or f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": created,
        "model": model_id,
        "choices": [
            {"index": 0, "message": out, "finish_reason": FINISH_REASONS.get(message.get("stop_reason") or "", "stop")}
        ],
    }


class StreamTranslator:
    """Turns the events of one Messages stream into OpenAI chunks.

    The role goes out with the first content, not on `message_start`: an Anthropic stream
    can fail (overloaded_error) right after it starts, and until a chunk is yielded the
    executor may still fall back to another candidate.
    """

    def __init__(self, model_id: str, created: int) -> None:
        self.base: JSON = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_id,
        }
        self.usage = Usage()
        self.sent_role = False
        self.tool_index: dict[int, int] = {}  # content block index → OpenAI tool_calls index
        self.finished = False

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        if not self.sent_role:
            delta = {"role": "assistant", **delta}
            self.sent_role = True
        return {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def translate(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            if message.get("id"):
                self.base["id"] = message["id"]
            self.usage = usage_from_anthropic(message.get("usage"))
            return []
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index[int(event.get("index", 0))] = len(self.tool_index)
                call = {
                    "index": index,
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta" and delta.get("text"):
                return [self._chunk({"content": delta["text"]})]
            if dtype == "thinking_delta" and delta.get("thinking"):
                return [self._chunk({"reasoning_content": delta["thinking"]})]
            if dtype == "input_json_delta" and delta.get("partial_json"):
                call_index = self.tool_index.get(int(event.get("index", 0)))
                if call_index is None:
                    return []
                args = {"index": call_index, "function": {"arguments": delta["partial_json"]}}
                return [self._chunk({"tool_calls": [args]})]
            return []
        if kind == "message_delta":
            merge_usage(self.usage, event.get("usage"))
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason:
                self.finished = True
                return [self._chunk({}, FINISH_REASONS.get(reason, "stop"))]
            return []
        return []  # ping, content_block_stop, message_stop
