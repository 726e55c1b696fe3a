"""Backend pools over real sockets: Hybridge in front of several instances of the Ollama test
engine (tests/support/fake_ollama.py, real llama-server runners) and llama.cpp's own
llama-server started with `--metrics` (tests/support/llama.py).

Each test polls the backends by hand (`service.poll_backends()`, what the background loop
does every `inventory.backends_poll_s`), so what a request sees is what was last read.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from router_core.ledger.schema import connect
from router_core.service import RouterService
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.llama import LlamaServer
from tests.support.servers import ThreadedServer, free_port, make_settings, run_hybridge

pytestmark = [pytest.mark.real_model, pytest.mark.timeout(600)]
MODEL = "gemma3:270m"
POOL = "gemma"


@contextmanager
def engine(*, loaded: bool, host: str = "127.0.0.1") -> Iterator[tuple[FakeOllama, ThreadedServer]]:
    """One Ollama test engine; `loaded`: the model is in memory already (in /api/ps)."""
    fake = FakeOllama(
        models=[FakeModel(MODEL, capabilities=["completion", "tools"], loaded_vram=0 if loaded else None)], threads=1
    )
    server = ThreadedServer(fake.app, host=host).start()
    try:
        yield fake, server
    finally:
        server.stop()
        fake.close()


def settings_for(tmp_path: Path, members: list[tuple[str, str, str]], **extra: Any) -> Any:
    """A pool of `members` (name, kind, url) serving `local`; polled only by hand."""
    providers = {
        name: {"kind": kind, "base_url": url if kind == "ollama" else f"{url}/v1"} for name, kind, url in members
    }
    refs = [f"{name}/{MODEL if kind == 'ollama' else 'gemma3-270m'}" for name, kind, _ in members]
    data: dict[str, Any] = {
        "routing": {"local_model": refs[0], "pools": {POOL: refs}},
        "providers": providers,
        "inventory": {"backends_poll_s": 600},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
    }
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return make_settings(data)


def chat(service: RouterService, session: str, max_tokens: int = 8) -> httpx.Response:
    body = {
        "model": "local",
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": f"Write a note for {session}."}],
    }
    return httpx.post(
        f"{service.status().base_url}/chat/completions", json=body, timeout=300, headers={"x-session-id": session}
    )


def served(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-hybridge-model"].partition("/")[0]


def explain(service: RouterService, session: str) -> dict[str, Any]:
    body = {
        "model": "local",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": f"Write a note for {session}."}],
    }
    answer = httpx.post(
        f"{service.status().base_url.removesuffix('/v1')}/hybridge/explain",
        json=body,
        headers={"x-session-id": session},
        timeout=30,
    )
    pools: list[dict[str, Any]] = answer.json()["backends"]
    return pools[0]


def backends(service: RouterService) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{service.status().base_url.removesuffix('/v1')}/hybridge/backends", timeout=30).json()
    return {b["provider"]: b for b in answer["backends"]}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_backend_that_has_the_model_loaded_serves_with_no_load(tmp_path: Path) -> None:
    with engine(loaded=False) as (cold, cold_server), engine(loaded=True) as (warm, warm_server):
        # The cold engine comes first in the pool's order: only what is loaded decides.
        settings = settings_for(tmp_path, [("cold", "ollama", cold_server.url), ("warm", "ollama", warm_server.url)])
        with run_hybridge(settings) as service:
            service.poll_backends()
            choice = explain(service, "s0")
            assert [b["backend"] for b in choice["order"]] == [f"warm/{MODEL}", f"cold/{MODEL}"]
            assert choice["order"][0]["why"].startswith("has it loaded (context 4,096)")
            assert choice["order"][1]["why"].startswith("would load it")
            responses = [chat(service, f"s{i}") for i in range(3)]
            assert [served(r) for r in responses] == ["warm"] * 3
            assert {r.headers["x-hybridge-pool"] for r in responses} == {POOL}
            assert "x-hybridge-fallbacks" not in responses[0].headers
        assert cold.state.loads == [] and warm.state.loads == []  # 0 loads
        assert cold.state.requests == [] and len(warm.state.requests) == 3
        # The ledger names the backend of each answer: its provider, pool and address.
        conn = connect(tmp_path / "ledger.sqlite3")
        rows = conn.execute("SELECT provider, model, pool, backend FROM requests").fetchall()
        assert [tuple(r) for r in rows] == [("warm", MODEL, POOL, f"127.0.0.1:{warm_server.port}")] * 3


def test_concurrent_requests_spread_by_what_each_backend_is_running(tmp_path: Path) -> None:
    with engine(loaded=True) as (a, a_server), engine(loaded=True) as (b, b_server):
        settings = settings_for(tmp_path, [("a", "ollama", a_server.url), ("b", "ollama", b_server.url)])
        with run_hybridge(settings) as service:
            service.poll_backends()
            results: list[httpx.Response] = []
            lock = threading.Lock()

            def one(session: str) -> None:
                response = chat(service, session, max_tokens=48)
                with lock:
                    results.append(response)

            threads = [threading.Thread(target=one, args=(f"c{i}",)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            spread = sorted(served(r) for r in results)
        # One slot each (Ollama runs one request per model by default): two and two.
        assert spread == ["a", "a", "b", "b"]
        assert len(a.state.requests) == len(b.state.requests) == 2
        assert a.state.loads == [] and b.state.loads == []


def test_a_llama_server_busy_with_others_work_is_passed_over_by_its_own_metrics(
    tmp_path: Path, llama_server: LlamaServer
) -> None:
    with engine(loaded=True) as (_a, a_server):
        settings = settings_for(tmp_path, [("llama", "openai-local", llama_server.url), ("a", "ollama", a_server.url)])
        with run_hybridge(settings) as service:
            service.poll_backends()
            state = backends(service)["llama"]
            assert (state["engine"], state["up"], state["running"], state["slots"]) == ("llama.cpp", True, 0, 1)
            assert served(chat(service, "m0")) == "llama"
            # Someone else's long request, straight to the llama-server (not through Hybridge).
            other = threading.Thread(
                target=lambda: httpx.post(
                    f"{llama_server.url}/v1/chat/completions",
                    timeout=300,
                    json={"messages": [{"role": "user", "content": "Count to a thousand."}], "max_tokens": 400},
                )
            )
            other.start()
            try:
                wait_for(lambda: llama_server.metric("requests_processing") == 1, "the llama-server to be busy")
                service.poll_backends()
                state = backends(service)["llama"]
                assert (state["running"], state["in_flight"], state["busy"]) == (1, 0, 1)
                choice = explain(service, "m1")
                assert choice["order"][1] == {
                    "backend": "llama/gemma3-270m",
                    "why": "has it loaded (context 16,384), 1 busy of 1 slot",
                }
                assert served(chat(service, "m1")) == "a"
            finally:
                other.join()
            service.poll_backends()
            assert backends(service)["llama"]["busy"] == 0
            assert served(chat(service, "m2")) == "llama"


def test_a_session_keeps_to_its_backend(tmp_path: Path) -> None:
    with engine(loaded=True) as (_a, a_server), engine(loaded=True) as (_b, b_server):
        settings = settings_for(tmp_path, [("a", "ollama", a_server.url), ("b", "ollama", b_server.url)])
        with run_hybridge(settings) as service:
            service.poll_backends()
            body = {
                "model": "local",
                "max_tokens": 1000,
                "stream": True,
                "messages": [{"role": "user", "content": "Write a long story."}],
            }
            with httpx.stream(
                "POST",
                f"{service.status().base_url}/chat/completions",
                json=body,
                timeout=300,
                headers={"x-session-id": "long"},
            ) as streaming:
                assert streaming.headers["x-hybridge-model"] == f"a/{MODEL}"
                lines = streaming.iter_lines()  # kept: dropping the iterator would close the stream
                next(lines)  # a is answering it now
                assert served(chat(service, "s1")) == "b"  # a is busy, so the new session goes to b
            wait_for(lambda: backends(service)["a"]["in_flight"] == 0, "a's answer to end")
            # a is idle and first in the pool, but s1's prompt is cached on b.
            assert explain(service, "s1")["order"][0] == {
                "backend": f"b/{MODEL}",
                "why": "this session's backend: has it loaded (context 4,096), 0 busy of 1 slot",
            }
            assert served(chat(service, "s1")) == "b"
            assert served(chat(service, "s2")) == "a"
            assert served(chat(service, "long")) == "a"


def test_a_backend_known_down_costs_no_connect_attempt(tmp_path: Path) -> None:
    dead_port = free_port()  # nothing listens here
    with engine(loaded=True) as (_a, a_server):
        settings = settings_for(
            tmp_path, [("dead", "ollama", f"http://127.0.0.1:{dead_port}"), ("a", "ollama", a_server.url)]
        )
        with run_hybridge(settings) as service:
            service.poll_backends()
            state = backends(service)["dead"]
            assert state["up"] is False and state["last_error"] == f"cannot connect to 127.0.0.1:{dead_port}"
            skipped = explain(service, "k1")["skipped"]
            assert skipped == [
                {
                    "backend": f"dead/{MODEL}",
                    "why": f"down (cannot connect to 127.0.0.1:{dead_port}); "
                    "waits for the background poll to see it up",
                }
            ]
            responses = [chat(service, f"k{i}") for i in range(2)]
            assert [served(r) for r in responses] == ["a", "a"]
            assert all("x-hybridge-fallbacks" not in r.headers for r in responses)


def test_a_backend_that_dies_fails_over_once_then_waits_for_the_probe(tmp_path: Path) -> None:
    with engine(loaded=True) as (d, d_server), engine(loaded=True) as (_a, a_server):
        settings = settings_for(tmp_path, [("d", "ollama", d_server.url), ("a", "ollama", a_server.url)])
        with run_hybridge(settings) as service:
            service.poll_backends()
            assert served(chat(service, "f1")) == "d"
            d_server.stop()
            # The poll has not seen it yet: this request meets the connect failure and fails over.
            second = chat(service, "f2")
            assert served(second) == "a"
            assert second.headers["x-hybridge-fallbacks"] == f"d/{MODEL}: connect"
            # From now on d is skipped without an attempt.
            third = chat(service, "f3")
            assert served(third) == "a" and "x-hybridge-fallbacks" not in third.headers
            state = backends(service)["d"]
            assert state["up"] is False and state["down_reason"].startswith("connect failed at")
            restarted = ThreadedServer(d.app, port=d_server.port).start()
            try:
                # Up again, but it gets no traffic until the background probe has seen it.
                assert served(chat(service, "f4")) == "a"
                service.poll_backends()
                assert backends(service)["d"]["up"] is True
                assert served(chat(service, "f5")) == "d"
            finally:
                restarted.stop()
        assert len(d.state.requests) == 2 and d.state.loads == []


def lan_address() -> str | None:
    """A non-loopback IPv4 address of this machine: a stand-in for a LAN backend's host."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


