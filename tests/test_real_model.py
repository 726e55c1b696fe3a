"""Hybridge in front of the real local model, over real sockets.

Path: client → Hybridge (uvicorn, port 0) → Ollama-API test server → llama-server (Gemma 3
270M), and client → Hybridge → llama-server as an OpenAI-compatible local provider.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest

from router_core.service import RouterService
from tests.conftest import LOCAL_MODEL, RunningFakeOllama, local_settings
from tests.support.fake_ollama import full_name
from tests.support.llama import LlamaServer
from tests.support.servers import run_hybridge

pytestmark = pytest.mark.real_model
GREEDY = {"temperature": 0, "seed": 7}
PROMPT = [{"role": "user", "content": "Write a short poem about routers."}]


@pytest.fixture(scope="module")
def hybridge(fake_ollama: RunningFakeOllama, llama_server: LlamaServer) -> Iterator[RouterService]:
    with run_hybridge(local_settings(fake_ollama.url, llama_server.url)) as service:
        yield service


def sse_events(lines: Iterator[str]) -> list[dict[str, object]]:
    events = []
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(orjson.loads(line[6:]))
    return events


def direct_text(llama: LlamaServer, max_tokens: int) -> str:
    body = {"model": llama.model, "messages": PROMPT, "max_tokens": max_tokens, **GREEDY}
    return str(
        httpx.post(f"{llama.url}/v1/chat/completions", json=body, timeout=60).json()["choices"][0]["message"]["content"]
    )


def test_stream_through_ollama_matches_the_model_and_ends_with_usage(
    hybridge: RouterService, llama_server: LlamaServer, fake_ollama: RunningFakeOllama
) -> None:
    body = {"model": "auto", "messages": PROMPT, "max_tokens": 24, "stream": True, **GREEDY}
    was_loaded = full_name(LOCAL_MODEL) in fake_ollama.state.runners
    loads = len(fake_ollama.state.loads)
    with httpx.stream("POST", f"{hybridge.status().base_url}/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-hybridge-route"] == "local"
        assert response.headers["x-hybridge-model"] == f"ollama/{LOCAL_MODEL}"
        assert response.headers["x-hybridge-reason"]
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = sse_events(iter(lines))
    text = "".join(str(c.get("delta", {}).get("content") or "") for e in events for c in e["choices"])  # type: ignore[union-attr,attr-defined]
    assert text == direct_text(llama_server, 24)
    final = events[-1]
    assert final["choices"] == []
    usage = final["usage"]
    assert usage["completion_tokens"] == 24  # type: ignore[index]
    assert usage["prompt_tokens"] > 0  # type: ignore[index,operator]
    assert events[-2]["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    # Issue 14: one context per model. A loaded runner that holds the prompt and the answer is
    # reused as it is (its num_ctx sent again: no reload, whatever size an earlier test or
    # `ollama run` loaded it with); otherwise the planned context is loaded, once.
    sent = fake_ollama.state.requests[-1]
    runner = fake_ollama.state.runners[full_name(LOCAL_MODEL)]
    assert sent["options"]["num_ctx"] == runner.options["num_ctx"]
    assert usage["prompt_tokens"] + 24 <= sent["options"]["num_ctx"]  # type: ignore[index,operator]
    assert len(fake_ollama.state.loads) == loads + (0 if was_loaded else 1)
    assert sent["options"]["num_predict"] == 24


def test_official_openai_client_non_streaming_and_streaming(hybridge: RouterService) -> None:
    client = openai.OpenAI(base_url=hybridge.status().base_url, api_key="unused")
    whole = client.chat.completions.create(model="local", messages=PROMPT, max_tokens=12, **GREEDY)  # type: ignore[arg-type]
    assert whole.choices[0].message.content
    assert whole.usage is not None and whole.usage.completion_tokens == 12
    chunks = list(
        client.chat.completions.create(
            model="local",
            messages=PROMPT,
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
            **GREEDY,  # type: ignore[arg-type]
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12


def test_openai_compatible_local_provider_passes_chunks_through(
    hybridge: RouterService, llama_server: LlamaServer
) -> None:
    body = {"model": f"llamacpp/{llama_server.model}", "messages": PROMPT, "max_tokens": 16, "stream": True, **GREEDY}
    with httpx.stream("POST", f"{hybridge.status().base_url}/chat/completions", json=body, timeout=60) as response:
        assert response.headers["x-hybridge-model"] == f"llamacpp/{llama_server.model}"
        events = sse_events(response.iter_lines())
    text = "".join(str(c["delta"].get("content") or "") for e in events for c in e["choices"])  # type: ignore[index,union-attr,attr-defined]
    assert text == direct_text(llama_server, 16)
    assert events[-1]["usage"]["completion_tokens"] == 16  # type: ignore[index]


def test_models_lists_virtual_then_concrete(hybridge: RouterService, llama_server: LlamaServer) -> None:
    ids = [m["id"] for m in httpx.get(f"{hybridge.status().base_url}/models").json()["data"]]
    assert ids[:3] == ["auto", "local", "cloud"]
    assert f"ollama/{LOCAL_MODEL}" in ids and f"llamacpp/{llama_server.model}" in ids


def wait_until_idle(llama: LlamaServer, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not llama.busy():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("model", [f"ollama/{LOCAL_MODEL}", "llamacpp/gemma3-270m"])
def test_client_disconnect_stops_the_upstream_generation(
    hybridge: RouterService, llama_server: LlamaServer, fake_ollama: RunningFakeOllama, model: str
) -> None:
    cancelled_before = fake_ollama.state.cancelled
    body = {"model": model, "messages": PROMPT, "max_tokens": 4000, "stream": True}
    with httpx.stream("POST", f"{hybridge.status().base_url}/chat/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: ") for line in got)
        # The Ollama test engine runs the model in its own llama-server (one runner per model,
        # as Ollama's scheduler does); the OpenAI-compatible provider talks to the shared one.
        server = llama_server
        if model.startswith("ollama/"):
            runner = fake_ollama.state.runners[full_name(LOCAL_MODEL)].server
            assert runner is not None
            server = runner
        assert server.busy()
    # 4,000 tokens at ~35 tok/s would keep the slot busy for about two minutes.
    assert wait_until_idle(server, 5), "llama-server kept generating after the client left"
    predicted = server.metric("tokens_predicted_total")
    time.sleep(1)
    assert server.metric("tokens_predicted_total") == predicted
    if model.startswith("ollama/"):
        assert fake_ollama.state.cancelled == cancelled_before + 1
