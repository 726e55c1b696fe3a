"""A fast prompt-size estimate: no network, no tokenizer on the hot path.

One rule for the whole router (routing's fit check, the local provider's num_ctx, the
Anthropic endpoint's input count): ASCII text at 3 characters a token (about 3.5 for
English and code, so the estimate errs high, the safe side when sizing a context window),
every other character a token of its own (CJK, emoji: a characters ÷ 3 rule reads 25,500
Chinese characters as 8,500 tokens; tokenizers give 17k-25k). Routing works it out once and
the request carries it on (ChatRequest.prompt_tokens), so no one walks the history twice.
"""

from __future__ import annotations

from typing import Any

import orjson

CHARS_PER_TOKEN = 3  # ASCII characters
MESSAGE_OVERHEAD = 4  # role markers and separators of a chat template
IMAGE_TOKENS = 768  # Ollama's server/prompt.go counts a CLIP image as 768 tokens


def text_tokens(text: str) -> int:
    """Tokens of `text`, erring high: ASCII ÷ 3, each non-ASCII character one token."""
    n = len(text)
    extra = len(text.encode("utf-8", "surrogatepass")) - n  # 1-3 extra bytes per non-ASCII char
    dense = min(n, (extra + 1) // 2) if extra else 0
    return (n - dense) // CHARS_PER_TOKEN + dense


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


def estimate_message_tokens(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
        calls = message.get("tool_calls")
        if calls:
            total += text_tokens(orjson.dumps(calls).decode())
    return total


def estimate_tools_tokens(tools: list[dict[str, Any]] | None) -> int:
    return text_tokens(orjson.dumps(tools).decode()) if tools else 0


def estimate_prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    return estimate_message_tokens(messages) + estimate_tools_tokens(tools)


def body_size_tokens(body_bytes: int) -> int:
    """A quick ceiling from the raw JSON body's size, for requests well inside a limit.

    The estimate charges at most a token per 2 bytes of text (a 2-byte UTF-8 character is a
    token; ASCII is 3 to a token, 3-byte characters 3 bytes to a token), and keys, quotes
    and escapes add bytes it does not count, so this errs high. (An image given by URL is
    the exception: the estimate charges IMAGE_TOKENS for it, so compare with some margin.)
    """
    return body_bytes // 2
