"""Hybridge's own Anthropic endpoint (`/v1/messages`) in front of an Anthropic upstream (the
wire-faithful fake), checked with the official `anthropic` client over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from router_core.keys import KEYRING_SERVICE
from router_core.routing.tokens import estimate_prompt_tokens
from router_core.server.anthropic_request import parse_messages_request
from router_core.service import RouterService
from tests.fakes.fake_anthropic import API_KEY, FakeAnthropic, Reply, overloaded
from tests.support.clouds import Records, cloud_settings, fake_anthropic, reset
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import run_hybridge

MODEL = "claude-sonnet-4-5"
SYSTEM = " ".join(["rules"] * 1500)  # 1,500 tokens for the fake (one per word)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeAnthropic, str]]:
    with fake_anthropic() as running:
        yield running


@pytest.fixture
def fake(upstream: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    reset(upstream[0])
    return upstream[0]


@pytest.fixture
def hybridge(upstream: tuple[FakeAnthropic, str], memory_keyring: MemoryKeyring) -> Iterator[RouterService]:
    memory_keyring.set_password(KEYRING_SERVICE, "anthropic", API_KEY)
    settings = cloud_settings("anthropic", {"base_url": upstream[1]}, f"anthropic/{MODEL}")
    with run_hybridge(settings) as service:
        yield service


def root(service: RouterService) -> str:
    return service.status().base_url.removesuffix("/v1")


def client_for(service: RouterService) -> anthropic.Anthropic:
    # Claude Code's setup: ANTHROPIC_BASE_URL is the server root; it appends /v1/messages.
    return anthropic.Anthropic(base_url=root(service), api_key="client-key-not-forwarded", max_retries=0)


def claude_code_body(**extra: Any) -> dict[str, Any]:
    return {
        "max_tokens": 256,
        "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "List the rules briefly."}]}],
        **extra,
    }


def test_anthropic_client_is_passed_through_with_its_own_cache_breakpoints(
    hybridge: RouterService, fake: FakeAnthropic
) -> None:
    records = Records(hybridge)
    client = client_for(hybridge)
    body = claude_code_body()
    raw = client.messages.with_raw_response.create(
        model="claude-opus-4-1", extra_headers={"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"}, **body
    )
    assert raw.headers["x-hybridge-route"] == "cloud"
    assert raw.headers["x-hybridge-model"] == f"anthropic/{MODEL}"
    first = raw.parse()
    assert first.type == "message" and first.content[0].type == "text"
    assert first.content[0].text == "Hello from the fake Anthropic API."
    # By hand: the client marked only the system prompt (1500 tokens, over 1,024): written
    # 1500; the 4-word user turn after the breakpoint is plain input.
    assert (first.usage.input_tokens, first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (
        4,
        1500,
        0,
    )

    headers, sent = fake.state.requests[-1]
    assert sent == {**body, "model": MODEL}  # the client's body, only the model swapped
    assert headers["anthropic-beta"] == "fine-grained-tool-streaming-2025-05-14"
    assert headers["anthropic-version"] == raw.http_request.headers["anthropic-version"]  # as the client sent it
    assert headers["x-api-key"] == API_KEY  # Hybridge's key, not the client's

    with client.messages.stream(model="claude-opus-4-1", **body) as stream:
        text = "".join(stream.text_stream)
        second = stream.get_final_message()
    assert text == "Hello from the fake Anthropic API."
    # Second call, by hand: the system prefix is read from the cache (1500), nothing new is
    # written, the user turn is input again (4).
    assert (second.usage.input_tokens, second.usage.cache_creation_input_tokens) == (4, 0)
    assert second.usage.cache_read_input_tokens == 1500
    assert second.usage.output_tokens == 6
    assert second.stop_reason == "end_turn"

    first_record, second_record = records.wait(2)
    assert (first_record.api, first_record.requested_model, first_record.streamed) == (
        "anthropic",
        "claude-opus-4-1",
        False,
    )
    assert (second_record.usage.cache_read_tokens, second_record.usage.input_tokens) == (1500, 4)


def test_tool_use_streams_back_as_anthropic_events(hybridge: RouterService, fake: FakeAnthropic) -> None:
    call = {"type": "tool_use", "id": "toolu_01X", "name": "Read", "input": {"file_path": "/tmp/a.py", "limit": 40}}
    fake.state.script = [Reply([{"type": "text", "text": "Reading it."}, call])]
    tools = [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}]
    with client_for(hybridge).messages.stream(
        model=f"anthropic/{MODEL}", max_tokens=100, tools=tools, messages=[{"role": "user", "content": "Open a.py"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use"]
    tool = final.content[1]
    assert tool.type == "tool_use" and (tool.id, tool.name, tool.input) == (call["id"], call["name"], call["input"])


def test_errors_reach_an_anthropic_client_in_its_shape(hybridge: RouterService, fake: FakeAnthropic) -> None:
    client = client_for(hybridge)
    fake.state.script = [overloaded()]
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="claude-opus-4-1", **claude_code_body())
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert caught.value.body["type"] == "error"  # type: ignore[index]

    fake.state.context_window = 100
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="claude-opus-4-1", **claude_code_body())
    # Claude Code compacts its history on this wording.
    assert bad.value.body["error"]["message"].startswith("prompt is too long: ")  # type: ignore[index]
    assert "1504 tokens > 100 maximum" in bad.value.body["error"]["message"]  # type: ignore[index]

    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="nobody/model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]

    response = httpx.post(f"{root(hybridge)}/v1/messages", json={"model": "claude-opus-4-1", "messages": []})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["request_id"].startswith("req_")

    wrong_method = httpx.get(f"{root(hybridge)}/v1/messages")
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "error"


def test_a_failure_mid_stream_is_an_error_event(hybridge: RouterService, fake: FakeAnthropic) -> None:
    fake.state.script = [Reply([{"type": "text", "text": "alpha beta gamma delta"}], error_after_deltas=2)]
    body = {**claude_code_body(), "model": "claude-opus-4-1", "stream": True}
    with httpx.stream("POST", f"{root(hybridge)}/v1/messages", json=body, timeout=30) as response:
        assert response.status_code == 200
        frames = [f for f in response.read().decode().split("\n\n") if f]
    names = [f.split("\n")[0].removeprefix("event: ") for f in frames]
    assert names[:2] == ["message_start", "ping"]
    # message_start carries the prompt's estimated size (Claude Code's context bar reads it).
    start = orjson.loads(frames[0].split("\n")[1].removeprefix("data: "))
    chat = parse_messages_request(body, {})
    assert start["message"]["usage"]["input_tokens"] == estimate_prompt_tokens(chat.messages, chat.tools) > 1000
    assert names[-1] == "error" and "message_stop" not in names
    error = orjson.loads(frames[-1].split("\n")[1].removeprefix("data: "))
    assert error["error"] == {"type": "overloaded_error", "message": "anthropic: Overloaded"}


def test_count_tokens(hybridge: RouterService, fake: FakeAnthropic) -> None:
    client = client_for(hybridge)
    body = claude_code_body()
    body.pop("max_tokens")
    # Routed to Anthropic: Anthropic's own count (the fake's: 1500 + 4 words).
    counted = client.messages.count_tokens(model="claude-opus-4-1", **body)
    assert counted.input_tokens == 1504
    # Routed locally (haiku): no upstream call, our estimate, which errs high.
    before = len(fake.state.requests)
    local = client.messages.count_tokens(model="claude-haiku-4-5", **body)
    assert local.input_tokens >= 1504
    assert len(fake.state.requests) == before
