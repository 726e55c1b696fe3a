"""Cloud budgets over real sockets: a warning event at 80%, and at the cap cloud work stays
local (reason "budget") or is refused, per the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from router_core.ledger.budget import BudgetAlert
from tests.fakes.fake_openai_cloud import API_KEY as OPENAI_KEY
from tests.support.clouds import fake_openai_cloud
from tests.support.servers import make_settings, run_hybridge

# gpt-4.1: $2 per million input tokens, $8 per million output; the fake answers 6 words.
PROMPT_WORDS = 20_000
COST = (PROMPT_WORDS * 2 + 6 * 8) / 1_000_000  # $0.040048 a request


class Alerts:
    def __init__(self) -> None:
        self.items: list[BudgetAlert] = []

    def add(self, alert: BudgetAlert) -> None:
        self.items.append(alert)


def settings(ollama_url: str, openai_url: str, tmp_path: Path, **budget: Any) -> Any:
    return make_settings(
        {
            "routing": {"local_model": "ollama/gemma3:270m", "cloud_model": "openai/gpt-4.1"},
            "providers": {
                "ollama": {"kind": "ollama", "base_url": ollama_url},
                "openai": {"kind": "openai", "base_url": f"{openai_url}/v1", "api_key": "env:HB_TEST_OPENAI_KEY"},
            },
            "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
            "budget": budget,
        }
    )


def cloud_request(n: int) -> dict[str, Any]:
    # A different first word each time, so OpenAI's prompt cache never applies.
    prompt = " ".join(f"r{n}w{i}" for i in range(PROMPT_WORDS))
    return {"model": "cloud", "max_tokens": 4, "messages": [{"role": "user", "content": prompt}]}


@pytest.mark.parametrize("action", ["keep-local", "refuse"])
def test_budget_warns_then_stops_cloud_work(
    fake_ollama: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    monkeypatch.setenv("HB_TEST_OPENAI_KEY", OPENAI_KEY)
    alerts = Alerts()
    # A cap of 2.4 requests: the second passes 80% (a warning), the third reaches it.
    cap = 2.4 * COST
    with fake_openai_cloud() as (_, openai_url):
        conf = settings(fake_ollama.url, openai_url, tmp_path, daily_usd=cap, action=action)
        with run_hybridge(conf, ledger_options={"power": None}) as service:
            service.ledger_signals.budget_alert.connect(alerts.add)
            runtime = service.runtime
            assert runtime is not None and runtime.ledger is not None
            base = service.status().base_url
            with httpx.Client(base_url=base, timeout=120) as client:
                levels = []
                for n in range(3):
                    response = client.post("/chat/completions", json=cloud_request(n))
                    assert response.status_code == 200, response.text
                    assert response.headers["x-hybridge-route"] == "cloud"
                    assert runtime.ledger.wait_written(n + 1)
                    levels.append([a.level for a in alerts.items])
                assert levels == [[], ["warning"], ["warning", "exhausted"]], runtime.budget_state()
                state = runtime.budget_state()
                assert state.exhausted and state.period == "day" and state.action == action
                assert state.day_spent_usd == pytest.approx(3 * COST)
                assert "reached" in alerts.items[-1].message

                # Past the cap: nothing more goes to the cloud.
                short = {"model": "cloud", "max_tokens": 2, "messages": [{"role": "user", "content": "Say hi."}]}
                response = client.post("/chat/completions", json=short)
                if action == "keep-local":
                    assert response.status_code == 200, response.text
                    assert response.headers["x-hybridge-route"] == "local"
                    assert "budget" in response.headers["x-hybridge-reason"]
                    assert runtime.ledger.wait_written(4)
                else:
                    assert response.status_code >= 400
                    assert "budget" in response.json()["error"]["message"]
                stats = httpx.get(base.removesuffix("/v1") + "/hybridge/stats").json()
            assert stats["budget"]["exhausted"] and stats["budget"]["day"]["cap_usd"] == pytest.approx(cap)
            assert stats["today"]["spend_usd"] == pytest.approx(3 * COST, abs=1e-6)
            # No GPU power reading here: said so, never counted as 0 Wh.
            assert stats["electricity"] == "not measured"
            if action == "keep-local":
                assert stats["today"]["electricity"] == "not measured"
