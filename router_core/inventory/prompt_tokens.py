"""Prompt-size estimates for sizing a local context: calibrated by the session's last turn.

Ollama reports `prompt_eval_count` as the whole prompt of a turn (runner/ollamarunner
counts the prompt's inputs before the KV cache is applied). An agent's next turn repeats
that turn's messages and adds a few, so its size is that count plus an estimate of the new
messages only. Without a previous turn, a conservative rule: ASCII text at 3 characters a
token, every other character a token of its own (CJK, emoji: a characters ÷ 3 rule reads
25,500 Chinese characters as 8,500 tokens; tokenizers give 17k-25k).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import orjson

ASCII_CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD = 4  # role markers and separators of a chat template
IMAGE_TOKENS = 768  # server/prompt.go counts a CLIP image as 768 tokens
SESSIONS_KEPT = 256


def text_tokens(text: str) -> int:
    """Tokens of `text`, erring high: ASCII ÷ 3, each non-ASCII character one token."""
    n = len(text)
    extra = len(text.encode("utf-8", "surrogatepass")) - n  # 1-3 extra bytes per non-ASCII char
    dense = min(n, (extra + 1) // 2) if extra else 0
    return (n - dense) // ASCII_CHARS_PER_TOKEN + dense


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    total = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                total += text_tokens(text)
            elif part.get("type") in ("image_url", "image", "input_image"):
                total += IMAGE_TOKENS
    return total


def messages_tokens(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
        calls = message.get("tool_calls")
        if calls:
            total += text_tokens(orjson.dumps(calls).decode())
    return total


def conservative_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    tools_tokens = text_tokens(orjson.dumps(tools).decode()) if tools else 0
    return messages_tokens(messages) + tools_tokens


def _digest(messages: list[dict[str, Any]]) -> bytes:
    return hashlib.blake2b(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def session_key(model: str, session: str | None, messages: list[dict[str, Any]]) -> str:
    """A session's key: its id when the client sends one, else its first message (the system prompt)."""
    if session:
        return f"{model}\0{session}"
    head = orjson.dumps(messages[:1], option=orjson.OPT_SORT_KEYS)
    return f"{model}\0" + hashlib.blake2b(head, digest_size=16).hexdigest()


class SessionTokens:
    """The last turn's (message count, digest of those messages, prompt_eval_count) per session."""

    def __init__(self, kept: int = SESSIONS_KEPT) -> None:
        self._kept = kept
        self._turns: OrderedDict[str, tuple[int, bytes, int]] = OrderedDict()

    def estimate(self, key: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
        """The previous turn's count plus the new messages, or the conservative rule."""
        turn = self._turns.get(key)
        if turn is not None:
            count, digest, tokens = turn
            if len(messages) > count and _digest(messages[:count]) == digest:
                self._turns.move_to_end(key)
                return tokens + messages_tokens(messages[count:])
        return conservative_tokens(messages, tools)

    def record(self, key: str, messages: list[dict[str, Any]], prompt_eval_count: int) -> None:
        """What the engine counted for this turn's prompt (not when it was truncated)."""
        self._turns[key] = (len(messages), _digest(messages), prompt_eval_count)
        self._turns.move_to_end(key)
        while len(self._turns) > self._kept:
            self._turns.popitem(last=False)
