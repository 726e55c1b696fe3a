"""The loopback server against the attacks that hurt Ollama and LiteLLM, over real sockets.

One test per attack: a rebinding Host, a web page's Origin, a CORS preflight, a missing or
wrong token, oversized and over-nested bodies, a client naming its own upstream or key.
The local upstream is the Ollama-API test engine in canned mode (no model runs: the edge is
under test, not the answer).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from router_core.errors import SettingsError
from router_core.runtime import Runtime
from router_core.service import RouterService
from router_core.settings import Settings
from tests.conftest import RunningFakeOllama, local_settings
from tests.support.canary import TcpCanary
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import make_settings, run_hybridge

TOKEN = "hbt_" + "t0ken-for-tests-0123456789abcdef"
CHAT = {"model": "local", "max_tokens": 4, "messages": [{"role": "user", "content": "Say hi"}]}


@pytest.fixture(scope="module")
def router(canned_ollama: RunningFakeOllama) -> Iterator[RouterService]:
    with run_hybridge(local_settings(canned_ollama.url)) as service:
        yield service


def root(service: RouterService) -> str:
    return service.status().base_url.removesuffix("/v1")


def client(service: RouterService) -> httpx.Client:
    return httpx.Client(base_url=root(service), trust_env=False, timeout=60)


def raw_request(service: RouterService, head: bytes) -> tuple[int, bytes]:
    """Send hand-written request bytes (httpx always adds a Host); (status, body)."""
    with socket.create_connection(("127.0.0.1", service.status().port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def assert_refused(response: httpx.Response, status: int = 403) -> dict[str, Any]:
    assert response.status_code == status
    assert not [h for h in response.headers if h.startswith("access-control-")]
    body = response.json()
    error = body["error"]
    # OpenAI's shape carries the id inside `error`, Anthropic's beside it.
    request_id = body["request_id"] if body.get("type") == "error" else error["request_id"]
    assert request_id.startswith("req_") and request_id == response.headers["x-request-id"]
    return dict(error)


# --- Host allowlist (DNS rebinding, CVE-2024-28224) ---------------------------------------


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LocalHost", "[::1]"])
def test_loopback_hosts_with_our_port_are_served(router: RouterService, name: str) -> None:
    with client(router) as c:
        response = c.get("/health", headers={"host": f"{name}:{router.status().port}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "127.0.0.1:{other}",
        "localhost",
        "127.0.0.1",
        "",
        "2130706433:{port}",
        "localhost.:{port}",
        "127.0.0.1:{port}@evil.example",
    ],
)
def test_other_hosts_are_refused_before_any_route_runs(router: RouterService, host: str) -> None:
    port = router.status().port
    value = host.format(port=port, other=port + 1)
    runtime = router.runtime
    assert isinstance(runtime, Runtime)
    before = runtime.privacy.enabled
    with client(router) as c:
        error = assert_refused(c.post("/hybridge/privacy", json={"enabled": not before}, headers={"host": value}))
        assert_refused(c.post("/v1/chat/completions", json=CHAT, headers={"host": value}))
    assert "127.0.0.1, [::1] or localhost" in error["message"]
    assert runtime.privacy.enabled == before  # the switch route never ran


def test_missing_or_doubled_host_is_refused(router: RouterService) -> None:
    status, body = raw_request(router, b"GET /health HTTP/1.0\r\n\r\n")
    assert status == 403 and orjson.loads(body)["error"]["request_id"]
    port = str(router.status().port).encode()
    status, _ = raw_request(
        router,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:" + port + b"\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    assert status in (400, 403)


# --- Browsers: Origin, Sec-Fetch-Site, CORS preflights --------------------------------------


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:3000", "null", "file://"])
def test_requests_from_web_pages_are_refused(router: RouterService, origin: str) -> None:
    with client(router) as c:
        error = assert_refused(c.post("/v1/chat/completions", json=CHAT, headers={"origin": origin}))
    assert error["type"] == "permission_error"


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_browser_fetches_without_origin_are_refused(router: RouterService, site: str) -> None:
    """A <script src> / <img> request carries no Origin but does carry Sec-Fetch-Site."""
    with client(router) as c:
        assert_refused(c.get("/v1/models", headers={"sec-fetch-site": site, "sec-fetch-mode": "no-cors"}))
        assert c.get("/health", headers={"sec-fetch-site": "none"}).status_code == 200  # typed in the address bar


def test_preflights_are_refused_and_no_cors_header_is_ever_sent(router: RouterService) -> None:
    headers = {
        "origin": "https://evil.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    with client(router) as c:
        assert_refused(c.options("/v1/chat/completions", headers=headers))
        assert_refused(c.options("/v1/chat/completions"))
        served = c.post("/v1/chat/completions", json=CHAT)
    assert served.status_code == 200
    assert not [h for h in served.headers if h.startswith("access-control-")]


def test_anthropic_clients_get_refusals_in_their_shape(router: RouterService) -> None:
    with client(router) as c:
        response = c.post("/v1/messages", json={}, headers={"origin": "https://evil.example"})
    assert response.status_code == 403
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "permission_error" and body["request_id"]


# --- Bearer token ---------------------------------------------------------------------------


@pytest.fixture
def token_router(canned_ollama: RunningFakeOllama, memory_keyring: MemoryKeyring) -> Iterator[RouterService]:
    memory_keyring.set_password("hybridge", "server-token", TOKEN)
    with run_hybridge(local_settings(canned_ollama.url, server={"token": "keyring:server-token"})) as service:
        yield service


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": TOKEN},
        {"x-api-key": TOKEN[:-1]},
        {"authorization": f"Basic {TOKEN}"},
    ],
)
def test_without_the_token_nothing_is_served(token_router: RouterService, headers: dict[str, str]) -> None:
    with client(token_router) as c:
        response = c.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert_refused(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert_refused(c.get("/v1/models", headers=headers), 401)


@pytest.mark.parametrize("headers", [{"authorization": f"Bearer {TOKEN}"}, {"x-api-key": TOKEN}])
def test_the_token_is_accepted_as_bearer_or_x_api_key(token_router: RouterService, headers: dict[str, str]) -> None:
    with client(token_router) as c:
        assert c.get("/v1/models", headers=headers).status_code == 200
        assert c.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200


def test_a_token_that_cannot_be_read_locks_the_server(canned_ollama: RunningFakeOllama) -> None:
    """`server.token` set but missing from the keyring: refuse everything, never run open."""
    with (
        run_hybridge(local_settings(canned_ollama.url, server={"token": "keyring:server-token"})) as service,
        client(service) as c,
    ):
        for headers in ({}, {"authorization": "Bearer x"}, {"x-api-key": ""}):
            assert_refused(c.get("/v1/models", headers=headers), 401)


def test_binding_beyond_loopback_needs_a_token() -> None:
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(SettingsError, match="needs a token"):
            make_settings({"server": {"host": host}})
        settings: Settings = make_settings({"server": {"host": host, "token": "keyring:server-token"}})
        assert settings.server.host == host
    assert make_settings({"server": {"host": "::1"}}).server.host == "::1"


# --- Bodies -------------------------------------------------------------------------------


def test_oversized_bodies_are_413(canned_ollama: RunningFakeOllama) -> None:
    settings = local_settings(canned_ollama.url, server={"max_body_bytes": 4096})
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    with run_hybridge(settings) as service, client(service) as c:
        assert_refused(c.post("/v1/chat/completions", json=big), 413)

        def chunks() -> Iterator[bytes]:  # no content-length: counted as it streams
            yield orjson.dumps(big)

        assert_refused(c.post("/v1/chat/completions", content=chunks()), 413)
        assert_refused(c.post("/hybridge/privacy", content=b'{"enabled": true, "x": "' + b"y" * 5000 + b'"}'), 413)


@pytest.mark.parametrize("depth", [65, 300, 5000])
def test_deeply_nested_bodies_are_400(router: RouterService, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    content = (
        '{"model": "local", "messages": [{"role": "user", "content": "x"}], "metadata": ' + nested + "}"
    ).encode()
    with client(router) as c:
        error = assert_refused(c.post("/v1/chat/completions", content=content), 400)
        assert_refused(c.post("/v1/messages", content=content), 400)
    assert "deeper" in error["message"] or "not valid JSON" in error["message"]


@pytest.mark.parametrize("field", ["api_base", "base_url", "baseURL", "api_key", "apiKey", "custom_llm_provider"])
def test_a_client_cannot_name_its_own_upstream_or_key(router: RouterService, field: str) -> None:
    with TcpCanary("127.0.0.1") as canary, client(router) as c:
        body = {**CHAT, field: canary.url + "/v1" if "key" not in field.lower() else "sk-client-key-0123456789"}
        error = assert_refused(c.post("/v1/chat/completions", json=body), 400)
        anthropic = c.post(
            "/v1/messages",
            json={
                "model": "local",
                "max_tokens": 4,
                field: canary.url,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert anthropic.status_code == 400
    assert error["param"] == field
    assert canary.count == 0


def test_upstream_headers_from_clients_are_ignored(router: RouterService, canned_ollama: RunningFakeOllama) -> None:
    """Headers that some gateways honour never pick the upstream, and client keys are never forwarded."""
    with TcpCanary("127.0.0.1") as canary, client(router) as c:
        headers = {
            "x-api-base": canary.url,
            "x-upstream-url": canary.url,
            "x-base-url": canary.url,
            "x-hybridge-upstream": canary.url,
            "authorization": "Bearer sk-client-0123456789abcdef",
            "x-api-key": "sk-ant-client-0123456789",
            "openai-base-url": canary.url,
        }
        response = c.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200
    assert canary.count == 0
    sent = orjson.dumps(canned_ollama.state.requests[-1])
    assert b"sk-client" not in sent and str(canary.port).encode() not in sent


def test_serve_refuses_a_non_loopback_bind_without_a_token(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\nhost = "0.0.0.0"\n')
    done = subprocess.run(
        [sys.executable, "-m", "router_core", "serve", "--port", "0", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "server: host: '0.0.0.0' is not loopback, and binding beyond this machine needs a token" in done.stderr
