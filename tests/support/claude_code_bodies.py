"""Claude-Code-shaped `/v1/messages` bodies, built from bodies real Claude Code sent.

`tests/fixtures/claude_code/*.json` were recorded from Claude Code 2.1.330 (`claude -p "Fix
the typo in README.md" --model sonnet`, the npm package tests/support/claude_code.py
installs) against tests/fakes/fake_anthropic.py scripted to call Read, then Edit, then
answer; the project (a CLAUDE.md naming src/auth/ and billing/plans.tsx, a README.md) was
at /home/dev/shop after replacing the temp path:

- turn.json: the first request: `system` as text blocks (an `x-anthropic-billing-header`
  line, the SDK identity line, the ~25k-character prompt), 12 tools (~32k characters of
  JSON), max_tokens 128000, and one user message of eight `<system-reminder>` text blocks
  (environment, model, deferred tools, agent types, skills, CLAUDE.md, date, attribution)
  before the prompt;
- after_read.json / after_edit.json: the next steps, with the assistant's `tool_use` and a
  user message holding the `tool_result`.

Claude Code also appends `<system-reminder>` text blocks after tool results (file changes,
todo nudges); the builders add those the way it does, as further text blocks of the user
message that carries the tool results.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"
PROJECT = "/home/dev/shop"
JSON = dict[str, Any]
REMINDER = (
    "<system-reminder>\nThe TodoWrite tool hasn't been used recently. If you're working on tasks that would "
    "benefit from tracking progress, consider using the TodoWrite tool to track progress.\n</system-reminder>"
)


@cache
def _recorded(name: str) -> JSON:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def recorded(name: str) -> tuple[JSON, JSON]:
    """(headers, body) of a recorded request, as fresh copies."""
    data = _recorded(name)
    return dict(data["headers"]), copy.deepcopy(data["body"])


def context_blocks() -> list[JSON]:
    """The `<system-reminder>` blocks of the recorded first user message (CLAUDE.md among them)."""
    _, body = recorded("turn")
    return [b for b in body["messages"][0]["content"] if b["text"].startswith("<system-reminder>")]


def tool_step(calls: list[tuple[str, JSON, str]], start: int, reminder: bool = False) -> list[JSON]:
    """An assistant message of tool_use blocks, then the user message with their results
    (and a trailing `<system-reminder>` block when `reminder`)."""
    ids = [f"toolu_{start + i:04d}" for i in range(len(calls))]
    uses = [{"type": "tool_use", "id": i, "name": n, "input": a} for i, (n, a, _) in zip(ids, calls, strict=True)]
    results: list[JSON] = [
        {"type": "tool_result", "tool_use_id": i, "content": r} for i, (_, _, r) in zip(ids, calls, strict=True)
    ]
    if reminder:
        results.append({"type": "text", "text": REMINDER})
    return [{"role": "assistant", "content": uses}, {"role": "user", "content": results}]


def read_result(lines: list[str]) -> str:
    """The text Claude Code's Read tool returns (`N<TAB>line`)."""
    return "\n".join(f"{i}\t{line}" for i, line in enumerate(lines, 1))


def turn_body(
    prompt: str | list[JSON],
    *,
    steps: list[list[JSON]] | None = None,
    history: list[JSON] | None = None,
    model: str = "claude-sonnet-5-5",
    system: list[JSON] | None = None,
    with_context: bool = True,
) -> JSON:
    """A Claude Code main-loop request: the recorded system and tools, the context blocks
    and `prompt` as the first user message (or after `history`), then `steps`."""
    _, body = recorded("turn")
    blocks = prompt if isinstance(prompt, list) else [{"type": "text", "text": prompt}]
    first = {"role": "user", "content": [*(context_blocks() if with_context and not history else []), *blocks]}
    messages = [*(history or []), first]
    for s in steps or []:
        messages += s
    body["messages"] = messages
    body["model"] = model
    if system is not None:
        body["system"] = system
    return body


def small_body(text: str, *, model: str = "claude-haiku-4-5-20251001") -> JSON:
    """A background request of Claude Code's small/fast model (titles, topic detection): a
    short system prompt, no tools."""
    return {
        "model": model,
        "max_tokens": 512,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.6f5; cc_entrypoint=sdk-cli;"},
            {
                "type": "text",
                "text": "Analyze if this message indicates a new conversation topic. If it does, "
                "extract a 2-3 word title that captures the new topic. Format your response as a JSON object.",
            },
        ],
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        "stream": True,
    }


def headers() -> dict[str, str]:
    hdrs, _ = recorded("turn")
    return hdrs
