"""Fuzz: every field of every client request shape replaced by an arbitrary JSON value.

Templates: a full OpenAI chat-completions body (messages of every role, content parts,
tool calls, tools, tool_choice, response_format, stream_options, sampling fields) and a full
Anthropic Messages body (system blocks, tool_use/tool_result, images, tools, tool_choice,
metadata). Hypothesis replaces one field at any depth with any JSON value (strings with
control characters included) and sends it over a real socket to Hybridge, whose upstream
(tests/fakes/scripted_upstream.py, as Ollama) answers well. The property: a 200, or a 4xx in
the client's own error format; never a 500 or a dropped connection; a request that reached
an upstream leaves a ledger row; /health still answers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.garbage import Rig, garbage_rig
from tests.support.memory_keyring import MemoryKeyring
from tests.support.suite import examples

EXAMPLES = examples(1000)

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=8) | st.sampled_from(["\r\n", "\x00", "a\nb", "x" * 3])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)

IMAGE = "data:image/png;base64,iVBORw0KGgo="
OPENAI_BODY: dict[str, Any] = {
    "model": "ollama/m",
    "messages": [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": IMAGE}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
    "stream_options": {"include_usage": True},
    "temperature": 0.5,
    "top_p": 0.9,
    "max_tokens": 16,
    "stop": ["x"],
    "seed": 1,
    "reasoning_effort": "low",
    "stream": False,
}
ANTHROPIC_BODY: dict[str, Any] = {
    "model": "ollama/m",
    "max_tokens": 16,
    "system": [{"type": "text", "text": "be brief"}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
        {"role": "assistant", "content": [{"type": "tool_use", "id": "tu", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu", "content": "42"}]},
    ],
    "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"},
    "metadata": {"user_id": "u"},
    "temperature": 0.5,
    "stop_sequences": ["x"],
    "stream": False,
}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
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


OLLAMA_FINAL = orjson.dumps(
    {
        "model": "m",
        "message": {"role": "assistant", "content": "ok"},
        "done": True,
        "prompt_eval_count": 3,
        "eval_count": 1,
    }
)
CASES = {"count": 0}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with garbage_rig(tmp_path_factory.mktemp("fuzz-client"), MemoryKeyring()) as running:
        yield running


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_client_request_fuzz(rig: Rig, api: str) -> None:
    template = OPENAI_BODY if api == "openai" else ANTHROPIC_BODY
    path = "/v1/chat/completions" if api == "openai" else "/v1/messages"

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=mutations(template))
    def run(body: Any) -> None:
        CASES["count"] += 1
        stream = isinstance(body, dict) and body.get("stream") is True
        rig.upstream.script(
            "/api/chat", [OLLAMA_FINAL + b"\n"] if stream else OLLAMA_FINAL, content_type="application/x-ndjson"
        )
        hits = sum(rig.upstream.hits.values())
        rows = rig.ledger_rows()
        response = rig.client.post(
            f"{rig.root}{path}", content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        status = response.status_code
        assert status < 500 or status in (502, 503, 504), (status, response.text)
        if status >= 400:
            err = response.json()
            if api == "anthropic":
                assert err["type"] == "error" and isinstance(err["error"]["message"], str)
            else:
                assert isinstance(err["error"]["message"], str)
        if sum(rig.upstream.hits.values()) > hits and "/api/chat" in rig.upstream.hits:
            # It reached an upstream: the ledger has its row.
            assert rig.wait_rows(rows + 1) >= rows + 1
        assert rig.healthy()

    run()


def test_zz_case_count() -> None:
    print(f"\nclient fuzz cases: {CASES['count']}")
    assert CASES["count"] >= EXAMPLES
