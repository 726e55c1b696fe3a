"""Honest savings: a 10-turn local session priced on the baseline model with its prompt cache.

Computed by hand here from the token counts the client saw: Claude Sonnet 4.6 at $3 input,
$15 output, $0.30 cache read and $3.75 cache write per million tokens (resources/prices.toml,
Anthropic's pricing page); each turn resends everything the previous turn sent, so the
previous prompt is read from the 5-minute cache and the rest is written.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from tests.conftest import LOCAL_MODEL, local_settings
from tests.support.servers import run_hybridge

INPUT, OUTPUT, CACHE_READ, CACHE_WRITE = 3.00, 15.00, 0.30, 3.75
PER = 1_000_000
# Well above Anthropic's 1,024-token minimum for a cacheable prompt.
SYSTEM = "You are a careful coding assistant working in a large repository. " * 120
TURNS = 10


def test_ten_turn_session_baseline_uses_cache_reads(fake_ollama: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    settings = local_settings(
        fake_ollama.url, ledger={"path": str(ledger)}, pricing={"baseline_model": "anthropic/claude-sonnet-4-6"}
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    usages = []
    with run_hybridge(settings, ledger_options={"power": None}) as service:
        assert service.runtime is not None and service.runtime.ledger is not None
        with httpx.Client(base_url=service.status().base_url, timeout=300, trust_env=False) as client:
            for turn in range(TURNS):
                messages.append({"role": "user", "content": f"Step {turn}: add a test for function f{turn}."})
                body = {"model": "local", "max_tokens": 6, "messages": messages}
                response = client.post("/chat/completions", json=body, headers={"x-session-id": "s-savings"})
                assert response.status_code == 200, response.text
                data = response.json()
                usages.append(data["usage"])
                messages.append({"role": "assistant", "content": data["choices"][0]["message"]["content"]})
        assert service.runtime.ledger.wait_written(TURNS)
    prompts = [u["prompt_tokens"] for u in usages]
    outputs = [u["completion_tokens"] for u in usages]
    assert prompts[0] >= 1024 and all(b > a for a, b in itertools.pairwise(prompts))

    # By hand: turn 1 writes its whole prompt; turn k reads turn k-1's prompt, writes the rest.
    expected = prompts[0] * CACHE_WRITE / PER + outputs[0] * OUTPUT / PER
    for k in range(1, TURNS):
        read, write = prompts[k - 1], prompts[k] - prompts[k - 1]
        expected += (read * CACHE_READ + write * CACHE_WRITE + outputs[k] * OUTPUT) / PER
    uncached = sum(p * INPUT + o * OUTPUT for p, o in zip(prompts, outputs, strict=True)) / PER

    conn = sqlite3.connect(ledger)
    try:
        baseline, savings, reads = conn.execute(
            "SELECT SUM(baseline_cost_usd), SUM(savings_usd), SUM(baseline_cache_read_tokens) FROM requests"
        ).fetchone()
    finally:
        conn.close()
    assert abs(baseline - expected) < 0.0001, (baseline, expected)
    assert abs(savings - expected) < 0.0001  # local: no token cost, electricity not measured here
    assert reads == sum(prompts[:-1])
    assert expected < uncached / 2  # what the old, cache-blind baseline overstated

    config = tmp_path / "config.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "ledger": {"path": str(ledger)},
                "pricing": {"baseline_model": "anthropic/claude-sonnet-4-6"},
                "routing": {"local_model": f"ollama/{LOCAL_MODEL}"},
            }
        )
    )
    stats = subprocess.run(
        [sys.executable, "-m", "router_core", "stats", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        # No runtime file there: no router is running, so no live line.
        env={**os.environ, "HYBRIDGE_RUNTIME_DIR": str(tmp_path / "run")},
    ).stdout
    print(f"\nhand-computed baseline ${expected:.6f} (cache-blind ${uncached:.6f})\n{stats}")
    (tmp_path / "stats.txt").write_text(stats)
    assert "baseline: the same tokens on anthropic/claude-sonnet-4-6 with Anthropic's 5-minute prompt cache" in stats
    assert f"{expected:,.4f}" in stats
