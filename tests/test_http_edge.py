"""The HTTP edge: JSON routes in-process, failure paths over real sockets, and the headless CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import tomli_w
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from router_core.runtime import Runtime
from router_core.server.app import create_app
from tests.support.cli import HybridgeProcess
from tests.support.servers import make_settings, run_hybridge, serve_app

CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def ollama_tags(request: httpx.Request) -> httpx.Response:
    """Ollama's documented /api/tags answer, for the in-process model list."""
    assert request.url.path == "/api/tags"
    return httpx.Response(
        200,
        json={
            "models": [
                {
                    "name": "qwen3:30b-a3b",
                    "model": "qwen3:30b-a3b",
                    "modified_at": "2026-11-01T10:00:00Z",
                    "size": 18556700761,
                    "digest": "ab" * 32,
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "qwen3",
                        "families": ["qwen3"],
                        "parameter_size": "30.5B",
                        "quantization_level": "Q4_K_M",
                    },
                }
            ]
        },
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    runtime = Runtime(make_settings({}), transport_factory=lambda: httpx.MockTransport(ollama_tags))
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:11435") as c:
        yield c
    await runtime.aclose()


async def test_health_and_models(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["status"] == "ok"
    data = (await client.get("/v1/models")).json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["auto", "local", "cloud", "ollama/qwen3:30b-a3b"]


@pytest.mark.parametrize(
    ("content", "status", "param"),
    [
        (b"{not json", 400, None),
        (b'"a string"', 400, None),
        (b'{"model": "auto"}', 400, "messages"),
        (b'{"model": "auto", "messages": [{"role": "user", "content": 1}]}', 400, "messages[0].content"),
        (b'{"model": "nobody/knows", "messages": [{"role": "user", "content": "x"}]}', 404, "model"),
        (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}', 404, "model"),
    ],
)
async def test_bad_requests_get_openai_shaped_errors(
    client: httpx.AsyncClient, content: bytes, status: int, param: str | None
) -> None:
    response = await client.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and error["type"] and error["request_id"].startswith("req_")
    assert error["param"] == param
    assert response.headers["x-request-id"] == error["request_id"]


async def test_cloud_without_a_cloud_provider_is_503(client: httpx.AsyncClient) -> None:
    body = {"model": "cloud", "messages": [{"role": "user", "content": "x"}]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "no cloud provider configured (set routing.cloud_model)"


async def test_unknown_paths_and_methods_are_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = await client.get("/v1/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()


async def test_oversized_bodies_are_413() -> None:
    runtime = Runtime(make_settings({"server": {"max_body_bytes": 2048}}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://127.0.0.1"
    ) as c:
        body = {"model": "auto", "messages": [{"role": "user", "content": "x" * 4096}]}
        response = await c.post("/v1/chat/completions", json=body)
    assert response.status_code == 413
    assert "larger than 2048 bytes" in response.json()["error"]["message"]


# --- failure paths over real sockets -------------------------------------------------


async def flaky_upstream(request: Request) -> Response:
    """An OpenAI-compatible server (OpenAI's chat-completions wire format) that fails on cue."""
    body = orjson.loads(await request.body())
    if body["model"] == "fails-first":
        return JSONResponse({"error": {"message": "engine crashed", "type": "server_error", "code": None}}, 500)

    async def two_chunks_then_die() -> AsyncIterator[bytes]:
        for text in ("Hel", "lo"):
            chunk = {**CHUNK, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        raise ConnectionResetError("upstream went away")  # uvicorn drops the connection

    return StreamingResponse(two_chunks_then_die(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def flaky_hybridge() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/chat/completions", flaky_upstream, methods=["POST"])])
    with serve_app(app) as url:
        settings = make_settings(
            {
                "routing": {"local_model": "flaky/dies-midway"},
                "providers": {"flaky": {"kind": "openai-local", "base_url": f"{url}/v1"}},
            }
        )
        with run_hybridge(settings) as service:
            yield service.status().base_url


def test_failure_before_the_first_byte_is_an_error_response(flaky_hybridge: str) -> None:
    body = {"model": "flaky/fails-first", "messages": [{"role": "user", "content": "x"}], "stream": True}
    response = httpx.post(f"{flaky_hybridge}/chat/completions", json=body, timeout=10)
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "flaky: engine crashed"
    assert response.headers["x-hybridge-model"] == "flaky/fails-first"


def test_failure_after_the_first_byte_ends_with_an_error_event_not_done(flaky_hybridge: str) -> None:
    body = {"model": "local", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with httpx.stream("POST", f"{flaky_hybridge}/chat/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert "data: [DONE]" not in lines
    contents = [orjson.loads(line[6:]) for line in lines]
    assert [c["choices"][0]["delta"]["content"] for c in contents[:2]] == ["Hel", "lo"]
    assert contents[-1]["error"]["code"] == "connect"
    assert "usage" not in contents[-1]


# --- the headless command ------------------------------------------------------------


def test_router_core_never_imports_qt() -> None:
    code = (
        "import sys, router_core.cli, router_core.service, router_core.server.app; "
        "import router_core.commands.serve; router_core.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_hybridge_serve_streams_with_route_headers(tmp_path: Path, flaky_hybridge: str) -> None:
    """`hybridge serve` in a subprocess, read with a plain streaming HTTP client (like curl -N)."""
    config = tmp_path / "config.toml"
    upstream = flaky_hybridge.rsplit(":", 1)[0]  # any loopback host; the route is local
    config.write_text(
        tomli_w.dumps({"server": {"port": 1}, "providers": {"ollama": {"kind": "ollama", "base_url": f"{upstream}:9"}}})
    )
    with HybridgeProcess(config) as hybridge:
        assert hybridge.base_url.startswith("http://127.0.0.1:") and not hybridge.base_url.endswith(":1/v1")
        health = httpx.get(hybridge.base_url.removesuffix("/v1") + "/health", timeout=5)
        assert health.json()["status"] == "ok"
        body = {"model": "auto", "messages": [{"role": "user", "content": "x"}], "stream": True}
        response = httpx.post(f"{hybridge.base_url}/chat/completions", json=body, timeout=10)
    # Nothing listens on port 9: a clean 502 naming the provider, with the route headers.
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "ollama: cannot connect to the upstream server"
    assert response.headers["x-hybridge-route"] == "local"
    assert response.headers["x-hybridge-model"] == "ollama/qwen3:30b-a3b"


def test_hybridge_serve_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """A service manager's SIGTERM: exit 0 after the ledger is flushed and closed (no WAL left)."""
    import os
    import signal

    config = tmp_path / "config.toml"
    config.write_text(tomli_w.dumps({"providers": {"ollama": {"kind": "ollama", "base_url": "http://127.0.0.1:9"}}}))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    with HybridgeProcess(config, env=env) as hybridge:
        assert hybridge.process is not None
        ledger = next((tmp_path / "data").rglob("*.sqlite3"))
        assert httpx.get(hybridge.base_url.removesuffix("/v1") + "/health", timeout=5).status_code == 200
        code, _, stderr = hybridge.stop(signal.SIGTERM)
    assert code == 0
    assert "Traceback" not in stderr
    assert not ledger.with_name(ledger.name + "-wal").exists()