def test_privacy_mode_uses_a_lan_backend_only_when_it_is_trusted(tmp_path: Path) -> None:
    host = lan_address()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address to stand for a LAN backend")
    with engine(loaded=True, host=host) as (lan, lan_server), engine(loaded=True) as (_a, a_server):
        members = [("lan", "ollama", lan_server.url), ("a", "ollama", a_server.url)]
        with run_hybridge(settings_for(tmp_path, members, privacy={"enabled": True})) as service:
            service.poll_backends()
            choice = explain(service, "p1")
            assert choice["skipped"] == [
                {
                    "backend": f"lan/{MODEL}",
                    "why": f"privacy mode: {host}:{lan_server.port} is not in privacy.trusted_hosts",
                }
            ]
            assert [b["backend"] for b in choice["order"]] == [f"a/{MODEL}"]
            response = chat(service, "p1")
            assert served(response) == "a" and "x-hybridge-fallbacks" not in response.headers
            assert backends(service)["lan"]["last_error"].startswith("not read: privacy mode is on")
        assert lan.state.requests == []
        trusted = settings_for(tmp_path, members, privacy={"enabled": True, "trusted_hosts": [host]})
        with run_hybridge(trusted) as service:
            service.poll_backends()
            assert explain(service, "p2")["skipped"] == []
            assert served(chat(service, "p2")) == "lan"
        assert len(lan.state.requests) == 1


