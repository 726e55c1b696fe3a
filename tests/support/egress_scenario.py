"""The privacy scenario, run inside a fresh network + mount namespace where leaks are visible.

tests/test_egress_namespace.py starts this module under `unshare --net --mount` (as a
mapped root user). In that namespace nothing outside exists; the "cloud" is real sockets
on addresses that are not loopback, owned by this process alone:

- 10.99.0.1 the cloud canary: counts every TCP connection, relays it to the fake OpenAI
  cloud (so a leak gets a real answer), reached by the `cloud` provider and by the same
  address spelled as a number (`174260225`) and as `::ffff:10.99.0.1`;
- 10.99.0.2 ollama.com's canary: where the Ollama-API test server relays its cloud model
  (as Ollama does, docs.ollama.com/cloud);
- 10.99.0.3 a proxy canary that HTTP(S)_PROXY / ALL_PROXY point to;
- 10.99.0.53 a nameserver canary (resolv.conf is bind-mounted to it): `cloud.example`
  would be looked up there.

Hybridge runs in-process with the Ollama-API test engine in canned mode as its local model
(what the local model says does not matter here: where each request went does). The same requests run with privacy on, off (switched live through
/hybridge/privacy), and on again; each step records what reached each canary. With privacy
off the cloud canaries are reached, so a guard that did nothing would be seen. Prints one
JSON object on the last line of stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import keyring
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from router_core.privacy.egress import EgressGuard, PrivacyBlocked
from router_core.privacy.state import PrivacyState
from router_core.routing.plan import Candidate, RoutePlan
from router_core.runtime import Runtime
from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud
from tests.support.canary import DnsCanary, TcpCanary
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import ThreadedServer, make_settings, run_hybridge

CLOUD_IP, OLLAMA_COM_IP, PROXY_IP, DNS_IP = "10.99.0.1", "10.99.0.2", "10.99.0.3", "10.99.0.53"
CLOUD_AS_NUMBER = str(int(ipaddress.IPv4Address(CLOUD_IP)))  # 174260225
LOCAL_MODEL = "gemma3:270m"
OLLAMA_CLOUD_MODEL = "gpt-oss:120b-cloud"
SETTLE_S = 0.2  # lets a connection that was opened be counted before we read the counters


def setup_namespace() -> None:
    """Loopback up, canary addresses on it, DNS pointed at the canary nameserver."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for ip in (CLOUD_IP, OLLAMA_COM_IP, PROXY_IP, DNS_IP):
        subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"], check=True)
    etc = Path(tempfile.mkdtemp(prefix="egress-etc-"))
    files = {
        "/etc/resolv.conf": f"nameserver {DNS_IP}\noptions timeout:1 attempts:1\n",
        "/etc/nsswitch.conf": "hosts: files dns\n",
        "/etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
    }
    for target, text in files.items():
        source = etc / Path(target).name
        source.write_text(text)
        subprocess.run(["mount", "--bind", str(source), target], check=True)


class OllamaCloudRelay:
    """Ollama's behaviour for a cloud model: the local server sends the chat on to the
    model's remote host (docs.ollama.com/cloud). Wraps the Ollama-API test server."""

    def __init__(self, fake: FakeOllama) -> None:
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/chat":
            await self.fake.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        model = self.fake.state.models.get(str(orjson.loads(body).get("model")))
        if model is not None and model.remote_host:
            try:
                async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
                    upstream = await client.post(f"{model.remote_host}/api/chat", content=body)
                response = Response(upstream.content, status_code=upstream.status_code)
            except httpx.HTTPError:
                response = Response(b'{"error": "cloud model unavailable"}', status_code=502)
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.fake.app(scope, replay, send)


def redirector(target: str) -> Starlette:
    """A local OpenAI-compatible server that answers every call with a 307 to `target`
    (RFC 9110 §15.4.8: the client repeats the same request, body included, there)."""

    async def redirect(request: Request) -> Response:
        return Response(status_code=307, headers={"location": f"{target}{request.url.path}"})

    return Starlette(routes=[Route("/v1/{path:path}", redirect, methods=["GET", "POST"])])


def chat(model: str, *, stream: bool = False, text: str = "Say hi") -> dict[str, Any]:
    return {"model": model, "max_tokens": 2, "stream": stream, "messages": [{"role": "user", "content": text}]}


