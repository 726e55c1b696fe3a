"""Ollama cloud models under any name, and every refusal in the ledger, over real sockets.

The Ollama stand-in (tests/support/fake_ollama.py) follows ollama/ollama's server:
`/api/tags` and `/api/show` carry `remote_host`/`remote_model` for a model made with
`ollama cp gpt-oss:120b-cloud mybig`, and `GET /api/status` reports the cloud switch.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router_core.inventory.hardware import HardwareInfo, probe_hardware
from router_core.ledger.entry import OLLAMA_CLOUD_NOTE
from router_core.service import RouterService
from tests.conftest import LOCAL_MODEL, local_settings
from tests.fakes.fake_openai_cloud import API_KEY as OPENAI_KEY
from tests.support.clouds import fake_openai_cloud
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.llama import LlamaServer
from tests.support.servers import ThreadedServer, run_hybridge

ALIAS = "mybig"  # `ollama cp gpt-oss:120b-cloud mybig`: a plain name for a cloud model


@pytest.fixture
def ollama(llama_server: LlamaServer) -> Iterator[tuple[FakeOllama, str]]:
    fake = FakeOllama(
        llama_server.url,
        models=[
            FakeModel(LOCAL_MODEL, loaded_vram=0),
            FakeModel(f"{ALIAS}:latest", remote_host="https://ollama.com:443", remote_model="gpt-oss:120b"),
        ],
    )
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


def slow_probe() -> HardwareInfo:
    # The inventory's first read (which also lists /api/tags) waits on the hardware probe:
    # held back here, the first request meets a router that has not listed any model yet.
    time.sleep(8)
    return probe_hardware(5.0)


def rows(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM requests ORDER BY id").fetchall()
    finally:
        conn.close()


def chat(client: httpx.Client, model: str, **headers: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": "Say hi"}]}
    return client.post("/v1/chat/completions", json=body, headers=headers)


def client_of(service: RouterService) -> httpx.Client:
    return httpx.Client(base_url=service.status().base_url.removesuffix("/v1"), trust_env=False, timeout=120)


def test_aliased_ollama_cloud_model_refused_in_privacy_mode_on_the_first_request(
    ollama: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    fake, url = ollama
    ledger = tmp_path / "ledger.sqlite3"
    settings = local_settings(url, privacy={"enabled": True}, ledger={"path": str(ledger)})
    with run_hybridge(settings, hardware_probe=slow_probe, ledger_options={"power": None}) as service:
        assert service.runtime is not None and service.runtime.inventory.snapshot is None
        with client_of(service) as client:
            response = chat(client, f"ollama/{ALIAS}")
            assert service.runtime.inventory.snapshot is None  # learned from /api/show, not the list
        assert service.runtime.ledger is not None and service.runtime.ledger.wait_written(1)
    assert response.status_code == 403, response.text
    assert "Ollama cloud model" in response.json()["error"]["message"]
    assert response.headers.get("x-hybridge-route") != "local"
    assert ALIAS in fake.state.shows
    # The prompt never reached Ollama (which would have relayed it to ollama.com).
    assert fake.state.requests == []
    (row,) = rows(ledger)
    assert (row["outcome"], row["error_kind"], row["route"]) == ("refused", "privacy_refused", "")
    assert "Ollama cloud model" in row["reason"]


def test_aliased_ollama_cloud_model_is_routed_and_priced_as_cloud(
    ollama: tuple[FakeOllama, str], tmp_path: Path
) -> None:
    _, url = ollama
    ledger = tmp_path / "ledger.sqlite3"
    settings = local_settings(url, ledger={"path": str(ledger)})
    with run_hybridge(settings, hardware_probe=slow_probe, ledger_options={"power": None}) as service:
        assert service.runtime is not None
        with client_of(service) as client:
            response = chat(client, f"ollama/{ALIAS}")
            assert response.status_code == 200, response.text
            assert service.runtime.ledger is not None and service.runtime.ledger.wait_written(1)
            stats = client.get("/hybridge/stats").json()
    assert response.headers["x-hybridge-route"] == "cloud"
    assert "Ollama cloud model" in response.headers["x-hybridge-reason"]
    (row,) = rows(ledger)
    assert (row["route"], row["provider"], row["model"], row["outcome"]) == ("cloud", "ollama", ALIAS, "ok")
    # Paid by the Ollama subscription: no $0, no baseline, never savings.
    assert row["price_note"] == OLLAMA_CLOUD_NOTE and row["cost_usd"] is None
    assert row["baseline_cost_usd"] is None and row["savings_usd"] is None
    today = stats["today"]
    assert (today["cloud_requests"], today["local_requests"], today["ollama_cloud_requests"]) == (1, 0, 1)
    assert today["savings_usd"] == 0 and today["unpriced_requests"] == 0


def test_privacy_status_reads_ollamas_cloud_switch(ollama: tuple[FakeOllama, str]) -> None:
    fake, url = ollama
    with run_hybridge(local_settings(url)) as service, client_of(service) as client:
        on = client.get("/hybridge/privacy").json()["ollama"]["ollama"]
        fake.state.cloud_disabled = True
        off = client.get("/hybridge/privacy").json()["ollama"]["ollama"]
        fake.state.status_endpoint = False
        older = client.get("/hybridge/privacy").json()["ollama"]["ollama"]
        # With Ollama's cloud off, /api/show of the alias is refused with 403: still cloud.
        assert service.runtime is not None
        plan_error = client.post(
            "/hybridge/explain",
            json={"model": f"ollama/{ALIAS}", "messages": [{"role": "user", "content": "x"}]},
        ).json()
    assert (on["cloud_disabled"], on["cloud_switch"]) == (
        False,
        "Ollama's cloud is on: its cloud models run on ollama.com",
    )
    assert (off["cloud_disabled"], off["cloud_switch"]) == (True, "Ollama's cloud is off (set by env)")
    assert older["cloud_disabled"] is None and "does not report" in older["cloud_switch"]
    assert plan_error["route"] == "cloud"


def test_every_refusal_kind_has_a_ledger_row(
    ollama: tuple[FakeOllama, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = ollama
    monkeypatch.setenv("HB_TEST_OPENAI_KEY", OPENAI_KEY)
    ledger = tmp_path / "ledger.sqlite3"
    with fake_openai_cloud() as (_, openai_url):
        openai = {"kind": "openai", "base_url": f"{openai_url}/v1", "api_key": "env:HB_TEST_OPENAI_KEY"}
        settings = local_settings(
            url,
            providers={"openai": openai},
            routing={"heavy_model": "openai/gpt-4.1"},
            ledger={"path": str(ledger)},
            # Any cloud spend at all exhausts this cap.
            budget={"daily_usd": 1e-9, "action": "refuse"},
        )
        with run_hybridge(settings, ledger_options={"power": None}) as service, client_of(service) as client:
            runtime = service.runtime
            assert runtime is not None and runtime.ledger is not None
            named = chat(client, "openai/gpt-4.1")  # spends: the budget is now exhausted
            assert named.status_code == 200, named.text
            assert runtime.ledger.wait_written(1) and runtime.budget_state().exhausted
            budget = chat(client, "auto", **{"x-hybridge-tags": "security"})
            unknown = chat(client, "nobody/knows")
            no_cloud = chat(client, "cloud")
            runtime.privacy.update(enabled=True, escalation="refuse")
            privacy = chat(client, "auto", **{"x-hybridge-tags": "security"})
            alias = chat(client, f"ollama/{ALIAS}")
            bad = client.post("/v1/chat/completions", content=b"{", headers={"content-type": "application/json"})
            assert runtime.ledger.wait_written(7)
            stats = client.get("/hybridge/stats").json()
    statuses = [r.status_code for r in (budget, unknown, no_cloud, privacy, alias, bad)]
    assert statuses == [403, 404, 503, 403, 403, 400]
    got = [(r["outcome"], r["error_kind"]) for r in rows(ledger)[1:]]
    assert got == [
        ("refused", "budget_refused"),
        ("refused", "not_found_error"),
        ("refused", "no_route"),
        ("refused", "privacy_refused"),
        ("refused", "privacy_refused"),
        ("error", "invalid_request_error"),
    ]
    assert stats["today"]["refused_requests"] == 5 and stats["today"]["blocked_by_privacy"] == 2


def test_a_stream_cut_by_sigterm_is_interrupted_with_its_tokens(fake_ollama: Any, tmp_path: Path) -> None:
    import os
    import signal

    import tomli_w

    from tests.support.cli import HybridgeProcess

    config = tmp_path / "config.toml"
    ledger = tmp_path / "ledger.sqlite3"
    config.write_text(
        tomli_w.dumps(
            {
                "providers": {"ollama": {"kind": "ollama", "base_url": fake_ollama.url}},
                "routing": {"local_model": f"ollama/{LOCAL_MODEL}"},
                "ledger": {"path": str(ledger)},
            }
        )
    )
    body = {
        "model": "local",
        "stream": True,
        "max_tokens": 4000,
        "messages": [{"role": "user", "content": "Write a very long story about a lighthouse."}],
    }
    chunks = 0
    with HybridgeProcess(config, env=dict(os.environ)) as hybridge:
        assert hybridge.process is not None
        done = threading.Event()

        def read() -> None:
            nonlocal chunks
            try:
                with httpx.stream("POST", f"{hybridge.base_url}/chat/completions", json=body, timeout=60) as r:
                    for line in r.iter_lines():
                        if line.startswith("data: {"):
                            chunks += 1
                            if chunks == 5:
                                done.set()
            except httpx.HTTPError:
                pass
            done.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert done.wait(60) and chunks >= 5
        hybridge.process.send_signal(signal.SIGTERM)
        assert hybridge.process.wait(30) == 0
        reader.join(10)
    (row,) = rows(ledger)
    assert row["outcome"] == "interrupted"
    assert row["output_tokens"] >= 5 and row["route"] == "local"
