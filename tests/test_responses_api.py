"""`POST /v1/responses` (OpenAI's Responses API) with the official `openai` client over real
sockets: a scripted cloud tool call and its output (the fake cloud, tests/fakes), and the
real local model behind llama-server, streamed and not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from router_core.service import RouterService
from tests.conftest import local_settings
from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud, Reply
from tests.support.clouds import Records, cloud_settings, fake_openai_cloud, reset
from tests.support.llama import LlamaServer
from tests.support.servers import run_hybridge

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
# What Codex sends beside its function tools (seen here): a hosted web search.
WEB_SEARCH = {"type": "web_search", "external_web_access": False}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAICloud, str]]:
    with fake_openai_cloud() as running:
        yield running


@pytest.fixture
def fake(upstream: tuple[FakeOpenAICloud, str]) -> FakeOpenAICloud:
    reset(upstream[0])
    return upstream[0]


@pytest.fixture
def hybridge(upstream: tuple[FakeOpenAICloud, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[RouterService]:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with run_hybridge(cloud_settings("openai", {"base_url": f"{upstream[1]}/v1"}, "openai/gpt-4.1")) as service:
        yield service


def client_for(service: RouterService) -> openai.OpenAI:
    return openai.OpenAI(base_url=service.status().base_url, api_key="unused", max_retries=0)


def tool_reply() -> Reply:
    return Reply(text="", tool_calls=[{"id": "call_w1", "name": "get_weather", "arguments": {"city": "Oslo"}}])


def test_function_call_and_its_output_round_trip(hybridge: RouterService, fake: FakeOpenAICloud) -> None:
    records = Records(hybridge)
    client = client_for(hybridge)
    fake.state.script = [tool_reply(), Reply(text="It is sunny in Oslo.")]
    first = client.responses.create(
        model="cloud",
        instructions="You are terse.",
        input=[
            {"role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"}]},
        ],
        tools=[WEATHER, WEB_SEARCH],
        include=["reasoning.encrypted_content"],
        store=False,
        extra_body={"prompt_cache_key": "k1", "client_metadata": {"x": "y"}},
    )
    assert first.status == "completed" and first.object == "response"
    call = next(item for item in first.output if item.type == "function_call")
    assert (call.name, call.call_id, json.loads(call.arguments)) == ("get_weather", "call_w1", {"city": "Oslo"})
    sent = fake.state.requests[0][1]
    # instructions first, the developer message as a system message, the function tool only.
    assert [m["role"] for m in sent["messages"]] == ["system", "system", "user"]
    assert sent["messages"][0]["content"] == "You are terse."
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert (
        first.usage is not None
        and first.usage.input_tokens > 0
        and first.usage.total_tokens == (first.usage.input_tokens + first.usage.output_tokens)
    )

    second = client.responses.create(
        model="cloud",
        input=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
            {"type": "function_call", "call_id": "call_w1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
            {"type": "function_call_output", "call_id": "call_w1", "output": "sunny, 21 C"},
        ],
        tools=[WEATHER],
        store=False,
    )
    assert second.output_text == "It is sunny in Oslo."
    messages = fake.state.requests[1][1]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_w1" and messages[1]["role"] == "assistant"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 21 C"}
    rows = records.wait(2)
    assert [(r.api, r.route, r.requested_model) for r in rows] == [("responses", "cloud", "cloud")] * 2


def test_streamed_tool_call_events_in_order(hybridge: RouterService, fake: FakeOpenAICloud) -> None:
    client = client_for(hybridge)
    fake.state.script = [tool_reply()]
    events = list(client.responses.create(model="cloud", input="Weather in Oslo?", tools=[WEATHER], stream=True))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-2].item
    assert done.type == "function_call" and json.loads(done.arguments) == {"city": "Oslo"}
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Oslo"}
    assert events[-1].response.usage.output_tokens > 0


def test_previous_response_id_continues_a_stored_response(hybridge: RouterService, fake: FakeOpenAICloud) -> None:
    client = client_for(hybridge)
    fake.state.script = [Reply(text="Noted: blue."), Reply(text="Blue.")]
    first = client.responses.create(model="cloud", input="My colour is blue.")
    second = client.responses.create(model="cloud", input="What is my colour?", previous_response_id=first.id)
    assert second.output_text == "Blue." and second.previous_response_id == first.id
    messages = fake.state.requests[1][1]["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "My colour is blue."),
        ("assistant", "Noted: blue."),
        ("user", "What is my colour?"),
    ]
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.responses.create(model="cloud", input="again", previous_response_id="resp_unknown")


def test_unsupported_hosted_tool_is_a_clear_400(hybridge: RouterService, fake: FakeOpenAICloud) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(hybridge).responses.create(
            model="cloud", input="hi", tools=[{"type": "code_interpreter", "container": {"type": "auto"}}]
        )
    assert "code_interpreter" in str(caught.value) and "function tools" in str(caught.value)
    assert fake.state.requests == []
    # Bad input: a 400 in OpenAI's shape, and the server keeps serving.
    response = httpx.post(f"{hybridge.status().base_url}/responses", json={"model": "cloud", "input": 5})
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"


@pytest.mark.real_model
def test_local_model_answers_streamed_and_whole(llama_server: LlamaServer, fake_ollama: Any) -> None:
    settings = local_settings(
        fake_ollama.url, llama_server.url, routing={"local_model": f"llamacpp/{llama_server.model}"}
    )
    with run_hybridge(settings) as service:
        records = Records(service)
        client = client_for(service)
        whole = client.responses.with_raw_response.create(model="auto", input="Say hi", max_output_tokens=8)
        assert whole.headers["x-hybridge-route"] == "local"
        parsed = whole.parse()
        # The base test model runs to the limit: OpenAI reports that as incomplete.
        assert parsed.status == "incomplete" and parsed.incomplete_details.reason == "max_output_tokens"
        assert parsed.output_text and parsed.usage.output_tokens == 8
        events = list(client.responses.create(model="auto", input="Say hi", max_output_tokens=8, stream=True))
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        final = events[-1]
        assert final.type == "response.incomplete" and final.response.output[0].content[0].text == text
        assert text and final.response.usage.output_tokens == 8
        rows = records.wait(2)
        assert [(r.api, r.route, r.provider) for r in rows] == [("responses", "local", "llamacpp")] * 2


def test_models_in_anthropics_shape_when_asked_with_anthropic_version(hybridge: RouterService) -> None:
    url = f"{hybridge.status().base_url}/models"
    anthropic_shape = httpx.get(url, headers={"anthropic-version": "2023-06-01"}).json()
    assert anthropic_shape["has_more"] is False and anthropic_shape["first_id"] == "auto"
    first = anthropic_shape["data"][0]
    assert first["type"] == "model" and first["id"] == "auto" and first["display_name"] and first["created_at"]
    assert [m["id"] for m in anthropic_shape["data"]] == [m["id"] for m in httpx.get(url).json()["data"]]
    assert anthropic_shape["last_id"] == anthropic_shape["data"][-1]["id"]
