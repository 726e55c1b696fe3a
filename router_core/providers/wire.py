"""Typed shapes of what upstreams answer, checked at the provider edge.

Every body or line an upstream sends is parsed here before a translator reads it: a wrong
shape (HTML, `[1,2]`, `{"message": [1]}`, `usage: "lots"`, cut-off JSON) becomes one
`UpstreamInvalid` naming the upstream (502 before the first byte, so the next candidate may
serve; an error event after it), never an AttributeError deep in a translator.

The models are strict about the fields Hybridge reads (an int is an int, not "5" nor
true) and ignore the rest, so an upstream adding fields keeps working. They validate and
then hand back the decoded dict itself: the translators keep their dict code.

msgspec rather than pydantic: on the hot path (one check per streamed chunk) msgspec's
`convert` of an OpenAI chunk cost about 1 us where pydantic's TypeAdapter cost 15-30 us
(measured side by side in one process, see the issue-17 note).

Shapes followed: Ollama docs/api.md (`/api/chat` NDJSON lines and whole answers, `/api/tags`,
`/api/show`), OpenAI's chat reference (`chat.completion`, `chat.completion.chunk`, `/models`),
Anthropic's Messages reference (a `message`, the stream events, `/v1/models`,
`count_tokens`).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from router_core.errors import UpstreamInvalid


class _Wire(msgspec.Struct):
    """Strict on what we read (msgspec.convert is strict by default), silent about the rest."""


# -- Ollama ---------------------------------------------------------------------------------


class _OllamaFunction(_Wire):
    name: str = ""
    arguments: dict[str, Any] | str | None = None


class _OllamaToolCall(_Wire):
    id: str | None = None
    function: _OllamaFunction | None = None


class _OllamaMessage(_Wire):
    role: str | None = None
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_OllamaToolCall] | None = None


class OllamaChatLine(_Wire):
    """One `/api/chat` NDJSON line, or the whole non-streamed answer."""

    message: _OllamaMessage | None = None
    done: bool | None = None
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class _OllamaTag(_Wire):
    name: str | None = None
    model: str | None = None


class OllamaTags(_Wire):
    models: list[_OllamaTag] | None = None


# -- OpenAI ---------------------------------------------------------------------------------


class _TokenDetails(_Wire):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None


class OpenAIUsage(_Wire):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_cache_hit_tokens: int | None = None
    cached_tokens: int | None = None
    prompt_tokens_details: _TokenDetails | None = None
    completion_tokens_details: _TokenDetails | None = None


class _Timings(_Wire):
    predicted_per_second: float | None = None


class _OpenAIFunction(_Wire):
    name: str | None = None
    arguments: str | None = None


class _OpenAIToolCall(_Wire):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: _OpenAIFunction | None = None


class _OpenAIMessage(_Wire):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[_OpenAIToolCall] | None = None


class _OpenAIChoice(_Wire):
    index: int | None = None
    message: _OpenAIMessage | None = None
    finish_reason: str | None = None


class OpenAICompletion(_Wire):
    choices: list[_OpenAIChoice]
    usage: OpenAIUsage | None = None
    timings: _Timings | None = None


class _OpenAIChunkChoice(_Wire):
    index: int | None = None
    delta: _OpenAIMessage | None = None
    finish_reason: str | None = None


class OpenAIChunk(_Wire):
    choices: list[_OpenAIChunkChoice] | None = None
    usage: OpenAIUsage | None = None
    timings: _Timings | None = None


class _ModelId(_Wire):
    id: str


class ModelList(_Wire):
    """OpenAI's and Anthropic's `/models` list."""

    data: list[_ModelId] | None = None


# -- Anthropic ------------------------------------------------------------------------------


class _OutputDetails(_Wire):
    thinking_tokens: int | None = None


class AnthropicUsage(_Wire):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    output_tokens_details: _OutputDetails | None = None


class _AnthropicBlock(_Wire):
    type: str
    text: str | None = None
    thinking: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None


class AnthropicMessage(_Wire):
    id: str | None = None
    type: str | None = None
    content: list[_AnthropicBlock] | None = None
    stop_reason: str | None = None
    usage: AnthropicUsage | None = None


class _AnthropicDelta(_Wire):
    type: str | None = None
    text: str | None = None
    thinking: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None


class _AnthropicStartMessage(_Wire):
    id: str | None = None
    usage: AnthropicUsage | None = None


class AnthropicEvent(_Wire):
    type: str
    message: _AnthropicStartMessage | None = None
    index: int | None = None
    content_block: _AnthropicBlock | None = None
    delta: _AnthropicDelta | None = None
    usage: AnthropicUsage | None = None


class AnthropicTokenCount(_Wire):
    input_tokens: int


# -- the checks -----------------------------------------------------------------------------


def _describe(exc: msgspec.ValidationError) -> str:
    # "Expected `str`, got `int` - at `$.choices[0].delta.content`": names the field, not its value.
    return str(exc)[:300]


def decode_object(provider: str, raw: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object from an upstream's bytes; anything else is UpstreamInvalid."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if isinstance(raw, bytes):
            try:  # text that is not UTF-8: read as httpx would (invalid bytes replaced)
                data = orjson.loads(raw.decode("utf-8", "replace"))
            except orjson.JSONDecodeError:
                raise UpstreamInvalid(provider, f"{what} is not JSON") from None
        else:
            raise UpstreamInvalid(provider, f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamInvalid(provider, f"{what} is a JSON {type(data).__name__}, not an object")
    return data


def check(provider: str, shape: type[_Wire], data: dict[str, Any], what: str) -> dict[str, Any]:
    """`data` itself once it has `shape`'s types, else UpstreamInvalid naming the field."""
    try:
        msgspec.convert(data, shape)
    except msgspec.ValidationError as exc:
        raise UpstreamInvalid(provider, f"{what}: {_describe(exc)}") from None
    return data


