"""`/v1/completions`, `/v1/embeddings` and Ollama's `/api/embed` on the local backend only:
real llama-server processes (one with `--embeddings`) behind Hybridge, the official
`openai` and `ollama` clients over real sockets; a cloud model is refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import ollama
import openai
import pytest

from tests.support.clouds import Records
from tests.support.llama import LlamaServer
from tests.support.servers import free_port, make_settings, run_hybridge

pytestmark = [pytest.mark.real_model]


@pytest.fixture(scope="module")
def embedder() -> Iterator[LlamaServer]:
    server = LlamaServer(free_port(), context=2048)
    server.args += ["--embeddings", "--pooling", "mean"]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_completions_and_embeddings_stay_local(
    llama_server: LlamaServer, embedder: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")
    settings = make_settings(
        {
            "routing": {"local_model": f"llamacpp/{llama_server.model}", "cloud_model": "openai/gpt-4.1"},
            "providers": {
                "llamacpp": {"kind": "openai-local", "base_url": f"{llama_server.url}/v1"},
                "embedder": {"kind": "openai-local", "base_url": f"{embedder.url}/v1"},
                "openai": {"base_url": "http://127.0.0.1:9/v1"},
            },
        }
    )
    with run_hybridge(settings) as service:
        records = Records(service)
        client = openai.OpenAI(base_url=service.status().base_url, api_key="unused", max_retries=0)
        completion = client.completions.create(model="auto", prompt="def add(a, b):", max_tokens=6)
        assert completion.choices[0].text and completion.usage and completion.usage.completion_tokens == 6
        streamed = list(client.completions.create(model="local", prompt="x =", max_tokens=4, stream=True))
        assert "".join(c.choices[0].text for c in streamed if c.choices)
        vectors = client.embeddings.create(model=f"embedder/{embedder.model}", input=["one", "two"])
        assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 100
        native = ollama.Client(host=service.status().base_url.removesuffix("/v1")).embed(
            model=f"embedder/{embedder.model}", input="hello"
        )
        assert len(native.embeddings) == 1 and len(native.embeddings[0]) == len(vectors.data[0].embedding)
        with pytest.raises(openai.BadRequestError, match="stay on this machine"):
            client.embeddings.create(model="openai/text-embedding-3-small", input="secret")
        rows = records.wait(4)
    # (The streamed completion's row comes when its last byte is out: in any order.)
    assert sorted((r.route, r.provider, r.outcome, r.streamed) for r in rows) == [
        ("local", "embedder", "ok", False),
        ("local", "embedder", "ok", False),
        ("local", "llamacpp", "ok", False),
        ("local", "llamacpp", "ok", True),
    ]


def test_a_streamed_completion_has_its_row_when_the_client_leaves(llama_server: LlamaServer) -> None:
    # A client may close its connection as soon as it has read `data: [DONE]` (before the
    # upstream's own end), or half-way through: either way the request gets its ledger row.
    settings = make_settings(
        {
            "routing": {"local_model": f"llamacpp/{llama_server.model}"},
            "providers": {"llamacpp": {"kind": "openai-local", "base_url": f"{llama_server.url}/v1"}},
        }
    )
    with run_hybridge(settings) as service:
        records = Records(service)
        url = service.status().base_url + "/completions"
        with httpx.Client(timeout=60) as http:
            body = {"model": "local", "prompt": "x =", "max_tokens": 4, "stream": True}
            with http.stream("POST", url, json=body) as response:
                for line in response.iter_lines():
                    if line == "data: [DONE]":
                        break  # and close, as soon as the answer is whole
            body = {"model": "local", "prompt": "Count to a thousand:", "max_tokens": 400, "stream": True}
            with http.stream("POST", url, json=body) as response:
                next(response.iter_lines())  # one line, then leave
        rows = records.wait(2, timeout=10)
    assert [(r.outcome, r.streamed, r.provider) for r in rows] == [
        ("ok", True, "llamacpp"),
        ("cancelled", True, "llamacpp"),
    ]
    assert rows[1].error == "the client left before the end of the stream"
