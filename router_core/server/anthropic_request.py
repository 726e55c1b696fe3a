"""Validate an Anthropic Messages body and turn it into a ChatRequest (OpenAI-shaped).

Routing and every non-Anthropic provider read the OpenAI shape; the client's own body rides
along as `ChatRequest.anthropic_body` so an Anthropic upstream gets it unchanged. Follows
the Messages reference (docs.claude.com/en/api/messages): `system` as a string or text
blocks, user/assistant turns of `text`, `image` (base64 or url source), `tool_use` and
`tool_result` blocks, `tools` with `input_schema`, `tool_choice`, `stop_sequences`.
Rejections name the field in Anthropic's dotted style (`messages.0.content`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from router_core.errors import BadRequest
from router_core.server.openai_request import CONTROL_CHARS, parse_chat_request
from router_core.types import JSON, VIRTUAL_MODELS, ChatRequest

TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# Blocks kept as they are for an Anthropic upstream; a local model refuses them by name.
PASSTHROUGH_BLOCKS = frozenset({"document", "search_result"})
# Assistant blocks that only Anthropic can take back (signed thinking, its server tools).
ANTHROPIC_ONLY_BLOCKS = frozenset(
    {"thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result"}
)


def virtual_model(name: str) -> str:
    """Claude Code's model names as routing sees them: the haiku-class background model is
    small-model work (`local`), opus asks for the cloud, sonnet and the rest are `auto`.
    A concrete `<provider>/<model>` or a virtual name passes through."""
    if name in VIRTUAL_MODELS or "/" in name:
        return name
    lowered = name.lower()
    if "haiku" in lowered:
        return "local"
    if "opus" in lowered:
        return "cloud"
    return "auto"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text_of(blocks: Any, where: str) -> str:
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise BadRequest(f"{where}: must be a string or an array of text blocks", param=where)
    texts = []
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise BadRequest(f"{where}.{j}: must be a text block", param=f"{where}.{j}")
        texts.append(block["text"])
    return "\n".join(texts)


def _image_part(block: JSON, where: str) -> JSON:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise BadRequest(f"{where}.source: needs media_type and data", param=f"{where}.source")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if isinstance(source, dict) and source.get("type") == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise BadRequest(f"{where}.source: must be a base64 or url image source", param=f"{where}.source")


def _tool_result_messages(block: JSON, where: str) -> list[JSON]:
    """An Anthropic tool_result as an OpenAI tool message (plus a user turn for its images)."""
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise BadRequest(f"{where}.tool_use_id: Field required", param=f"{where}.tool_use_id")
    content = block.get("content", "")
    texts: list[str] = []
    images: list[JSON] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for j, item in enumerate(content):
            kind = _block_type(item) if isinstance(item, dict) else None
            if kind == "text" and isinstance(item.get("text"), str):
                texts.append(item["text"])
            elif kind == "image":
                images.append(_image_part(item, f"{where}.content.{j}"))
            else:
                raise BadRequest(f"{where}.content.{j}: unsupported block '{kind}'", param=f"{where}.content.{j}")
    else:
        raise BadRequest(f"{where}.content: must be a string or an array", param=f"{where}.content")
    text = "\n".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}"
    out: list[JSON] = [{"role": "tool", "tool_call_id": tool_use_id, "content": text}]
    if images:
        out.append({"role": "user", "content": [{"type": "text", "text": f"(images from {tool_use_id})"}, *images]})
    return out


def _block_type(block: JSON) -> str | None:
    """A block's `type` when it is a string (anything else is an unsupported block, not a crash)."""
    kind = block.get("type")
    return kind if isinstance(kind, str) else None


