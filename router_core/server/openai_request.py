"""Validate an OpenAI chat-completions body into a ChatRequest.

Every rejection is a BadRequest naming the offending field (OpenAI's `param`), so the
client gets a 400 it can act on instead of an upstream's confusing error or a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from router_core.errors import BadRequest
from router_core.types import JSON, ChatRequest

# C0 controls and DEL: a model name holding CR/LF/NUL would be echoed into a response header
# (x-hybridge-model) and break the HTTP framing, so such names are refused up front.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_header_safe(value: str, param: str) -> None:
    """Refuse a client string that may reach a header when it holds a control character."""
    if CONTROL_CHARS.search(value):
        raise BadRequest(f"'{param}' must not contain control characters (CR, LF, NUL...)", param=param)


def _check_part(part: JSON, where: str) -> None:
    if part["type"] == "text" and not isinstance(part.get("text"), str):
        raise BadRequest(f"'{where}.text' must be a string", param=f"{where}.text")
    if part["type"] == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise BadRequest(f"'{where}.image_url.url' must be a string", param=f"{where}.image_url")


def _check_content(content: Any, where: str, role: str) -> None:
    if content is None:
        if role in ("user", "system", "developer", "tool"):
            raise BadRequest(f"'{where}.content' is required for a {role} message", param=f"{where}.content")
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise BadRequest(f"'{where}.content' must be a string or an array of content parts", param=f"{where}.content")
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise BadRequest(f"'{where}.content[{j}]' must be an object with a 'type'", param=f"{where}.content[{j}]")
        _check_part(part, f"{where}.content[{j}]")


def _check_tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise BadRequest(f"'{where}.tool_calls' must be an array", param=f"{where}.tool_calls")
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(
                f"'{where}.tool_calls[{j}].function.name' must be a string", param=f"{where}.tool_calls[{j}]"
            )
        if call.get("id") is not None and not isinstance(call["id"], str):
            raise BadRequest(f"'{where}.tool_calls[{j}].id' must be a string", param=f"{where}.tool_calls[{j}].id")
        args = fn.get("arguments")
        if args is not None and not isinstance(args, str):
            raise BadRequest(
                f"'{where}.tool_calls[{j}].function.arguments' must be a JSON string",
                param=f"{where}.tool_calls[{j}].function.arguments",
            )


def _check_messages(messages: Any) -> list[JSON]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadRequest(f"'{where}' must be an object", param=where)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise BadRequest(f"'{where}.role' must be one of {sorted(ROLES)}", param=f"{where}.role")
        _check_content(message.get("content"), where, role)
        if role == "assistant" and message.get("tool_calls") is not None:
            _check_tool_calls(message["tool_calls"], where)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise BadRequest(f"'{where}.tool_call_id' is required for a tool message", param=f"{where}.tool_call_id")
    return messages


def _check_tools(tools: Any) -> list[JSON] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", param="tools")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            raise BadRequest(f"'tools[{i}]' must be {{'type': 'function', 'function': {{...}}}}", param=f"tools[{i}]")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise BadRequest(
                f"'tools[{i}].function.name' must be a non-empty string", param=f"tools[{i}].function.name"
            )
        if fn.get("description") is not None and not isinstance(fn["description"], str):
            raise BadRequest(
                f"'tools[{i}].function.description' must be a string", param=f"tools[{i}].function.description"
            )
        if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
            raise BadRequest(
                f"'tools[{i}].function.parameters' must be an object", param=f"tools[{i}].function.parameters"
            )
    return tools


def _check_response_format(fmt: Any) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str) or fmt["type"] not in RESPONSE_FORMATS:
        raise BadRequest(
            f"'response_format.type' must be one of {sorted(RESPONSE_FORMATS)}", param="response_format.type"
        )
    if fmt["type"] != "json_schema":
        return
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise BadRequest("'response_format.json_schema' must be an object", param="response_format.json_schema")
    if not isinstance(spec.get("name", ""), str):
        raise BadRequest(
            "'response_format.json_schema.name' must be a string", param="response_format.json_schema.name"
        )
    if spec.get("schema") is not None and not isinstance(spec["schema"], dict):
        raise BadRequest(
            "'response_format.json_schema.schema' must be an object", param="response_format.json_schema.schema"
        )


def _check_scalars(body: JSON) -> int | None:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 1):
        raise BadRequest("'max_tokens' must be a positive integer", param="max_tokens")
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(name)
        if value is not None and (not _is_number(value) or not low <= value <= high):
            raise BadRequest(f"'{name}' must be a number from {low} to {high}", param=name)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("'stream' must be a boolean", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest("'stream_options' must be an object", param="stream_options")
    effort = body.get("reasoning_effort")
    if effort is not None and not isinstance(effort, str):
        raise BadRequest("'reasoning_effort' must be a string", param="reasoning_effort")
    _check_response_format(body.get("response_format"))
    if body.get("n") not in (None, 1):
        raise BadRequest("only n=1 is supported", param="n")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise BadRequest("'stop' must be a string or an array of strings", param="stop")
    choice = body.get("tool_choice")
    named = choice.get("function") if isinstance(choice, dict) else None
    if (
        choice is not None
        and not (isinstance(choice, str) and choice in TOOL_CHOICES)
        and not (isinstance(named, dict) and isinstance(named.get("name"), str))
    ):
        raise BadRequest("'tool_choice' must be 'none', 'auto', 'required' or a named function", param="tool_choice")
    return max_tokens


def parse_chat_request(body: Any, headers: Mapping[str, str]) -> ChatRequest:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a string", param="model")
    check_header_safe(model, "model")
    messages = _check_messages(body.get("messages"))
    tools = _check_tools(body.get("tools"))
    max_tokens = _check_scalars(body)
    return ChatRequest(
        model=model,
        messages=messages,
        stream=bool(body.get("stream", False)),
        max_tokens=max_tokens,
        tools=tools,
        body=body,
        headers=headers,
    )