_OPENAI_CHUNK_DECODER = msgspec.json.Decoder(OpenAIChunk)
_OPENAI_CHUNKS_DECODER = msgspec.json.Decoder(list[OpenAIChunk])


def check_openai_chunk_bytes(provider: str, payload: bytes) -> None:
    """A chat.completion.chunk event's JSON checked straight from its bytes (no dict is
    built: about a microsecond), for the pass-through path that forwards the bytes as they are."""
    try:
        _OPENAI_CHUNK_DECODER.decode(payload)
    except msgspec.ValidationError as exc:
        raise UpstreamInvalid(provider, f"a chat.completion.chunk event: {_describe(exc)}") from None
    except msgspec.DecodeError:
        raise UpstreamInvalid(provider, "a chat.completion.chunk event is not JSON") from None


def openai_chunks_count(array: bytes) -> int | None:
    """How many events a JSON array of chat.completion.chunk events holds when every one
    checks; None when one does not (or it is not such an array). One call for a whole
    socket read of events: the pass-through checks a batch with it, and walks the batch
    event by event (check_openai_chunk_bytes) only to find the one that fails."""
    try:
        return len(_OPENAI_CHUNKS_DECODER.decode(array))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def parse(provider: str, shape: type[_Wire], raw: bytes | str, what: str) -> dict[str, Any]:
    return check(provider, shape, decode_object(provider, raw, what), what)


def parse_ollama_chat_line(provider: str, raw: bytes | str) -> dict[str, Any]:
    """One `/api/chat` line or answer, checked. An `{"error": ...}` line passes unchecked:
    the caller maps it to the upstream's own error."""
    data = decode_object(provider, raw, "an /api/chat line")
    if "error" in data:
        return data
    return check(provider, OllamaChatLine, data, "an /api/chat line")


def error_message(value: Any) -> str:
    """An upstream's in-band `error` value as text, whatever its shape."""
    if isinstance(value, dict):
        value = value.get("message", value)
    return str(value)[:500]
