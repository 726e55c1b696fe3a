"""What Claude Code 2.1.330 sends to `/v1/messages`, as captured from the real binary here.

Besides the top-level `system` blocks it puts a `role: "system"` message after the first
user turn (its environment block); Hybridge keeps it as a system instruction at that point.
"""

from __future__ import annotations

import pytest

from router_core.errors import BadRequest
from router_core.server.anthropic_request import parse_messages_request

CLAUDE_CODE_BODY = {
    "model": "auto",
    "max_tokens": 32000,
    "stream": True,
    "thinking": {"type": "adaptive"},
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.440; cc_entrypoint=sdk-cli;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>...</system-reminder>"},
                {"type": "text", "text": "say hi"},
            ],
        },
        {"role": "system", "content": [{"type": "text", "text": "# Environment\nPrimary working directory: /p"}]},
    ],
}


def test_a_system_message_inside_messages_stays_a_system_instruction() -> None:
    chat = parse_messages_request(CLAUDE_CODE_BODY, {})
    roles = [m["role"] for m in chat.messages]
    assert roles[0] == "system" and roles[-1] == "system" and "user" in roles[1:-1]
    assert chat.messages[-1]["content"] == "# Environment\nPrimary working directory: /p"


def test_a_system_message_must_hold_text() -> None:
    body = {
        **CLAUDE_CODE_BODY,
        "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": [{"type": "image"}]}],
    }
    with pytest.raises(BadRequest, match=r"messages\.1\.content\.0: must be a text block"):
        parse_messages_request(body, {})
