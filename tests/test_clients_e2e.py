"""Real clients set up by Hybridge's own commands, end to end.

OpenCode (`opencode run`) in a project configured by `hybridge opencode --write`, and
Claude Code (`claude -p`) in a shell that sourced `hybridge claude-code --write FILE`, both
against `hybridge serve` as a subprocess, the real local model behind the Ollama-API test
server, and a fake OpenAI-compatible cloud. Routes are read back from Hybridge's ledger.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from router_core.clients.jsonc import loads
from router_core.inventory.machine import Inventory
from tests.conftest import LOCAL_MODEL, RunningFakeOllama
from tests.fakes.fake_openai_cloud import API_KEY, DEFAULT_TEXT, FakeOpenAICloud
from tests.support.claude_code import run_claude
from tests.support.cli import HybridgeProcess
from tests.support.opencode import run_opencode
from tests.support.servers import ThreadedServer, make_settings

# Each test runs a real client against the 270M model on CPU: minutes on a busy 2-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.real_model, pytest.mark.timeout(900)]

CLOUD_KEY_ENV = "HYBRIDGE_TEST_CLOUD_KEY"
# The test model is a base model that never stops on its own: keep answers short.
MAX_OUTPUT = "32"


@pytest.fixture
def fake_cloud() -> Iterator[tuple[FakeOpenAICloud, str]]:
    cloud = FakeOpenAICloud()
    server = ThreadedServer(cloud.app).start()
    try:
        yield cloud, server.url
    finally:
        server.stop()


def hybridge_settings(tmp_path: Path, ollama_url: str, cloud_url: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "routing": {"local_model": f"ollama/{LOCAL_MODEL}"},
        "providers": {"ollama": {"kind": "ollama", "base_url": ollama_url}},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
    }
    if cloud_url:
        data["providers"]["fakecloud"] = {
            "kind": "openai",
            "base_url": f"{cloud_url}/v1",
            "api_key": f"env:{CLOUD_KEY_ENV}",
        }
        data["routing"]["cloud_model"] = "fakecloud/gpt-4.1"
    return data


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "hybridge.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def hybridge_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "router_core", *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def port_of(base_url: str) -> str:
    return base_url.rsplit(":", 1)[1].split("/", 1)[0]


def ledger_rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT api, requested_model, route, reason, provider || '/' || model AS model, outcome FROM requests"
            " ORDER BY started_at"
        ).fetchall()
        return [dict(r) for r in rows]
    finally:
        conn.close()


def project_dirs(tmp_path: Path) -> tuple[Path, Path]:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    return project, home


async def test_opencode_configured_by_hybridge_runs_on_the_local_model(
    tmp_path: Path, fake_ollama: RunningFakeOllama
) -> None:
    data = hybridge_settings(tmp_path, fake_ollama.url)
    config = write_config(tmp_path, data)
    project, home = project_dirs(tmp_path)
    seen = len(fake_ollama.state.requests)
    with HybridgeProcess(config) as hybridge:
        hybridge_cli(
            "opencode",
            "--project",
            str(project),
            "--port",
            port_of(hybridge.base_url),
            "--max-output",
            MAX_OUTPUT,
            "--write",
            "--config",
            str(config),
        )
        result = run_opencode(project, home, "say hi")
    assert result.returncode == 0, result.stderr[-3000:]

    written = loads((project / "opencode.json").read_text())
    assert written["model"] == "hybridge/auto" and written["small_model"] == "hybridge/local"
    local = written["provider"]["hybridge"]["models"]["local"]
    # The local window is the inventory's figure for this machine (the test model's own
    # maximum, 32,768, when the machine holds that much). The engine's model lists the
    # 'tools' capability (OpenCode's agent turns carry tools, and Ollama refuses tools to a
    # model without it), so OpenCode is told the local model calls tools.
    inventory = Inventory(make_settings(data))
    try:
        snapshot = await inventory.refresh()
    finally:
        await inventory.aclose()
    assert local["limit"]["context"] == snapshot.usable_context("ollama", LOCAL_MODEL) > 0
    assert local["limit"]["output"] == int(MAX_OUTPUT)
    assert local["tool_call"] is ("tools" in fake_ollama.state.models[LOCAL_MODEL].capabilities)
    assert local["tool_call"] is True

    rows = ledger_rows(tmp_path / "ledger.sqlite3")
    title = [r for r in rows if r["requested_model"] == "local"]
    agent = [r for r in rows if r["requested_model"] == "auto"]
    assert title and all(r["route"] == "local" and r["model"] == f"ollama/{LOCAL_MODEL}" for r in title), rows
    assert all(r["reason"] == "small-model work (title) stays local" for r in title), rows
    assert agent and all(r["route"] == "local" and r["reason"] == "local default" for r in agent), rows

    chats = fake_ollama.state.requests[seen:]
    assert any(c["messages"][0]["content"].startswith("You are a title generator") for c in chats)
    turns = [i for i, c in enumerate(chats) if "opencode" in c["messages"][0]["content"]]
    assert turns, "OpenCode's agent turn did not reach the local model"
    assert all(chats[i]["options"]["num_predict"] == int(MAX_OUTPUT) for i in turns)
    # On a loaded machine OpenCode may give up on a slow attempt and send the turn again:
    # the answer it prints is the one the model finished.
    finished = [fake_ollama.state.replies[seen + i] for i in turns if seen + i in fake_ollama.state.replies]
    assert finished, ("no agent turn finished", rows)
    assert any(r["outcome"] == "ok" for r in agent), rows
    generated = finished[-1]
    assert generated.strip(), "the local model generated nothing"
    assert " ".join(generated.split()) in " ".join(result.stdout.split()), (generated, result.stdout[-2000:])


def test_opencode_prompt_naming_a_migration_goes_to_the_cloud(
    tmp_path: Path, fake_ollama: RunningFakeOllama, fake_cloud: tuple[FakeOpenAICloud, str]
) -> None:
    cloud, cloud_url = fake_cloud
    config = write_config(tmp_path, hybridge_settings(tmp_path, fake_ollama.url, cloud_url))
    env = {**os.environ, CLOUD_KEY_ENV: API_KEY}
    project, home = project_dirs(tmp_path)
    seen = len(fake_ollama.state.requests)
    with HybridgeProcess(config, env=env) as hybridge:
        hybridge_cli(
            "opencode",
            "--project",
            str(project),
            "--port",
            port_of(hybridge.base_url),
            "--max-output",
            MAX_OUTPUT,
            "--write",
            "--config",
            str(config),
            env=env,
        )
        result = run_opencode(project, home, "Check db/migrations/0001_init.sql for a missing index")
    assert result.returncode == 0, result.stderr[-3000:]

    written = loads((project / "opencode.json").read_text())["provider"]["hybridge"]["models"]["cloud"]
    assert written["cost"] == {"input": 2.0, "output": 8.0, "cache_read": 0.5, "cache_write": 2.0}  # openai/gpt-4.1

    rows = ledger_rows(tmp_path / "ledger.sqlite3")
    title = [r for r in rows if r["requested_model"] == "local"]
    agent = [r for r in rows if r["requested_model"] == "auto"]
    # The cloud answers at once and `opencode run` exits, cancelling the title request the
    # local model is still reading (the ledger then names no route): it was planned local.
    assert title and all(r["reason"] == "small-model work (title) stays local" for r in title), rows
    assert all(r["route"] in ("local", "") for r in title), rows
    assert any(
        c["messages"][0]["content"].startswith("You are a title generator") for c in fake_ollama.state.requests[seen:]
    )
    assert agent, rows
    turn = agent[0]
    assert turn["route"] == "cloud" and turn["model"] == "fakecloud/gpt-4.1", turn
    assert "convention" in turn["reason"] and "db/migrations/0001_init.sql" in turn["reason"], turn["reason"]
    assert any("opencode" in str(body["messages"][0]["content"]) for _, body in cloud.state.requests)
    assert DEFAULT_TEXT in result.stdout, result.stdout[-2000:]


def test_opencode_agents_flag_work_by_model_and_by_tags(
    tmp_path: Path, fake_ollama: RunningFakeOllama, fake_cloud: tuple[FakeOpenAICloud, str]
) -> None:
    cloud, cloud_url = fake_cloud
    config = write_config(tmp_path, hybridge_settings(tmp_path, fake_ollama.url, cloud_url))
    env = {**os.environ, CLOUD_KEY_ENV: API_KEY}
    project, home = project_dirs(tmp_path)
    with HybridgeProcess(config, env=env) as hybridge:
        hybridge_cli(
            "opencode",
            "--project",
            str(project),
            "--port",
            port_of(hybridge.base_url),
            "--max-output",
            MAX_OUTPUT,
            "--agent",
            "plan=cloud",
            "--agent",
            "build=tag:ui-mock",
            "--write",
            "--config",
            str(config),
            env=env,
        )
        built = run_opencode(project, home, "make the header blue")  # the build agent, tagged
        planned = run_opencode(project, home, "outline a plan", args=("--agent", "plan"))
    assert built.returncode == 0, built.stderr[-3000:]
    assert planned.returncode == 0, planned.stderr[-3000:]

    turns = [r for r in ledger_rows(tmp_path / "ledger.sqlite3") if r["requested_model"] in ("auto", "cloud")]
    tagged = [r for r in turns if r["requested_model"] == "auto"]
    asked = [r for r in turns if r["requested_model"] == "cloud"]
    # The build agent's options reached the request body as hybridge_tags.
    assert tagged and all(r["route"] == "cloud" and "ui tag 'ui-mock'" in r["reason"] for r in tagged), turns
    # The plan agent's model is hybridge/cloud.
    assert asked and all(r["route"] == "cloud" and r["reason"] == "asked for model 'cloud'" for r in asked), turns
    assert len(cloud.state.requests) == len(turns)
    assert DEFAULT_TEXT in built.stdout and DEFAULT_TEXT in planned.stdout


def test_claude_code_through_messages_is_answered_by_the_local_model(
    tmp_path: Path, fake_ollama: RunningFakeOllama
) -> None:
    config = write_config(tmp_path, hybridge_settings(tmp_path, fake_ollama.url))
    project, home = project_dirs(tmp_path)
    env_file = tmp_path / "hybridge-claude.sh"
    seen = len(fake_ollama.state.requests)
    with HybridgeProcess(config) as hybridge:
        hybridge_cli(
            "claude-code", "--port", port_of(hybridge.base_url), "--write", str(env_file), "--config", str(config)
        )
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        # No built-in tools: Claude Code's ~20k-token tool prompt would take the CPU-bound
        # test model minutes per request to read; the wire protocol is the same.
        result = run_claude(
            env_file,
            project,
            home,
            "say hi",
            args=("--tools", "", "--output-format", "stream-json", "--verbose"),
            extra_env={"CLAUDE_CODE_MAX_OUTPUT_TOKENS": MAX_OUTPUT},
        )

    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events and events[-1]["type"] == "result", (result.stdout[-2000:], result.stderr[-2000:])
    final = events[-1]
    # The test model is a base model that never ends its turn: every answer stops at
    # max_tokens, and Claude Code, after its own "resume" retries, ends with
    # max_output_tokens. Any other error (a protocol or routing failure) fails here.
    assert not final["is_error"] or final.get("api_error") == "max_output_tokens", final

    rows = ledger_rows(tmp_path / "ledger.sqlite3")
    assert rows and all(r["api"] == "anthropic" for r in rows), rows
    # ANTHROPIC_MODEL=sonnet -> ANTHROPIC_DEFAULT_SONNET_MODEL=auto: the local default.
    assert all(r["requested_model"] == "auto" and r["route"] == "local" and r["outcome"] == "ok" for r in rows), rows
    answers = [
        " ".join(block["text"].split())
        for e in events
        if e["type"] == "assistant" and not e.get("error")
        for block in e["message"]["content"]
        if block.get("type") == "text"
    ]
    replies = [
        " ".join(fake_ollama.state.replies[i].split())
        for i in range(seen, len(fake_ollama.state.requests))
        if i in fake_ollama.state.replies
    ]
    assert answers and answers[0] and answers[0] == replies[0], (answers, replies)
