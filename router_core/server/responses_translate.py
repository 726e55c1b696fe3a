"""OpenAI Responses API requests → Hybridge's chat-completions shape.

Follows platform.openai.com/docs/api-reference/responses/create (input items, `instructions`,
`tools`, `tool_choice`, `text.format`, `max_output_tokens`) and what Codex CLI sends
(openai/codex codex-rs/core/src/client_common.rs and codex-rs/protocol/src/models.rs:
`developer` messages with `input_text` parts, `function_call` / `function_call_output`,
`custom_tool_call`, `reasoning` items with encrypted content, a `web_search` tool).

Hosted tools run on OpenAI's servers and a local model cannot run them: the ones Codex
always sends beside its function tools (`web_search*`) are dropped, a `namespace` tool's
function tools are flattened, a `custom` (free-form) tool becomes a function with one
`input` string; any other hosted tool is refused with a 400 naming it.
"""

from __future__ import annotations

from typing import Any

import orjson

from router_core.errors import BadRequest
from router_core.types import JSON

# Hosted tools a client may send that a local model has no way to run: ignored, since
# Codex sends them on every request whatever the provider.
IGNORED_TOOLS = frozenset({"web_search", "web_search_preview", "web_search_preview_2025_03_11"})
# Item types carrying no content a chat model can read (encrypted reasoning, hosted-tool traces).
SKIPPED_ITEMS = frozenset({"reasoning", "web_search_call", "compaction", "image_generation_call"})
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
# Free-form (custom) tools take one string: exposed to chat models as this argument.
CUSTOM_INPUT = "input"


def _text_of(content: Any, where: str) -> str | list[JSON]:
    """A message's content as chat content: a string, or parts when it holds images."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"'{where}.content' must be a string or an array of parts", param=f"{where}.content")
    texts: list[str] = []
    parts: list[JSON] = []
    has_image = False
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise BadRequest(f"'{where}.content[{j}].text' must be a string", param=f"{where}.content[{j}].text")
            texts.append(text)
            parts.append({"type": "text", "text": text})
        elif kind == "refusal":
            texts.append(str(part.get("refusal") or ""))
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise BadRequest(
                    f"'{where}.content[{j}]': only images given by 'image_url' are supported",
                    param=f"{where}.content[{j}]",
                )
            has_image = True
            parts.append({"type": "image_url", "image_url": {"url": url}})
        else:
            raise BadRequest(f"'{where}.content[{j}]' has an unsupported type {kind!r}", param=f"{where}.content[{j}]")
    return parts if has_image else "".join(texts)


def _output_text(output: Any) -> str:
    """A function_call_output's `output` (a string, or input_text parts) as tool-message text."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return orjson.dumps(output).decode()