STEPS: list[tuple[str, str, str, dict[str, Any], dict[str, str]]] = [
    ("flagged: model cloud", "POST", "/v1/chat/completions", chat("cloud"), {}),
    ("flagged: model cloud, streamed", "POST", "/v1/chat/completions", chat("cloud", stream=True), {}),
    ("flagged: heavy tag header", "POST", "/v1/chat/completions", chat("auto"), {"x-hybridge-tags": "auth"}),
    ("flagged: inline #cloud marker", "POST", "/v1/chat/completions", chat("auto", text="#cloud Say hi"), {}),
    ("named: IPv4-mapped IPv6 cloud", "POST", "/v1/chat/completions", chat("cloudv6/gpt-4.1"), {}),
    ("named: cloud by DNS name", "POST", "/v1/chat/completions", chat("cloudname/gpt-4.1"), {}),
    ("ollama cloud model", "POST", "/v1/chat/completions", chat(f"ollama/{OLLAMA_CLOUD_MODEL}"), {}),
    ("local server redirects to the cloud", "POST", "/v1/chat/completions", chat("redirector/m"), {}),
    ("model discovery", "GET", "/v1/models", {}, {}),
    ("privacy status", "GET", "/hybridge/privacy", {}, {}),
    ("policy bypassed: fallbacks to the cloud", "POST", "/v1/chat/completions", chat("auto"), {}),
    ("policy bypassed: address as a number", "POST", "/v1/chat/completions", chat("auto"), {}),
    ("policy bypassed: IPv4-mapped IPv6", "POST", "/v1/chat/completions", chat("auto"), {}),
    ("policy bypassed: DNS name", "POST", "/v1/chat/completions", chat("auto"), {}),
    ("policy bypassed: Ollama cloud model", "POST", "/v1/chat/completions", chat("auto"), {}),
]


def _bypass(*candidates: tuple[str, str, str]) -> RoutePlan:
    return RoutePlan(tuple(Candidate(p, m, "local" if r == "local" else "cloud", r) for p, m, r in candidates))


# What a buggy routing policy could produce, so only the egress guard stands in the way:
# a dead local model then every cloud, and each way of spelling the cloud on its own.
BYPASS_PLANS = {
    "policy bypassed: fallbacks to the cloud": _bypass(
        ("deadlocal", "m", "local"),
        ("cloud", "gpt-4.1", "cloud"),
        ("cloudnum", "gpt-4.1", "cloud"),
        ("cloudv6", "gpt-4.1", "cloud"),
        ("cloudname", "gpt-4.1", "cloud"),
        ("ollama", OLLAMA_CLOUD_MODEL, "local"),
    ),
    "policy bypassed: address as a number": _bypass(("cloudnum", "gpt-4.1", "cloud")),
    "policy bypassed: IPv4-mapped IPv6": _bypass(("cloudv6", "gpt-4.1", "cloud")),
    "policy bypassed: DNS name": _bypass(("cloudname", "gpt-4.1", "cloud")),
    "policy bypassed: Ollama cloud model": _bypass(("ollama", OLLAMA_CLOUD_MODEL, "local")),
}


class Canaries:
    """The canaries, read together. `cloud_requests` counts chats the fake cloud answered
    (a kept-alive connection carries several, so connections alone undercount)."""

    def __init__(self, cloud: FakeOpenAICloud, cloud_backend: int) -> None:
        self.fake_cloud = cloud
        self.cloud_seen = 0
        self.cloud = TcpCanary(CLOUD_IP, forward_to=("127.0.0.1", cloud_backend))
        self.ollama_com = TcpCanary(OLLAMA_COM_IP)
        self.proxy = TcpCanary(PROXY_IP)
        self.dns = DnsCanary(DNS_IP)

    def reset(self, settle: bool = True) -> dict[str, Any]:
        if settle:
            time.sleep(SETTLE_S)
        requests = len(self.fake_cloud.state.requests) - self.cloud_seen
        self.cloud_seen += requests
        return {
            "cloud": self.cloud.reset(),
            "cloud_requests": requests,
            "ollama_com": self.ollama_com.reset(),
            "proxy": self.proxy.reset(),
            "dns": self.dns.reset(),
        }


def run_steps(base: str, runtime: Runtime, canaries: Canaries) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    real_plan = runtime.plan
    with httpx.Client(base_url=base, trust_env=False, timeout=300) as client:
        for name, method, path, body, headers in STEPS:
            canaries.reset(settle=False)  # the previous step settled already
            bypass = BYPASS_PLANS.get(name)
            if bypass is not None:

                async def bypassed(request: Any, *, dry_run: bool = False, plan: Any = bypass) -> Any:
                    return plan

                runtime.plan = bypassed  # type: ignore[method-assign]
            try:
                response = client.request(method, path, json=body or None, headers=headers)
            finally:
                runtime.plan = real_plan  # type: ignore[method-assign]
            seen[name] = {
                "status": response.status_code,
                **canaries.reset(),
                "kept_local": response.headers.get("x-hybridge-privacy") == "kept-local",
                "model": response.headers.get("x-hybridge-model", ""),
                "reason": response.headers.get("x-hybridge-reason", ""),
                "fallbacks": response.headers.get("x-hybridge-fallbacks", ""),
            }
    return seen


