"""Fuzz: every field of every upstream answer shape replaced by an arbitrary JSON value.

Shapes (each a well-formed template first): Ollama `/api/chat` as a whole answer and as
NDJSON lines, OpenAI `chat.completion` and `chat.completion.chunk` SSE, Anthropic `message`
and its stream events. Hypothesis picks one field (any depth) and a JSON value for it; the
scripted upstream (tests/fakes/scripted_upstream.py) sends the result over a real socket to a
real Hybridge. The property: a 200 in the client's format, or a 4xx/502 error in the
client's format, or a stream that ends in an error event; never a 500; a ledger row for every
request; /health still answers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.garbage import PATHS, Rig, garbage_rig, sse_events
from tests.support.memory_keyring import MemoryKeyring
from tests.support.suite import examples

EXAMPLES = examples(150)  # per shape and API: 10 shapes x 2 client APIs

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)

OLLAMA_FINAL = {
    "model": "m",
    "message": {
        "role": "assistant",
        "content": "hi",
        "thinking": "hmm",
        "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
    },
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 3,
    "eval_count": 2,
    "eval_duration": 1000,
}
OLLAMA_LINE = {"model": "m", "message": {"role": "assistant", "content": "hi"}, "done": False}
OPENAI_COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "hi",
                "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 1}},
}
OPENAI_CHUNK = {
    "id": "c",
    "object": "chat.completion.chunk",
    "choices": [
        {
            "index": 0,
            "delta": {
                "role": "assistant",
                "content": "hi",
                "tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{}"}}],
            },
            "finish_reason": None,
        }
    ],
}
OPENAI_USAGE_CHUNK = {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "content": [
        {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "tu", "name": "f", "input": {"a": 1}},
    ],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 0},
}
ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"},
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every field's path in `value`, nested ones included (the root too)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += paths(item, (*prefix, i))
    return out


def replaced(template: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(template)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return out


def mutations(template: Any) -> st.SearchStrategy[Any]:
    return st.tuples(st.sampled_from(paths(template)), json_values).map(lambda pv: replaced(template, *pv))


# shape name → (provider, stream, strategy of the bytes the upstream sends)
def _ndjson(lines: list[Any]) -> list[bytes]:
    return [orjson.dumps(line) + b"\n" for line in lines]


def _sse(events: list[Any], named: bool) -> list[bytes]:
    out = []
    for event in events:
        name = event.get("type", "x") if named and isinstance(event, dict) else None
        head = f"event: {name}\n".encode() if isinstance(name, str) and name.isidentifier() else b""
        out.append(head + b"data: " + orjson.dumps(event) + b"\n\n")
    return out


SHAPES: dict[str, tuple[str, bool, st.SearchStrategy[list[bytes]]]] = {
    "ollama_answer": ("ollama", False, mutations(OLLAMA_FINAL).map(lambda v: [orjson.dumps(v)])),
    "ollama_first_line": ("ollama", True, mutations(OLLAMA_LINE).map(lambda v: _ndjson([v, OLLAMA_FINAL]))),
    "ollama_last_line": ("ollama", True, mutations(OLLAMA_FINAL).map(lambda v: _ndjson([OLLAMA_LINE, v]))),
    "openai_completion": ("oai", False, mutations(OPENAI_COMPLETION).map(lambda v: [orjson.dumps(v)])),
    "openai_chunk": (
        "oai",
        True,
        mutations(OPENAI_CHUNK).map(lambda v: [*_sse([v, OPENAI_USAGE_CHUNK], False), b"data: [DONE]\n\n"]),
    ),
    "openai_usage_chunk": (
        "oai",
        True,
        mutations(OPENAI_USAGE_CHUNK).map(lambda v: [*_sse([OPENAI_CHUNK, v], False), b"data: [DONE]\n\n"]),
    ),
    "anthropic_message": ("ant", False, mutations(ANTHROPIC_MESSAGE).map(lambda v: [orjson.dumps(v)])),
    "anthropic_events": (
        "ant",
        True,
        mutations(ANTHROPIC_EVENTS).map(lambda v: _sse(v if isinstance(v, list) else [v], True)),
    ),
    "anthropic_start_event": (
        "ant",
        True,
        mutations(ANTHROPIC_EVENTS[0]).map(lambda v: _sse([v, *ANTHROPIC_EVENTS[1:]], True)),
    ),
    "anthropic_delta_event": (
        "ant",
        True,
        mutations(ANTHROPIC_EVENTS[2]).map(lambda v: _sse([*ANTHROPIC_EVENTS[:2], v, *ANTHROPIC_EVENTS[3:]], True)),
    ),
}
CASES = {"count": 0}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with garbage_rig(tmp_path_factory.mktemp("fuzz-up"), MemoryKeyring()) as running:
        yield running


def check_answer(rig: Rig, api: str, stream: bool, status: int, text: str, rows_before: int) -> None:
    assert status != 500 and status in (200, 400, 404, 408, 413, 429, 502, 503, 504), (status, text)
    if status != 200:
        body = orjson.loads(text)
        if api == "anthropic":
            assert body["type"] == "error" and isinstance(body["error"]["message"], str)
        else:
            assert isinstance(body["error"]["message"], str) and "internal error" not in body["error"]["message"]
    elif stream:
        events = sse_events(text)
        assert events, text
        for event in events[:-1]:
            assert "error" not in event or (event.get("type") == "error" and event is events[-1])
        last = events[-1]
        if "error" in last:
            assert "internal error" not in orjson.dumps(last).decode()
    else:
        body = orjson.loads(text)
        assert ("choices" in body) if api == "openai" else (body["type"] == "message")
    assert rig.wait_rows(rows_before + 1) == rows_before + 1
    assert rig.healthy()


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_upstream_answer_fuzz(rig: Rig, shape: str, api: str) -> None:
    provider, stream, strategy = SHAPES[shape]

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(pieces=strategy)
    def run(pieces: list[bytes]) -> None:
        CASES["count"] += 1
        content_type = ("application/x-ndjson" if provider == "ollama" else "text/event-stream") if stream else None
        rig.upstream.script(PATHS[provider], pieces, content_type=content_type or "application/json")
        rows = rig.ledger_rows()
        response = rig.chat(provider, stream=stream, api=api)
        check_answer(rig, api, stream, response.status_code, response.text, rows)

    run()


def test_zz_case_count() -> None:
    """Printed for the closing note: how many generated answers ran (all passed, or we'd not be here)."""
    print(f"\nupstream fuzz cases: {CASES['count']}")
    assert CASES["count"] >= EXAMPLES  # the shapes above ran (with -k selecting some, at least one)
