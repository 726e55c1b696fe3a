"""Real OpenCode (`opencode run`) against `hybridge serve` and the real local model."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from tests.conftest import LOCAL_MODEL, RunningFakeOllama
from tests.support.cli import HybridgeProcess
from tests.support.opencode import opencode_config, run_opencode

pytestmark = [pytest.mark.e2e, pytest.mark.real_model]


def test_opencode_run_goes_through_hybridge_to_the_local_model(tmp_path: Path, fake_ollama: RunningFakeOllama) -> None:
    config = tmp_path / "hybridge.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "routing": {"local_model": f"ollama/{LOCAL_MODEL}"},
                "providers": {"ollama": {"kind": "ollama", "base_url": fake_ollama.url}},
            }
        )
    )
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    seen = len(fake_ollama.state.requests)
    with HybridgeProcess(config) as hybridge:
        (project / "opencode.json").write_text(opencode_config(hybridge.base_url))
        result = run_opencode(project, home, "say hi")
    assert result.returncode == 0, result.stderr[-3000:]

    chats = fake_ollama.state.requests[seen:]
    title = [i for i, c in enumerate(chats) if c["messages"][0]["content"].startswith("You are a title generator")]
    agent = [i for i, c in enumerate(chats) if c.get("tools") and "opencode" in c["messages"][0]["content"]]
    assert title, "OpenCode's title request did not pass through Hybridge"
    assert agent, "OpenCode's agent turn did not pass through Hybridge"
    agent_chat = chats[agent[0]]
    assert len(agent_chat["tools"]) >= 5
    # The agent turn's prompt (~10k characters of system prompt plus tools) got a context
    # that holds it, not Ollama's 4,096 default.
    assert agent_chat["options"]["num_ctx"] >= 8192
    generated = fake_ollama.state.replies[seen + agent[0]]
    assert generated.strip(), "the local model generated nothing"
    assert " ".join(generated.split()) in " ".join(result.stdout.split()), (generated, result.stdout[-2000:])