def controls(canaries: Canaries, ollama_url: str, redirect_url: str) -> dict[str, Any]:
    """Show each canary is reachable, so zero counts above mean something."""
    out: dict[str, Any] = {}
    canaries.reset()
    # Proxy variables divert even loopback calls of a client that reads them.
    with httpx.Client(trust_env=True, timeout=5) as client, contextlib.suppress(httpx.HTTPError):
        client.get(f"{ollama_url}/api/version")
    out["proxy variables are honoured by a trust_env client"] = canaries.reset()
    with httpx.Client(trust_env=False, follow_redirects=True, timeout=5) as client:
        client.post(f"{redirect_url}/v1/chat/completions", json=chat("m"))
    out["the redirect reaches the cloud when followed"] = canaries.reset()
    out["guarded client following redirects"] = _guarded_follow(redirect_url) | canaries.reset()
    with contextlib.suppress(OSError):
        socket.getaddrinfo("cloud.example", 80)
    out["a DNS lookup reaches the canary nameserver"] = canaries.reset()
    return out


def _guarded_follow(redirect_url: str) -> dict[str, Any]:
    """Even a client that follows redirects stops at the guard in privacy mode."""

    async def go() -> str:
        transport = EgressGuard(httpx.AsyncHTTPTransport(), PrivacyState(enabled=True))
        async with httpx.AsyncClient(transport=transport, follow_redirects=True, trust_env=False) as client:
            try:
                await client.post(f"{redirect_url}/v1/chat/completions", json=chat("m"))
            except PrivacyBlocked:
                return "refused"
        return "followed"

    return {"outcome": asyncio.run(go())}


def main() -> None:
    setup_namespace()
    keyring.set_keyring(MemoryKeyring())
    keyring.set_password("hybridge", "cloud", API_KEY)

    fake_ollama = FakeOllama(
        canned="Answered here, on this machine.",
        models=[
            FakeModel(LOCAL_MODEL, loaded_vram=0),
            FakeModel(OLLAMA_CLOUD_MODEL, remote_host="PENDING"),
        ],
    )
    fake_cloud = FakeOpenAICloud()
    cloud = ThreadedServer(fake_cloud.app).start()
    canaries = Canaries(fake_cloud, cloud.port)
    fake_ollama.state.models[OLLAMA_CLOUD_MODEL].remote_host = canaries.ollama_com.url
    ollama = ThreadedServer(OllamaCloudRelay(fake_ollama)).start()
    redirect = ThreadedServer(redirector(canaries.cloud.url)).start()
    port = canaries.cloud.port
    proxy = canaries.proxy.url
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        os.environ[var] = proxy
    os.environ.pop("NO_PROXY", None)
    os.environ.pop("no_proxy", None)

    cloud_conf = {"kind": "openai", "api_key": "keyring:cloud"}
    settings = make_settings(
        {
            "routing": {
                "local_model": f"ollama/{LOCAL_MODEL}",
                "cloud_model": "cloud/gpt-4.1",
                "heavy_model": "cloudnum/gpt-4.1",
                "fallback_chain": [f"ollama/{LOCAL_MODEL}", "cloudname/gpt-4.1"],
            },
            "providers": {
                "ollama": {"kind": "ollama", "base_url": ollama.url},
                "cloud": {**cloud_conf, "base_url": f"http://{CLOUD_IP}:{port}/v1"},
                "cloudnum": {**cloud_conf, "base_url": f"http://{CLOUD_AS_NUMBER}:{port}/v1"},
                "cloudv6": {**cloud_conf, "base_url": f"http://[::ffff:{CLOUD_IP}]:{port}/v1"},
                "cloudname": {**cloud_conf, "base_url": f"http://cloud.example:{port}/v1"},
                "redirector": {"kind": "openai-local", "base_url": f"{redirect.url}/v1"},
                "deadlocal": {"kind": "openai-local", "base_url": "http://127.0.0.1:9/v1"},
            },
            "privacy": {"enabled": True},
        }
    )
    result: dict[str, Any] = {}
    config = Path(tempfile.mkdtemp(prefix="egress-config-")) / "config.toml"
    try:
        with run_hybridge(settings) as service:
            assert service.runtime is not None
            runtime = service.runtime
            runtime.config_path = config
            base = service.status().base_url.removesuffix("/v1")
            canaries.reset()
            result["on"] = run_steps(base, runtime, canaries)
            result["on: whole phase, idle included"] = canaries.reset()
            with httpx.Client(base_url=base, trust_env=False) as client:
                assert client.post("/hybridge/privacy", json={"enabled": False}).json()["enabled"] is False
            result["off"] = run_steps(base, runtime, canaries)
            with httpx.Client(base_url=base, trust_env=False) as client:
                assert client.post("/hybridge/privacy", json={"enabled": True}).json()["enabled"] is True
            canaries.reset()
            result["on again"] = run_steps(base, runtime, canaries)
            result["on again: whole phase, idle included"] = canaries.reset()
        result["controls"] = controls(canaries, ollama.url, redirect.url)
    finally:
        for server in (ollama, redirect, cloud):
            server.stop()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
