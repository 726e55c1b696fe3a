"""Prompt-size estimates for sizing a local context: calibrated by the session's last turn.

Ollama reports `prompt_eval_count` as the whole prompt of a turn (runner/ollamarunner
counts the prompt's inputs before the KV cache is applied). An agent's next turn repeats
that turn's messages and adds a few, so its size is that count plus an estimate of the new
messages only. Without a previous turn, the router's conservative rule (routing/tokens.py),
which routing has usually worked out already: the request carries it (`known`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import orjson

from router_core.routing.tokens import estimate_message_tokens, estimate_prompt_tokens, text_tokens

__all__ = ["SessionTokens", "conservative_tokens", "messages_tokens", "session_key", "text_tokens"]

SESSIONS_KEPT = 256


def messages_tokens(messages: list[dict[str, Any]]) -> int:
    return estimate_message_tokens(messages)


def conservative_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """The rule without a previous turn (routing/tokens.py, the router's one estimate)."""
    return estimate_prompt_tokens(messages, tools)


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

    def estimate(
        self,
        key: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        known: int | None = None,
    ) -> int:
        """The previous turn's count plus the new messages, or the conservative rule
        (`known`: that rule's figure when routing worked it out already)."""
        turn = self._turns.get(key)
        if turn is not None:
            count, digest, tokens = turn
            if len(messages) > count and _digest(messages[:count]) == digest:
                self._turns.move_to_end(key)
                return tokens + messages_tokens(messages[count:])
        return known if known is not None else conservative_tokens(messages, tools)

    def record(self, key: str, messages: list[dict[str, Any]], prompt_eval_count: int) -> None:
        """What the engine counted for this turn's prompt (not when it was truncated)."""
        self._turns[key] = (len(messages), _digest(messages), prompt_eval_count)
        self._turns.move_to_end(key)
        while len(self._turns) > self._kept:
            self._turns.popitem(last=False)
