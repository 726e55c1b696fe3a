"""A fake OpenAI-compatible cloud (OpenAI itself, or DeepSeek / Moonshot usage shapes),
speaking the wire format of OpenAI's public API reference:

- Chat completions (platform.openai.com/docs/api-reference/chat): `POST
  /v1/chat/completions` with `Authorization: Bearer <key>`; a `chat.completion` with
  `choices[].message` (content, tool_calls with JSON-string arguments), `finish_reason`
  (stop / length / tool_calls) and `usage` {prompt_tokens, completion_tokens,
  total_tokens, prompt_tokens_details.cached_tokens, completion_tokens_details}.
- Streaming (platform.openai.com/docs/api-reference/chat-streaming): `data:` lines of
  `chat.completion.chunk` objects, the role in the first delta, a tool call as an indexed
  delta with id and name first and argument fragments after; with
  `stream_options.include_usage` every chunk has `"usage": null` and one more chunk with
  empty `choices` carries the usage; then `data: [DONE]`. An error after the 200 is a
  `data: {"error": {...}}` line.
- Prompt caching (platform.openai.com/docs/guides/prompt-caching): automatic for prompts
  of 1,024 tokens or more; the cached part of a repeated prefix counts in 128-token steps
  beyond the first 1,024, reported as `prompt_tokens_details.cached_tokens` (inside
  prompt_tokens). DeepSeek reports the same as `prompt_cache_hit_tokens` /
  `prompt_cache_miss_tokens` (api-docs.deepseek.com, context caching); Moonshot as a
  top-level `cached_tokens`.
- Errors (platform.openai.com/docs/guides/error-codes): `{"error": {"message", "type",
  "param", "code"}}`; 401 `invalid_api_key` ("Incorrect API key provided: sk-...***"),
  429 `rate_limit_exceeded` with `retry-after`, 400 `context_length_exceeded` ("This
  model's maximum context length is N tokens. However, your messages resulted in M
  tokens. Please reduce the length of the messages.").

A "token" is one whitespace-separated word of message text (tool calls count the words of
their JSON), so tests can work numbers out by hand.

Reasoning models (`gpt-5*`, `o1`/`o3`/`o4*`) refuse `max_tokens` and a non-default
`temperature` / `top_p` with OpenAI's 400 `unsupported_parameter` / `unsupported_value`.

Test hooks on `state`: `requests` ((headers, body) received), `script` (queued `Reply` /
`Fault`; an empty script answers DEFAULT_TEXT), `usage_style` ("openai", "deepseek",
"moonshot").
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

API_KEY = "sk-proj-fakeopenaikey-abcdef0123456789"
MODELS = ("gpt-4.1", "gpt-4.1-mini")
DEFAULT_TEXT = "Hello from the fake OpenAI cloud."
CACHE_MIN_TOKENS = 1024
CACHE_STEP = 128


@dataclass
class Reply:
    text: str = DEFAULT_TEXT
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments": dict}
    finish_reason: str | None = None
    error_after_chunks: int | None = None  # streaming: an error line after this many content chunks


@dataclass
class Fault:
    status: int
    message: str
    type: str
    code: str | None
    param: str | None = None
    retry_after: str | None = None


def rate_limited(retry_after: str = "3") -> Fault:
    return Fault(
        429,
        "Rate limit reached for gpt-4.1 in organization org-fake on tokens per min (TPM): Limit 30000, "
        "Used 29500, Requested 1200. Please try again in 3s.",
        "tokens",
        "rate_limit_exceeded",
        retry_after=retry_after,
    )


@dataclass
class FakeOpenAIState:
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    script: list[Reply | Fault] = field(default_factory=list)
    prompts: list[list[str]] = field(default_factory=list)  # earlier prompts, for the cache
    usage_style: str = "openai"
    context_window: int = 128_000
    api_key: str = API_KEY


def error_response(
    status: int,
    message: str,
    etype: str,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


REASONING_MODEL = re.compile(r"^(gpt-5|o\d)")


def reasoning_model_refusal(body: dict[str, Any]) -> Response | None:
    """OpenAI's 400s for parameters its reasoning models (gpt-5*, o-series) refuse, worded as
    the API words them (platform.openai.com/docs/guides/reasoning; seen in the wild)."""
    if not REASONING_MODEL.match(str(body.get("model", ""))):
        return None
    if "max_tokens" in body:
        return error_response(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "invalid_request_error",
            "unsupported_parameter",
            "max_tokens",
        )
    for name in ("temperature", "top_p"):
        if name in body and body[name] != 1:
            return error_response(
                400,
                f"Unsupported value: '{name}' does not support {body[name]} with this model. Only the "
                "default (1) value is supported.",
                "invalid_request_error",
                "unsupported_value",
                name,
            )
    return None


def prompt_words(body: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            out += content.split()
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    out += part["text"].split()
        if message.get("tool_calls"):
            out += orjson.dumps(message["tool_calls"]).decode().split()
    return out


class FakeOpenAICloud:
    def __init__(self) -> None:
        self.state = FakeOpenAIState()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
            ]
        )

    def _auth(self, request: Request) -> Response | None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if given != self.state.api_key:
            shown = f"{given[:3]}***{given[-4:]}" if len(given) > 8 else "***"
            return error_response(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        return None

    async def models(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "system"} for m in MODELS]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    def usage(self, body: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
        words = prompt_words(body)
        prompt = len(words)
        common = 0
        for earlier in self.state.prompts:
            n = 0
            for a, b in zip(earlier, words, strict=False):
                if a != b:
                    break
                n += 1
            common = max(common, n)
        self.state.prompts.append(words)
        cached = 0
        if prompt >= CACHE_MIN_TOKENS and common >= CACHE_MIN_TOKENS:
            cached = CACHE_MIN_TOKENS + (common - CACHE_MIN_TOKENS) // CACHE_STEP * CACHE_STEP
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }
        if self.state.usage_style == "deepseek":
            usage.update({"prompt_cache_hit_tokens": cached, "prompt_cache_miss_tokens": prompt - cached})
        elif self.state.usage_style == "moonshot":
            usage["cached_tokens"] = cached
        else:
            usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0}
        return usage

    async def chat(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error_response(
                400, "We could not parse the JSON body of your request.", "invalid_request_error", None
            )
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return error_response(
                400, "'messages' must contain at least one message.", "invalid_request_error", None, "messages"
            )
        self.state.requests.append((dict(request.headers), body))
        if (refused := reasoning_model_refusal(body)) is not None:
            return refused
        prompt = len(prompt_words(body))
        if prompt > self.state.context_window:
            return error_response(
                400,
                f"This model's maximum context length is {self.state.context_window} tokens. However, your "
                f"messages resulted in {prompt} tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            )
        step = self.state.script.pop(0) if self.state.script else Reply()
        if isinstance(step, Fault):
            headers = {"retry-after": step.retry_after} if step.retry_after else None
            return error_response(step.status, step.message, step.type, step.code, step.param, headers)
        calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": orjson.dumps(c["arguments"]).decode()},
            }
            for c in step.tool_calls
        ]
        completion_tokens = len(step.text.split()) + sum(len(c["function"]["arguments"].split()) for c in calls)
        finish = step.finish_reason or ("tool_calls" if calls else "stop")
        base = {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            usage = self.usage(body, completion_tokens)
            return StreamingResponse(
                self._chunks(base, step, calls, finish, usage if include_usage else None),
                media_type="text/event-stream",
            )
        message: dict[str, Any] = {"role": "assistant", "content": step.text or None, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        out = {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": self.usage(body, completion_tokens),
        }
        return Response(orjson.dumps(out), media_type="application/json")

    async def _chunks(
        self, base: dict[str, Any], reply: Reply, calls: list[dict[str, Any]], finish: str, usage: dict[str, Any] | None
    ) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            data: dict[str, Any] = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if usage is not None:
                data["usage"] = None
            return b"data: " + orjson.dumps(data) + b"\n\n"

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        sent = 0
        if reply.text:
            pieces = [w + " " for w in reply.text.split(" ")]
            pieces[-1] = pieces[-1][:-1]
            for piece in pieces:
                if reply.error_after_chunks is not None and sent >= reply.error_after_chunks:
                    err = {
                        "error": {
                            "message": "The server had an error while processing your request. Sorry about that!",
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    }
                    yield b"data: " + orjson.dumps(err) + b"\n\n"
                    return
                yield chunk({"content": piece})
                sent += 1
        for index, call in enumerate(calls):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            yield chunk({"tool_calls": [head]})
            raw = call["function"]["arguments"]
            for i in range(0, len(raw), 7):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": raw[i : i + 7]}}]})
        yield chunk({}, finish)
        if usage is not None:
            final = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            yield b"data: " + orjson.dumps(final) + b"\n\n"
        yield b"data: [DONE]\n\n"
