"""The Ollama front door with the official `ollama` Python client over real sockets:
list, show, chat and generate (whole and streamed) answered by the real local model behind
the Ollama-API test engine, and an Ollama-native streaming tool call (scripted by the fake
OpenAI cloud, since the test model makes no tool calls)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from router_core.service import RouterService
from tests.conftest import LOCAL_MODEL
from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud, Reply
from tests.support.clouds import Records, fake_openai_cloud
from tests.support.servers import make_settings, run_hybridge

pytestmark = [pytest.mark.real_model]


@pytest.fixture
def front_door(fake_ollama: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RouterService, FakeOpenAICloud]]:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with fake_openai_cloud() as (cloud, cloud_url):
        settings = make_settings(
            {
                "routing": {"local_model": f"ollama/{LOCAL_MODEL}", "cloud_model": "openai/gpt-4.1"},
                "providers": {
                    "ollama": {"kind": "ollama", "base_url": fake_ollama.url},
                    "openai": {"base_url": f"{cloud_url}/v1"},
                },
            }
        )
        with run_hybridge(settings) as service:
            yield service, cloud


def client_for(service: RouterService) -> ollama.Client:
    return ollama.Client(host=service.status().base_url.removesuffix("/v1"))


def test_list_show_version_and_refused_management(front_door: tuple[RouterService, FakeOpenAICloud]) -> None:
    service, _ = front_door
    client = client_for(service)
    names = [m.model for m in client.list().models]
    assert names[:3] == ["auto", "local", "cloud"] and LOCAL_MODEL in names
    shown = client.show("auto")
    assert "completion" in (shown.capabilities or []) and shown.modelinfo
    root = service.status().base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/api/version").json()["version"]
    with pytest.raises(ollama.ResponseError) as caught:
        client.pull("llama3")
    assert caught.value.status_code == 403 and "does not manage models" in caught.value.error
    with pytest.raises(ollama.ResponseError) as missing:
        client.show("nonexistent")
    assert missing.value.status_code == 404


def test_chat_and_generate_from_the_local_model(front_door: tuple[RouterService, FakeOpenAICloud]) -> None:
    service, _ = front_door
    records = Records(service)
    client = client_for(service)
    whole = client.chat(model="auto", messages=[{"role": "user", "content": "hi"}], options={"num_predict": 8})
    assert whole.done and whole.message.content and whole.eval_count == 8 and whole.prompt_eval_count
    assert whole.done_reason == "length" and whole.total_duration and whole.total_duration > 0
    parts = list(
        client.chat(
            model="local", messages=[{"role": "user", "content": "hi"}], stream=True, options={"num_predict": 8}
        )
    )
    assert parts[-1].done and parts[-1].eval_count == 8 and all(not p.done for p in parts[:-1])
    assert "".join(p.message.content or "" for p in parts)
    generated = client.generate(model=LOCAL_MODEL, prompt="Once upon", options={"num_predict": 6})
    assert generated.done and generated.response and generated.eval_count == 6
    streamed = list(client.generate(model="auto", prompt="Once upon", stream=True, options={"num_predict": 6}))
    assert streamed[-1].done and "".join(s.response for s in streamed)
    rows = records.wait(4)
    assert [(r.api, r.route) for r in rows] == [("ollama", "local")] * 4
    assert rows[2].requested_model == LOCAL_MODEL and rows[2].model == LOCAL_MODEL


def test_streaming_tool_call_in_ollamas_shape(front_door: tuple[RouterService, FakeOpenAICloud]) -> None:
    service, cloud = front_door
    cloud.state.script = [
        Reply(text="", tool_calls=[{"id": "c1", "name": "get_weather", "arguments": {"city": "Oslo"}}])
    ]
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    parts = list(
        client_for(service).chat(
            model="cloud", messages=[{"role": "user", "content": "Oslo?"}], tools=[tool], stream=True
        )
    )
    calls = [c for p in parts for c in (p.message.tool_calls or [])]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert parts[-1].done
    # The tool's answer goes back as an Ollama `tool` message.
    cloud.state.script = [Reply(text="Sunny.")]
    answer = client_for(service).chat(
        model="cloud",
        tools=[tool],
        messages=[
            {"role": "user", "content": "Oslo?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
            },
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        ],
    )
    assert answer.message.content == "Sunny."
    sent = cloud.state.requests[-1][1]["messages"]
    assert sent[2]["role"] == "tool" and sent[2]["content"] == "sunny"
