"""`hybridge explain` and `POST /hybridge/explain`: the plan and its reasons, nothing sent."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from router_core.cli import main
from tests.support.opencode_bodies import PROJECT, agent_body, recorded
from tests.support.servers import make_settings, run_hybridge

CONFIG = """
[providers.anthropic]
kind = "anthropic"

[routing]
cloud_model = "anthropic/claude-sonnet-4-6"
heavy_model = "anthropic/claude-opus-4-7"
fallback_chain = ["ollama/qwen3:30b-a3b", "anthropic/claude-sonnet-4-6"]
"""
MIGRATION_ASK = "Add an index on users.email in db/migrations/0003_add_index.sql"


@pytest.fixture
def config(tmp_path: Path, memory_keyring) -> Path:
    # Anthropic has a key: without one, escalated work would be kept local (test_missing_key.py).
    memory_keyring.set_password("hybridge", "anthropic", "sk-ant-explain-test-key")
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def write_body(tmp_path: Path, body: dict[str, Any]) -> Path:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return path


def test_explain_prints_a_heavy_route_with_the_convention_that_matched(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = write_body(tmp_path, agent_body(MIGRATION_ASK))
    assert main(["--config", str(config), "explain", str(request)]) == 0
    out = capsys.readouterr().out
    assert "route        cloud -> anthropic/claude-opus-4-7" in out
    assert "rule         heavy" in out
    assert "**/migrations/** -> migration: db/migrations/0003_add_index.sql" in out
    assert "**/*.sql -> schema: db/migrations/0003_add_index.sql" in out
    assert "1. cloud anthropic/claude-opus-4-7" in out
    assert "2. local ollama/qwen3:30b-a3b  - fallback chain" in out


def test_explain_reads_stdin_and_headers_and_prints_json(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.dumps(agent_body("rework the cart header")).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    args = ["--config", str(config), "explain", "--json", "--header", "x-hybridge-tags: review"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rule"] == "review"
    assert data["model"] == "anthropic/claude-sonnet-4-6"
    assert data["tag_sources"] == {"review": "header x-hybridge-tags"}
    assert data["prompt_tokens"] > 3000  # OpenCode's system prompt and tools


def test_explain_as_if_privacy_refused(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = write_body(tmp_path, agent_body(MIGRATION_ASK))
    assert main(["--config", str(config), "explain", "--privacy", "--privacy-escalation", "refuse", str(request)]) == 0
    out = capsys.readouterr().out
    assert "outcome      refused with HTTP 403" in out
    assert 'privacy escalation is "refuse"' in out


def test_explain_rejects_a_bad_body(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["--config", str(config), "explain", str(bad)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    bad.write_text(json.dumps({"model": "auto"}))
    assert main(["--config", str(config), "explain", str(bad)]) == 1
    assert "'messages' must be a non-empty array" in capsys.readouterr().err


@pytest.mark.e2e  # runs a hybridge command as a subprocess
def test_the_installed_command_runs(tmp_path: Path, config: Path) -> None:
    request = write_body(tmp_path, recorded("title")[1])
    result = subprocess.run(
        [sys.executable, "-m", "router_core", "--config", str(config), "explain", str(request)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "small task   title (small-model work stays local)" in result.stdout


def test_explain_endpoint_uses_the_live_state(memory_keyring) -> None:
    memory_keyring.set_password("hybridge", "anthropic", "sk-ant-explain-test-key")
    settings = make_settings(
        {
            "providers": {"anthropic": {"kind": "anthropic", "base_url": "http://127.0.0.1:9"}},
            "routing": {"cloud_model": "anthropic/claude-sonnet-4-6", "heavy_model": "anthropic/claude-opus-4-7"},
        }
    )
    with run_hybridge(settings) as service:
        root = service.status().base_url.removesuffix("/v1")
        body = agent_body(f"#tag:billing fix {PROJECT}/src/billing/invoice.ts")
        data = httpx.post(root + "/hybridge/explain", json=body, timeout=10).json()
        assert data["route"] == "cloud"
        assert data["model"] == "anthropic/claude-opus-4-7"
        assert data["conventions"] == [
            {
                "glob": "**/billing/**",
                "tag": "billing",
                "path": f"{PROJECT}/src/billing/invoice.ts",
                "where": "latest user instruction",
            }
        ]
        assert data["markers_stripped"] == ["#tag:billing"]
        # Live privacy: the same request is now kept local, and says so.
        assert service.runtime is not None
        service.runtime.set_privacy(True)
        # No Ollama runs here: in privacy mode a model Ollama was never asked about is
        # refused rather than guessed local...
        data = httpx.post(root + "/hybridge/explain", json=body, timeout=10).json()
        assert data["error"]["status"] == 403 and "could not be asked" in data["error"]["message"]
        # ...and once Ollama has said the local model runs here, flagged work is kept local.
        service.runtime.ollama_facts.note("ollama", [("qwen3:30b-a3b", False)])
        data = httpx.post(root + "/hybridge/explain", json=body, timeout=10).json()
        assert data["route"] == "local" and data["kept_local"] is True
        assert data["state"]["privacy"] is True
        # A malformed request gets the chat endpoint's 400.
        bad = httpx.post(root + "/hybridge/explain", content=b"{", timeout=10)
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request_error"
        cooldowns = httpx.get(root + "/hybridge/cooldowns", timeout=10)
        assert cooldowns.json() == {"cooldowns": []}
