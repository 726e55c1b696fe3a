import pytest

from router_core.errors import BadRequest
from router_core.server.openai_request import parse_chat_request

GOOD = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


def test_minimal_request() -> None:
    req = parse_chat_request(dict(GOOD), {"user-agent": "t"})
    assert (req.model, req.stream, req.max_tokens, req.tools) == ("auto", False, None, None)
    assert req.user_agent == "t"


def test_full_agent_request() -> None:
    body = {
        "model": "auto",
        "stream": True,
        "max_tokens": 64,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "file text"},
        ],
    }
    req = parse_chat_request(body, {})
    assert req.stream and req.max_tokens == 64 and req.tools is not None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "auto"}, "messages"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto", "messages": ["hi"]}, "messages[0]"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "auto", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "auto", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "auto", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"model": "auto", "messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]},
            "messages[0].tool_calls[0]",
        ),
        ({**GOOD, "max_tokens": 0}, "max_tokens"),
        ({**GOOD, "max_tokens": "10"}, "max_tokens"),
        ({**GOOD, "max_tokens": True}, "max_tokens"),
        ({**GOOD, "temperature": 3}, "temperature"),
        ({**GOOD, "stream": "yes"}, "stream"),
        ({**GOOD, "n": 2}, "n"),
        ({**GOOD, "stop": [1]}, "stop"),
        ({**GOOD, "tools": {}}, "tools"),
        ({**GOOD, "tools": [{"type": "function", "function": {"name": ""}}]}, "tools[0].function.name"),
        ({**GOOD, "tool_choice": "sometimes"}, "tool_choice"),
        ({**GOOD, "stream_options": []}, "stream_options"),
    ],
)
def test_bad_requests_name_the_field(body: object, param: str | None) -> None:
    with pytest.raises(BadRequest) as info:
        parse_chat_request(body, {})
    assert info.value.status == 400
    assert info.value.param == param
