"""A cloud provider with no API key (issue 19, item 3), end to end over real sockets: work
Hybridge escalates on its own (a heavy tag) is answered locally with the reason in the
headers, explain and the ledger; a request that asks for the cloud itself fails naming the
command that fixes it, and that message is in the ledger row, the request log and the
dashboard row's tooltip. A key stored while the router runs is used without a restart.

Local answers come from the Ollama-API test engine; the cloud is the fake OpenAI cloud of
tests/fakes/fake_openai_cloud.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.requests_table import row_from_ledger, tooltip
from router_core import keys
from router_core.events import RequestRecord
from router_core.ledger import reports
from router_core.request_log import format_record
from tests.conftest import local_settings
from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud
from tests.support.servers import ThreadedServer, run_hybridge

pytestmark = pytest.mark.real_model

FIX = "store one with `hybridge keys set openai` or set OPENAI_API_KEY"


def _ask(client: httpx.Client, text: str, model: str = "auto", **headers: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": text}]}
    return client.post("/chat/completions", json=body, headers=headers)


def test_no_key_keeps_escalations_local_and_names_the_fix(
    fake_ollama: Any, tmp_path: Path, memory_keyring: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(keys, "RECHECK_S", 0.0)  # look for a key on every request
    cloud = FakeOpenAICloud()
    server = ThreadedServer(cloud.app).start()
    ledger = tmp_path / "ledger.sqlite3"
    settings = local_settings(
        fake_ollama.url,
        routing={"cloud_model": "openai/gpt-4.1"},
        providers={"openai": {"preset": "openai", "base_url": f"{server.url}/v1"}},
    )
    records: list[RequestRecord] = []

    def heard(record: RequestRecord) -> None:  # a function: signals hold their listeners weakly
        records.append(record)

    try:
        with run_hybridge(settings, ledger_options={"path": ledger, "power": None}) as service:
            service.events.request_finished.connect(heard)
            base = service.status().base_url
            with httpx.Client(base_url=base, timeout=120) as client:
                # Escalated by Hybridge (a heavy tag): answered locally, saying why.
                kept = _ask(client, "Add a NOT NULL column.", **{"x-hybridge-tags": "schema"})
                assert kept.status_code == 200, kept.text
                assert kept.headers["x-hybridge-route"] == "local"
                reason = kept.headers["x-hybridge-reason"]
                assert (
                    reason == f"kept local (openai has no API key; {FIX}): heavy tag 'schema' (header x-hybridge-tags)"
                )
                explained = client.post(
                    base.removesuffix("/v1") + "/hybridge/explain",
                    json={"model": "auto", "messages": [{"role": "user", "content": "#tag:schema add a column"}]},
                ).json()
                assert explained["key_kept_local"] == "openai" and explained["route"] == "local"
                assert explained["state"]["keyless"] == ["openai"]

                # Asked for the cloud itself: no quiet local answer, the fix instead.
                asked = _ask(client, "Say hi.", model="cloud")
                assert asked.status_code == 502
                message = asked.json()["error"]["message"]
                assert message == f"openai: no API key; {FIX}"
                assert cloud.state.requests == []  # nothing reached the cloud without a key

                # A key stored while the router runs is used from the next request on.
                memory_keyring.set_password("hybridge", "openai", API_KEY)
                now = _ask(client, "Add a NOT NULL column.", **{"x-hybridge-tags": "schema"})
                assert now.status_code == 200 and now.headers["x-hybridge-route"] == "cloud"
                assert len(cloud.state.requests) == 1
            assert service.runtime is not None and service.runtime.ledger is not None
            assert service.runtime.ledger.wait_written(3)
    finally:
        server.stop()

    failed = next(r for r in records if r.outcome == "error")
    assert failed.error == message and format_record(failed).endswith(f": {message}")
    conn = sqlite3.connect(ledger)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in reports.request_rows(conn, 0)]
    finally:
        conn.close()
    assert [(r["route"], r["outcome"]) for r in rows] == [("local", "ok"), ("cloud", "error"), ("cloud", "ok")]
    assert rows[0]["reason"] == reason and rows[0]["error"] is None
    assert rows[1]["error"] == message
    # The dashboard row's tooltip leads with what went wrong.
    tip = tooltip(row_from_ledger(rows[1]))
    assert tip.splitlines()[0] == f"error: {message}"