def test_doctor_shows_each_pooled_backend(tmp_path: Path, llama_server: LlamaServer) -> None:
    import subprocess
    import sys

    dead_port = free_port()
    with engine(loaded=True) as (_a, a_server):
        config = tmp_path / "config.toml"
        config.write_text(
            f'[routing]\nlocal_model = "a/{MODEL}"\n'
            f'[routing.pools]\n{POOL} = ["a/{MODEL}", "llama/gemma3-270m", "dead/{MODEL}"]\n'
            f'[providers.a]\nkind = "ollama"\nbase_url = "{a_server.url}"\n'
            f'[providers.llama]\nkind = "openai-local"\nbase_url = "{llama_server.url}/v1"\n'
            f'[providers.dead]\nkind = "ollama"\nbase_url = "http://127.0.0.1:{dead_port}"\n'
        )
        out = subprocess.run(
            [sys.executable, "-m", "router_core", "doctor", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "Traceback" not in out.stderr, out.stderr
    text = out.stdout
    assert "Backend pools" in text
    assert f"up    a (ollama) at 127.0.0.1:{a_server.port} · pool {POOL}" in text
    assert f"loaded: {MODEL} (context 4,096) · busy: not reported by the engine" in text
    assert f"up    llama (llama.cpp) at 127.0.0.1:{llama_server.port} · pool {POOL}" in text
    assert "loaded: gemma3-270m (context 16,384) · 0 running, 0 waiting on 1 slot" in text
    assert (
        f"DOWN  dead (ollama) at 127.0.0.1:{dead_port} · pool {POOL}: cannot connect to 127.0.0.1:{dead_port}" in text
    )


def test_stats_show_tok_per_s_per_backend(tmp_path: Path) -> None:
    from router_core.commands.stats import backends_text

    with engine(loaded=True) as (_a, a_server), engine(loaded=True) as (_b, b_server):
        settings = settings_for(tmp_path, [("a", "ollama", a_server.url), ("b", "ollama", b_server.url)])
        with run_hybridge(settings) as service:
            service.poll_backends()
            body = {
                "model": "local",
                "max_tokens": 48,
                "stream": True,
                "messages": [{"role": "user", "content": "Write a story."}],
            }
            with httpx.stream(
                "POST",
                f"{service.status().base_url}/chat/completions",
                json=body,
                timeout=300,
                headers={"x-session-id": "t0"},
            ) as streaming:
                lines = streaming.iter_lines()
                next(lines)
                assert served(chat(service, "t1", max_tokens=16)) == "b"
                for _ in lines:
                    pass
    conn: sqlite3.Connection = connect(tmp_path / "ledger.sqlite3")
    lines = "\n".join(backends_text(conn, 0.0)).splitlines()
    assert lines[1] == "Local backends" and lines[2].split() == [
        "backend",
        "address",
        "pool",
        "answers",
        "output",
        "tok/s",
        "ttft",
        "s",
        "saved",
        "$",
    ]
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert set(rows) == {"a", "b"}
    for name, server in (("a", a_server), ("b", b_server)):
        assert rows[name][1:4] == [f"127.0.0.1:{server.port}", POOL, "1"]
        assert float(rows[name][5]) > 0  # tok/s, from the engine's own eval_duration


def test_an_overloaded_backend_fails_over_before_the_first_byte_and_cools_down(tmp_path: Path) -> None:
    from tests.fakes.faulty_openai import FaultyOpenAI, overloaded

    busy, spare = FaultyOpenAI("busy"), FaultyOpenAI("spare")
    servers = [ThreadedServer(f.app).start() for f in (busy, spare)]
    try:
        settings = make_settings(
            {
                "routing": {
                    "local_model": "busy/m",
                    "pools": {POOL: ["busy/m", "spare/m"]},
                    "cooldown_after_failures": 1,
                },
                "providers": {
                    name: {"kind": "openai-local", "base_url": f"{server.url}/v1"}
                    for name, server in zip(("busy", "spare"), servers, strict=True)
                },
                "inventory": {"backends_poll_s": 600},
                "ledger": {"enabled": False},
            }
        )
        busy.script = [overloaded()]  # Ollama past OLLAMA_MAX_QUEUE, vLLM or llama.cpp shedding load: 503
        with run_hybridge(settings) as service:
            service.poll_backends()
            assert backends(service)["busy"]["engine"] == "openai"
            first = chat(service, "o1")
            assert served(first) == "spare" and first.headers["x-hybridge-fallbacks"] == "busy/m: overloaded"
            # Cooling down now: tried last, so the next request goes straight to the spare.
            assert explain(service, "o2")["order"][1] == {"backend": "busy/m", "why": "0 busy, cooling down"}
            second = chat(service, "o2")
            assert served(second) == "spare" and "x-hybridge-fallbacks" not in second.headers
        assert len(busy.requests) == 1 and len(spare.requests) == 2
    finally:
        for server in servers:
            server.stop()
