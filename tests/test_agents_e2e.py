"""Codex CLI and Aider, configured by `hybridge setup`, answered by the real local model.

Both run as subprocesses against `hybridge serve` (also a subprocess) whose local model is
llama.cpp's llama-server with the test GGUF (the OpenAI-compatible local provider). Every
phone-home switch of theirs is off: the settings file has privacy mode on, so `hybridge
setup` writes them, and the test checks they are in the written files. Routes are read
back from Hybridge's ledger.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.support.aider import run_aider
from tests.support.cli import HybridgeProcess
from tests.support.codex import run_codex
from tests.support.llama import LlamaServer

pytestmark = [pytest.mark.e2e, pytest.mark.real_model, pytest.mark.timeout(900)]


def settings_file(tmp_path: Path, llama: LlamaServer) -> Path:
    path = tmp_path / "hybridge.toml"
    path.write_text(
        tomli_w.dumps(
            {
                "routing": {"local_model": f"llamacpp/{llama.model}"},
                "providers": {"llamacpp": {"kind": "openai-local", "base_url": f"{llama.url}/v1"}},
                "privacy": {"enabled": True},
                "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
            }
        )
    )
    return path


def setup(config: Path, base_url: str, agent: str, *args: str) -> str:
    port = base_url.rsplit(":", 1)[1].split("/", 1)[0]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "router_core",
            "setup",
            agent,
            "--port",
            port,
            "--write",
            "--config",
            str(config),
            "--no-inventory",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ledger(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in conn.execute(
                "SELECT api, client, requested_model, route, provider, outcome FROM requests ORDER BY started_at"
            )
        ]
    finally:
        conn.close()


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    return project, home


def test_codex_set_up_by_hybridge_answers_from_the_local_model(tmp_path: Path, llama_server: LlamaServer) -> None:
    config = settings_file(tmp_path, llama_server)
    project, home = dirs(tmp_path)
    # The base test model never stops on its own; a JSON schema (Codex's --output-schema,
    # sent as text.format) makes llama.cpp constrain it to a short object that ends.
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {"answer": {"type": "string", "maxLength": 16}},
                "required": ["answer"],
                "additionalProperties": False,
            }
        )
    )
    with HybridgeProcess(config) as hybridge:
        out = setup(config, hybridge.base_url, "codex", "--codex-home", str(home / ".codex"))
        again = setup(config, hybridge.base_url, "codex", "--codex-home", str(home / ".codex"))
        result = run_codex(project, home, "say hi", "--output-schema", str(schema))
    assert "privacy mode is on" in out and "nothing to change" in again
    written = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert written["model_providers"]["hybridge"]["wire_api"] == "responses"
    assert written["model_providers"]["hybridge"]["base_url"] == hybridge.base_url
    # Codex's own traffic to OpenAI: off.
    assert written["analytics"] == {"enabled": False} and written["check_for_update_on_startup"] is False
    assert not any(written["features"][f] for f in ("plugins", "remote_plugin", "apps"))

    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    messages = [
        e["item"]["text"]
        for e in events
        if e.get("type") == "item.completed" and e["item"].get("type") == "agent_message"
    ]
    assert messages and json.loads(messages[-1])["answer"] is not None, events
    usage = next(e["usage"] for e in events if e.get("type") == "turn.completed")
    assert usage["input_tokens"] > 1000 and usage["output_tokens"] > 0  # Codex's long prompt, read locally

    rows = [r for r in ledger(tmp_path / "ledger.sqlite3") if r["api"] == "responses"]
    assert rows and all(
        r["route"] == "local" and r["provider"] == "llamacpp" and r["requested_model"] == "auto" for r in rows
    ), rows
    assert any(r["outcome"] == "ok" and "codex" in r["client"].lower() for r in rows), rows


def test_aider_set_up_by_hybridge_answers_from_the_local_model(tmp_path: Path, llama_server: LlamaServer) -> None:
    config = settings_file(tmp_path, llama_server)
    project, home = dirs(tmp_path)
    # Aider sends no max_tokens of its own: cap the answer of the never-stopping test model.
    (project / ".aider.model.settings.yml").write_text(
        "- name: openai/auto\n  extra_params:\n    max_tokens: 24\n"
        "- name: openai/local\n  extra_params:\n    max_tokens: 24\n"
    )
    with HybridgeProcess(config) as hybridge:
        out = setup(config, hybridge.base_url, "aider", "--project", str(project))
        result = run_aider(project, home, "say hi")
    assert "privacy mode is on" in out
    conf = (project / ".aider.conf.yml").read_text()
    assert 'model: "openai/auto"' in conf and f'openai-api-base: "{hybridge.base_url}"' in conf
    assert "analytics-disable: true" in conf and "check-update: false" in conf
    metadata = json.loads((project / ".aider.model.metadata.json").read_text())
    assert metadata["openai/auto"]["max_input_tokens"] > 0
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    rows = ledger(tmp_path / "ledger.sqlite3")
    chats = [r for r in rows if r["api"] == "openai" and r["requested_model"] == "auto"]
    assert chats and all(r["route"] == "local" and r["provider"] == "llamacpp" for r in chats), rows
    assert any(r["outcome"] == "ok" for r in chats), rows
    assert "Main model: openai/auto" in result.stdout, result.stdout[-2000:]
