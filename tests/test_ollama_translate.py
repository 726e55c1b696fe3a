import orjson
import pytest

from router_core.errors import BadRequest
from router_core.providers.ollama_translate import (
    ChunkTranslator,
    completion_from_ollama,
    to_ollama_body,
    usage_from_ollama,
)


def test_request_translation_with_tools_images_and_tool_results() -> None:
    body = {
        "model": "auto",
        "max_tokens": 50,
        "temperature": 0.2,
        "stop": "END",
        "tools": [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "see "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": '{"path": "a.py"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "print(1)"},
        ],
    }
    out = to_ollama_body(body, "qwen3:30b-a3b", stream=True, num_ctx=16384)
    assert out["model"] == "qwen3:30b-a3b" and out["stream"] is True
    assert out["options"] == {"num_ctx": 16384, "temperature": 0.2, "stop": ["END"], "num_predict": 50}
    assert out["tools"] == body["tools"]
    # Each content part is its own message, as Ollama's openai/openai.go builds them.
    system, text, image, assistant, tool = out["messages"]
    assert system == {"role": "system", "content": "be brief"}
    assert text == {"role": "user", "content": "see "}
    assert image == {"role": "user", "content": "", "images": ["iVBOR"]}
    # Tool-call ids kept both ways (api/types.go ToolCall.ID, Message.ToolCallID).
    assert assistant["tool_calls"] == [{"id": "call_1", "function": {"name": "read", "arguments": {"path": "a.py"}}}]
    assert tool == {"role": "tool", "content": "print(1)", "tool_name": "read", "tool_call_id": "call_1"}


def test_remote_image_urls_are_refused_for_local_models() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}
    with pytest.raises(BadRequest, match="data: URLs"):
        to_ollama_body(body, "m", stream=False, num_ctx=8192)


def test_bad_tool_arguments_are_a_client_error() -> None:
    body = {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}]}
    with pytest.raises(BadRequest) as info:
        to_ollama_body(body, "m", stream=False, num_ctx=8192)
    assert info.value.param == "messages[0].tool_calls[0].function.arguments"


def test_stream_translation_text_then_final_counters() -> None:
    t = ChunkTranslator("ollama/m", 1700000000)
    first = t.translate({"message": {"role": "assistant", "content": "Hel"}, "done": False})
    second = t.translate({"message": {"role": "assistant", "content": "lo"}, "done": False})
    final_line = {
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 26,
        "eval_count": 2,
        "eval_duration": 40_000_000,
    }
    last = t.translate(final_line)
    assert first[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert second[0]["choices"][0]["delta"] == {"content": "lo"}
    assert last == [{**t.base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}]
    assert {c["id"] for c in first + second + last} == {t.base["id"]}
    usage = usage_from_ollama(final_line)
    assert (usage.input_tokens, usage.output_tokens) == (26, 2)
    assert usage.decode_tokens_per_second == pytest.approx(50.0)


def test_stream_translation_tool_calls_become_indexed_deltas() -> None:
    t = ChunkTranslator("ollama/m", 0)
    calls = [{"function": {"name": "read", "arguments": {"path": "a"}}}, {"function": {"name": "ls", "arguments": {}}}]
    chunks = t.translate({"message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": False})
    chunks += t.translate({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"})
    deltas = chunks[0]["choices"][0]["delta"]["tool_calls"]
    assert [d["index"] for d in deltas] == [0, 1]
    assert orjson.loads(deltas[0]["function"]["arguments"]) == {"path": "a"}
    assert all(d["id"].startswith("call_") and d["type"] == "function" for d in deltas)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_whole_completion_translation() -> None:
    final = {
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
        },
        "done": True,
        "done_reason": "stop",
    }
    body = completion_from_ollama(final, "ollama/m", 5)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert "index" not in choice["message"]["tool_calls"][0]
    assert body["object"] == "chat.completion" and body["model"] == "ollama/m"