class _Messages:
    """Chat messages built item by item; consecutive calls join one assistant message."""

    def __init__(self) -> None:
        self.messages: list[JSON] = []

    def add(self, message: JSON) -> None:
        self.messages.append(message)

    def call(self, call_id: str, name: str, arguments: str) -> None:
        call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            self.messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _str_field(item: JSON, name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{where}.{name}' must be a non-empty string", param=f"{where}.{name}")
    return value


def input_messages(items: Any) -> list[JSON]:
    """`input` (a string or an array of items) as chat messages."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise BadRequest("'input' must be a string or an array of items", param="input")
    out = _Messages()
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"'{where}' must be an object", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise BadRequest(f"'{where}.role' must be one of {sorted(ROLES)}", param=f"{where}.role")
            out.add({"role": ROLES[role], "content": _text_of(item.get("content"), where)})
        elif kind in ("function_call", "custom_tool_call"):
            name = _str_field(item, "name", where)
            call_id = _str_field(item, "call_id", where)
            if kind == "function_call":
                arguments = item.get("arguments")
                if not isinstance(arguments, str):
                    raise BadRequest(f"'{where}.arguments' must be a JSON string", param=f"{where}.arguments")
            else:
                arguments = orjson.dumps({CUSTOM_INPUT: str(item.get("input") or "")}).decode()
            out.call(call_id, name, arguments)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = _str_field(item, "call_id", where)
            out.add({"role": "tool", "tool_call_id": call_id, "content": _output_text(item.get("output"))})
        elif kind in SKIPPED_ITEMS:
            continue
        else:
            raise BadRequest(f"'{where}': input items of type {kind!r} are not supported", param=where)
    return out.messages


def _function_tool(tool: JSON, where: str) -> JSON:
    name = _str_field(tool, "name", where)
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise BadRequest(f"'{where}.parameters' must be an object", param=f"{where}.parameters")
    fn: JSON = {"name": name, "parameters": parameters or {"type": "object", "properties": {}}}
    if isinstance(tool.get("description"), str):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def chat_tools(tools: Any) -> tuple[list[JSON] | None, frozenset[str]]:
    """(chat tools, names of the free-form tools among them)."""
    if tools is None:
        return None, frozenset()
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", param="tools")
    out: list[JSON] = []
    custom: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or kind is None:
            raise BadRequest(f"'{where}' must be an object with a 'type'", param=where)
        if kind == "function":
            out.append(_function_tool(tool, where))
        elif kind == "namespace":
            inner = tool.get("tools")
            for j, sub in enumerate(inner if isinstance(inner, list) else []):
                if isinstance(sub, dict) and sub.get("type", "function") == "function":
                    out.append(_function_tool(sub, f"{where}.tools[{j}]"))
        elif kind == "custom":
            name = _str_field(tool, "name", where)
            custom.add(name)
            params = {"type": "object", "properties": {CUSTOM_INPUT: {"type": "string"}}, "required": [CUSTOM_INPUT]}
            out.append(
                {
                    "type": "function",
                    "function": {"name": name, "description": str(tool.get("description") or ""), "parameters": params},
                }
            )
        elif kind in IGNORED_TOOLS:
            continue
        else:
            raise BadRequest(
                f"'{where}': the hosted tool {kind!r} runs only on OpenAI's servers; Hybridge supports function tools",
                param=where,
            )
    return (out or None), frozenset(custom)


def _tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    named = isinstance(choice, dict) and isinstance(choice.get("name"), str)
    if named and choice.get("type") in ("function", "custom"):
        return {"type": "function", "function": {"name": choice["name"]}}
    if isinstance(choice, dict) and choice.get("type") in IGNORED_TOOLS:
        return "auto"
    raise BadRequest("'tool_choice' must be 'none', 'auto', 'required' or a named function", param="tool_choice")


def _response_format(text: Any) -> JSON | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        schema.setdefault("name", "output")
        return {"type": "json_schema", "json_schema": schema}
    raise BadRequest(f"'text.format.type' {fmt['type']!r} is not supported", param="text.format")


def chat_body(body: JSON, history: list[JSON]) -> tuple[JSON, frozenset[str]]:
    """The chat-completions body for Responses request `body` (after `history`, the
    conversation a `previous_response_id` names), and the free-form tool names."""
    if body.get("background"):
        raise BadRequest("background responses are not supported", param="background")
    messages: list[JSON] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise BadRequest("'instructions' must be a string", param="instructions")
        messages.append({"role": "system", "content": instructions})
    messages += history
    if "input" not in body:
        raise BadRequest("'input' is required", param="input")
    messages += input_messages(body["input"])
    tools, custom = chat_tools(body.get("tools"))
    chat: JSON = {"model": body.get("model"), "messages": messages, "stream": body.get("stream", False)}
    if tools:
        chat["tools"] = tools
        if (choice := _tool_choice(body.get("tool_choice"))) is not None:
            chat["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "hybridge_tags"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if (fmt := _response_format(body.get("text"))) is not None:
        chat["response_format"] = fmt
    return chat, custom