def _user_messages(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[JSON] = []
    parts: list[JSON] = []
    for j, block in enumerate(content):
        at = f"{where}.{j}"
        kind = _block_type(block)
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise BadRequest(f"{at}.text: must be a string", param=f"{at}.text")
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "tool_result":
            tool_messages += _tool_result_messages(block, at)
        elif kind in PASSTHROUGH_BLOCKS:
            parts.append({k: v for k, v in block.items() if k != "cache_control"})
        else:
            raise BadRequest(f"{at}: unsupported content block type '{kind}'", param=at)
    return tool_messages + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_message(content: Any, where: str) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSON] = []
    for j, block in enumerate(content):
        at = f"{where}.{j}"
        kind = _block_type(block)
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise BadRequest(f"{at}: a tool_use block needs an id and a name", param=at)
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {"id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": arguments}}
            )
        elif kind not in ANTHROPIC_ONLY_BLOCKS:
            raise BadRequest(f"{at}: unsupported content block type '{kind}'", param=at)
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(raw: Any, system: Any) -> list[JSON]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages: must be a non-empty array", param="messages")
    out: list[JSON] = []
    if system is not None:
        text = _text_of(system, "system")
        if text:
            out.append({"role": "system", "content": text})
    for i, message in enumerate(raw):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise BadRequest(f"{where}: must be an object", param=where)
        role, content = message.get("role"), message.get("content")
        if role == "system":
            # Claude Code (2.1.330) sends its environment block as a system message after the
            # first user turn: an instruction at that point of the conversation.
            text = _text_of(content, f"{where}.content")
            if text:
                out.append({"role": "system", "content": text})
            continue
        if role not in ("user", "assistant"):
            raise BadRequest(f"{where}.role: must be 'user' or 'assistant'", param=f"{where}.role")
        if not isinstance(content, str | list):
            raise BadRequest(f"{where}.content: must be a string or an array of blocks", param=f"{where}.content")
        if isinstance(content, list) and not all(isinstance(b, dict) for b in content):
            raise BadRequest(f"{where}.content: every block must be an object", param=f"{where}.content")
        if role == "user":
            out += _user_messages(content, f"{where}.content")
        else:
            out.append(_assistant_message(content, f"{where}.content"))
    return out


def _tools(raw: Any) -> list[JSON] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadRequest("tools: must be an array", param="tools")
    tools = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise BadRequest(f"tools.{i}.name: Field required", param=f"tools.{i}.name")
        if tool.get("type") not in (None, "custom"):
            continue  # Anthropic's own tools (web search, bash, ...) exist only there
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise BadRequest(f"tools.{i}.input_schema: must be an object", param=f"tools.{i}.input_schema")
        fn: JSON = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        tools.append({"type": "function", "function": fn})
    return tools or None


def _tool_choice(raw: Any, body: JSON) -> None:
    if raw is None:
        return
    kind = _block_type(raw) if isinstance(raw, dict) else None
    if kind in TOOL_CHOICES:
        body["tool_choice"] = TOOL_CHOICES[kind]
    elif kind == "tool" and isinstance(raw.get("name"), str):
        body["tool_choice"] = {"type": "function", "function": {"name": raw["name"]}}
    else:
        raise BadRequest("tool_choice: must be auto, any, none or {'type': 'tool', 'name': ...}", param="tool_choice")
    if raw.get("disable_parallel_tool_use"):
        body["parallel_tool_calls"] = False


def _scalars(body: JSON, out: JSON, *, count_only: bool) -> None:
    max_tokens: Any = body.get("max_tokens")
    if _is_int(max_tokens) and max_tokens >= 1:
        out["max_tokens"] = max_tokens
    elif not count_only:
        raise BadRequest("max_tokens: Field required (a positive integer)", param="max_tokens")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if not _is_number(value) or not 0 <= value <= 1:
                raise BadRequest(f"{name}: must be a number from 0 to 1", param=name)
            out[name] = value
    if "stream" in body:
        if not isinstance(body["stream"], bool):
            raise BadRequest("stream: must be a boolean", param="stream")
        out["stream"] = body["stream"]
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadRequest("stop_sequences: must be an array of strings", param="stop_sequences")
        if stops:
            out["stop"] = stops
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]


def parse_messages_request(body: Any, headers: Mapping[str, str], *, count_only: bool = False) -> ChatRequest:
    """A ChatRequest whose `model` is the routing name (see virtual_model) and whose
    `anthropic_body` is the client's body with its own model name."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required", param="model")
    if CONTROL_CHARS.search(model):
        raise BadRequest("model: must not contain control characters (CR, LF, NUL...)", param="model")
    out: JSON = {"model": virtual_model(model), "messages": _messages(body.get("messages"), body.get("system"))}
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        _tool_choice(body.get("tool_choice"), out)
    _scalars(body, out, count_only=count_only)
    chat = parse_chat_request(out, headers)
    chat.anthropic_body = body
    return chat
