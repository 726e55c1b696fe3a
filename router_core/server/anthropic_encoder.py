"""Answers and errors in Anthropic's Messages format, whatever model served them.

Follows docs.claude.com/en/docs/build-with-claude/streaming (`message_start`, `ping`,
`content_block_start/delta/stop` with `text_delta` and `input_json_delta`,
`message_delta` with the stop reason and cumulative usage, `message_stop`, and an `error`
event for a failure after the first byte) and docs.claude.com/en/api/errors
(`{"type": "error", "error": {"type", "message"}, "request_id"}`).
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Literal

import orjson
from starlette.responses import Response

from router_core.errors import HybridgeError
from router_core.server.errors import anthropic_error_body, anthropic_error_response
from router_core.server.routed import StreamEncoder
from router_core.sse import named_event as sse  # Anthropic names every event
from router_core.types import JSON, Completion, Usage

# OpenAI's finish_reason → Anthropic's stop_reason.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


def tool_use_id(raw: Any) -> str:
    """Anthropic tool ids match ^[a-zA-Z0-9_-]+$, so the client can send them back to Anthropic."""
    text = _BAD_ID_CHARS.sub("_", str(raw or ""))
    return text or f"toolu_{secrets.token_hex(12)}"


def tool_input(arguments: Any) -> JSON:
    """A tool call's JSON arguments as Anthropic's `input` object (a local model's broken
    JSON is kept as text rather than lost)."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"raw_arguments": str(arguments)}
    return value if isinstance(value, dict) else {"value": value}


def message_from_completion(completion: Completion) -> JSON:
    """An Anthropic Message from an OpenAI `chat.completion` body."""
    body = completion.body
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[JSON] = []
    thinking = message.get("reasoning_content")
    if isinstance(thinking, str) and thinking:
        # A local model's thinking, as a thinking block; no signature: only Anthropic signs.
        content.append({"type": "thinking", "thinking": thinking, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": tool_use_id(call.get("id")),
                "name": fn.get("name", ""),
                "input": tool_input(fn.get("arguments")),
            }
        )
    stop = STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn")
    if stop == "end_turn" and message.get("tool_calls"):
        stop = "tool_use"
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": completion.usage.to_anthropic(),
    }


class AnthropicStream:
    """OpenAI chunks → Anthropic stream events, one content block at a time."""

    def __init__(self, model_id: str, input_estimate: int = 0) -> None:
        self.model_id = model_id
        self.input_estimate = input_estimate
        self.started = False
        self.index = -1  # the content block open now (or last opened)
        self.open: str | None = None  # its type while it is open
        self.tool_blocks: dict[int, int] = {}  # OpenAI tool_calls index → content block index
        self.stop_reason: str | None = None

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        message: JSON = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model_id,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # The prompt's counts arrive with the last chunk (message_delta carries them);
            # until then an estimate, as Anthropic's own message_start has the input count
            # (Claude Code's context bar reads it during the turn).
            "usage": Usage(input_tokens=self.input_estimate).to_anthropic(),
        }
        return sse("message_start", {"type": "message_start", "message": message}) + sse("ping", {"type": "ping"})

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def _open(self, block: JSON) -> bytes:
        out = self._close()
        self.index += 1
        self.open = block["type"]
        return out + sse(
            "content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block}
        )

    def _delta(self, index: int, delta: JSON) -> bytes:
        return sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def chunk(self, chunk: JSON) -> bytes:
        out = [self._start()]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            thinking = delta.get("reasoning_content")
            if isinstance(thinking, str) and thinking:
                if self.open != "thinking":
                    out.append(self._open({"type": "thinking", "thinking": "", "signature": ""}))
                out.append(self._delta(self.index, {"type": "thinking_delta", "thinking": thinking}))
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self.open != "text":
                    out.append(self._open({"type": "text", "text": ""}))
                out.append(self._delta(self.index, {"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or []:
                out.append(self._tool_call(call))
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return b"".join(out)

    def _tool_call(self, call: JSON) -> bytes:
        position = int(call.get("index") or 0)
        fn = call.get("function") or {}
        out = b""
        if position not in self.tool_blocks:
            block: JSON = {
                "type": "tool_use",
                "id": tool_use_id(call.get("id")),
                "name": fn.get("name") or "",
                "input": {},
            }
            out += self._open(block)
            self.tool_blocks[position] = self.index
        arguments = fn.get("arguments")
        if arguments:
            out += self._delta(self.tool_blocks[position], {"type": "input_json_delta", "partial_json": arguments})
        return out

    def finish(self, usage: Usage) -> bytes:
        stop = self.stop_reason or "end_turn"
        if stop == "end_turn" and self.tool_blocks:
            stop = "tool_use"
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": usage.to_anthropic(),
        }
        return b"".join(
            [self._start(), self._close(), sse("message_delta", delta), sse("message_stop", {"type": "message_stop"})]
        )


class AnthropicEncoder:
    api: Literal["openai", "anthropic", "responses", "ollama"] = "anthropic"

    def __init__(self, input_estimate: int = 0) -> None:
        self.input_estimate = input_estimate  # the prompt's estimated tokens, for message_start

    def error_response(self, exc: HybridgeError, request_id: str) -> Response:
        return anthropic_error_response(exc, request_id)

    def stream_error(self, exc: HybridgeError, request_id: str) -> bytes:
        return sse("error", anthropic_error_body(exc, request_id))

    def completion(self, completion: Completion) -> bytes:
        return orjson.dumps(message_from_completion(completion))

    def stream(self, model_id: str, started_at: float, request_id: str) -> StreamEncoder:
        return AnthropicStream(model_id, self.input_estimate)


ANTHROPIC = AnthropicEncoder()
