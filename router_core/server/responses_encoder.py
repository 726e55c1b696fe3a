"""Answers in the OpenAI Responses API's format, whatever model served them.

Follows platform.openai.com/docs/api-reference/responses (the Response object, its
`message` / `function_call` / `reasoning` output items, `usage` with input and output
token details) and .../responses-streaming (`response.created`, `response.in_progress`,
`response.output_item.added`, `response.content_part.added`, `response.output_text.delta`,
`...done`, `response.function_call_arguments.delta/done`, `response.completed` or
`response.incomplete`, `response.failed` after the first byte, each with a
`sequence_number`). Codex reads items from `output_item.done` and needs `response.completed`
(with the response id and usage) before the stream ends (openai/codex
codex-rs/codex-api/src/sse/responses.rs).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

import orjson
from starlette.responses import Response

from router_core.errors import HybridgeError
from router_core.server.errors import openai_error_body, openai_error_response
from router_core.server.routed import StreamEncoder
from router_core.sse import named_event
from router_core.types import JSON, Completion, Usage


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def responses_usage(usage: Usage) -> JSON:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
    }


def sse(data: JSON) -> bytes:
    """An event named after its own type, as the Responses API streams them."""
    return named_event(str(data["type"]), data)


# Called with the finished response (its id) and its output as chat messages.
OnFinished = Callable[[str, list[JSON]], None]


class ResponseBuilder:
    """One response's output items, built from OpenAI chat chunks; every change is also
    returned as the stream events that announce it."""

    def __init__(self, request: JSON, model_id: str, custom_tools: frozenset[str]) -> None:
        self.request = request
        self.model_id = model_id
        self.custom_tools = custom_tools
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.sequence = 0
        self.output: list[JSON] = []
        self.open: JSON | None = None  # the text or reasoning item being written
        self.calls: dict[int, JSON] = {}  # chat tool_calls index → function_call item
        self.finish_reason: str | None = None

    def event(self, kind: str, **fields: Any) -> JSON:
        data: JSON = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return data

    def response(self, status: str, usage: Usage | None = None) -> JSON:
        body = self.request
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model_id,
            "output": self.output if status != "in_progress" else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": responses_usage(usage) if usage is not None else None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    def start(self) -> list[JSON]:
        created = self.response("in_progress")
        return [self.event("response.created", response=created), self.event("response.in_progress", response=created)]

    def _close_open(self) -> list[JSON]:
        item, self.open = self.open, None
        if item is None:
            return []
        index = self.output.index(item)
        item["status"] = "completed"
        events: list[JSON] = []
        if item["type"] == "message":
            part = item["content"][0]
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            events += [
                self.event("response.output_text.done", **common, text=part["text"], logprobs=[]),
                self.event("response.content_part.done", **common, part=part),
            ]
        else:
            part = item["content"][0]
            events.append(
                self.event(
                    "response.reasoning_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=part["text"],
                )
            )
            del item["status"]  # reasoning items carry none
        events.append(self.event("response.output_item.done", output_index=index, item=item))
        return events

    def _open_item(self, item: JSON) -> list[JSON]:
        events = self._close_open()
        self.output.append(item)
        self.open = item
        events.append(self.event("response.output_item.added", output_index=len(self.output) - 1, item=item))
        return events

    def _text(self, text: str) -> list[JSON]:
        events: list[JSON] = []
        if self.open is None or self.open["type"] != "message":
            opened: JSON = {
                "id": new_id("msg"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            events += self._open_item(opened)
            part: JSON = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            opened["content"].append(part)
            events.append(
                self.event(
                    "response.content_part.added",
                    item_id=opened["id"],
                    output_index=len(self.output) - 1,
                    content_index=0,
                    part=part,
                )
            )
        item = self.open
        assert item is not None
        item["content"][0]["text"] += text
        events.append(
            self.event(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=len(self.output) - 1,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return events

    def _reasoning(self, text: str) -> list[JSON]:
        events: list[JSON] = []
        if self.open is None or self.open["type"] != "reasoning":
            opened: JSON = {
                "id": new_id("rs"),
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": ""}],
            }
            events += self._open_item(opened)
        item = self.open
        assert item is not None
        item["content"][0]["text"] += text
        events.append(
            self.event(
                "response.reasoning_text.delta",
                item_id=item["id"],
                output_index=len(self.output) - 1,
                content_index=0,
                delta=text,
            )
        )
        return events

    def _call(self, call: JSON) -> list[JSON]:
        position = int(call.get("index") or 0)
        fn = call.get("function") or {}
        events: list[JSON] = []
        item = self.calls.get(position)
        if item is None:
            events += self._close_open()
            item = {
                "id": new_id("fc"),
                "type": "function_call",
                "status": "in_progress",
                "call_id": str(call.get("id") or new_id("call")),
                "name": fn.get("name") or "",
                "arguments": "",
            }
            self.output.append(item)
            self.calls[position] = item
            events.append(self.event("response.output_item.added", output_index=len(self.output) - 1, item=item))
        arguments = fn.get("arguments")
        if arguments:
            item["arguments"] += arguments
            events.append(
                self.event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=self.output.index(item),
                    delta=arguments,
                )
            )
        return events

    def chunk(self, chunk: JSON) -> list[JSON]:
        events: list[JSON] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or choice.get("message") or {}
            thinking = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thinking, str) and thinking:
                events += self._reasoning(thinking)
            text = delta.get("content")
            if isinstance(text, str) and text:
                events += self._text(text)
            for call in delta.get("tool_calls") or []:
                events += self._call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _finish_call(self, item: JSON) -> list[JSON]:
        index = self.output.index(item)
        events = [
            self.event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=item["arguments"],
                name=item["name"],
            )
        ]
        item["status"] = "completed"
        if item["name"] in self.custom_tools:
            # A free-form tool answers with its one string, as OpenAI's custom_tool_call.
            try:
                given = orjson.loads(item["arguments"] or "{}")
            except orjson.JSONDecodeError:
                given = {}
            text = given.get("input") if isinstance(given, dict) else None
            custom = {
                "id": item["id"].replace("fc_", "ctc_", 1),
                "type": "custom_tool_call",
                "status": "completed",
                "call_id": item["call_id"],
                "name": item["name"],
                "input": text if isinstance(text, str) else item["arguments"],
            }
            self.output[index] = custom
            item = custom
        events.append(self.event("response.output_item.done", output_index=index, item=item))
        return events

    def finish(self, usage: Usage) -> tuple[list[JSON], JSON]:
        """(the closing events, the finished response)."""
        events = self._close_open()
        for item in list(self.calls.values()):
            events += self._finish_call(item)
        status = "incomplete" if self.finish_reason == "length" else "completed"
        response = self.response(status, usage)
        events.append(self.event(f"response.{status}", response=response))
        return events, response

    def chat_messages(self) -> list[JSON]:
        """The output as chat messages (what a later `previous_response_id` continues)."""
        text = "".join(i["content"][0]["text"] for i in self.output if i["type"] == "message")
        calls = [
            {
                "id": i["call_id"],
                "type": "function",
                "function": {
                    "name": i["name"],
                    "arguments": i.get("arguments") or orjson.dumps({"input": i.get("input", "")}).decode(),
                },
            }
            for i in self.output
            if i["type"] in ("function_call", "custom_tool_call")
        ]
        message: JSON = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return [message]


class ResponsesStream:
    def __init__(self, builder: ResponseBuilder, on_finished: OnFinished | None) -> None:
        self.builder = builder
        self.on_finished = on_finished
        self.started = False

    def _start(self) -> list[JSON]:
        if self.started:
            return []
        self.started = True
        return self.builder.start()

    def chunk(self, chunk: JSON) -> bytes:
        return b"".join(sse(e) for e in [*self._start(), *self.builder.chunk(chunk)])

    def finish(self, usage: Usage) -> bytes:
        events, _ = self.builder.finish(usage)
        if self.on_finished is not None:
            self.on_finished(self.builder.id, self.builder.chat_messages())
        return b"".join(sse(e) for e in [*self._start(), *events])


class ResponsesEncoder:
    """One Responses API request's answer (request-scoped: it echoes the request's fields)."""

    api: Literal["openai", "anthropic", "responses", "ollama"] = "responses"

    def __init__(self, request: JSON, custom_tools: frozenset[str], on_finished: OnFinished | None = None) -> None:
        self.request = request
        self.custom_tools = custom_tools
        self.on_finished = on_finished
        self.last: ResponseBuilder | None = None

    def error_response(self, exc: HybridgeError, request_id: str) -> Response:
        return openai_error_response(exc, request_id)

    def stream_error(self, exc: HybridgeError, request_id: str) -> bytes:
        # After the first byte: `response.failed` with the error (Codex reads its code).
        builder = self.last or ResponseBuilder(self.request, str(self.request.get("model")), self.custom_tools)
        failed = builder.response("failed")
        error = openai_error_body(exc, request_id)["error"]
        failed["error"] = {"code": error["code"] or "server_error", "message": error["message"]}
        return sse(builder.event("response.failed", response=failed))

    def completion(self, completion: Completion) -> bytes:
        builder = ResponseBuilder(self.request, str(completion.body.get("model") or ""), self.custom_tools)
        builder.chunk(completion.body)
        _, response = builder.finish(completion.usage)
        if self.on_finished is not None:
            self.on_finished(builder.id, builder.chat_messages())
        return orjson.dumps(response)

    def stream(self, model_id: str, started_at: float, request_id: str) -> StreamEncoder:
        self.last = ResponseBuilder(self.request, model_id, self.custom_tools)
        return ResponsesStream(self.last, self.on_finished)
