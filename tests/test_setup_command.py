"""`hybridge setup AGENT`: diff first, then a write with a backup; a second run changes
nothing; the user's own settings and comments stay; privacy mode writes the agents'
phone-home switches off and says so."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import tomli_w

from router_core import cli


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hybridge.toml"
    path.write_text(tomli_w.dumps({"server": {"port": 4545}, "privacy": {"enabled": True}}))
    return path


def setup(config: Path, *args: str) -> int:
    return cli.main(["setup", *args, "--no-inventory", "--config", str(config)])


def test_codex_keeps_user_settings_backs_up_and_is_idempotent(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "codex"
    home.mkdir()
    (home / "config.toml").write_text('# mine\napproval_policy = "never"\n\n[model_providers.other]\nname = "x"\n')
    assert setup(config, "codex", "--codex-home", str(home)) == 0
    shown = capsys.readouterr().out
    assert '+model_provider = "hybridge"' in shown and "not written" in shown
    assert "approval_policy" in (home / "config.toml").read_text()  # a diff only: nothing written yet
    assert "hybridge" not in (home / "config.toml").read_text()
    assert setup(config, "codex", "--codex-home", str(home), "--write") == 0
    out = capsys.readouterr().out
    assert "privacy mode is on" in out and "the old file is in" in out
    text = (home / "config.toml").read_text()
    written = tomllib.loads(text)
    assert text.startswith("# mine") and written["approval_policy"] == "never" and written["model_providers"]["other"]
    provider = written["model_providers"]["hybridge"]
    assert provider["base_url"] == "http://127.0.0.1:4545/v1" and provider["wire_api"] == "responses"
    assert provider["stream_idle_timeout_ms"] == 300_000  # Hybridge's own read timeout
    assert written["analytics"]["enabled"] is False and written["features"]["plugins"] is False
    assert len(list(home.glob("config.toml.*.bak"))) == 1
    assert setup(config, "codex", "--codex-home", str(home), "--write") == 0
    assert "nothing to change" in capsys.readouterr().out


def test_aider_and_qwen_code_files(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".aider.conf.yml").write_text("# my aider\ndark-mode: true\nmodel: gpt-4o\n")
    assert setup(config, "aider", "--project", str(project), "--write") == 0
    conf = (project / ".aider.conf.yml").read_text()
    assert conf.startswith('# my aider\ndark-mode: true\nmodel: "openai/auto"\n')
    assert "analytics-disable: true" in conf and 'openai-api-base: "http://127.0.0.1:4545/v1"' in conf
    metadata = json.loads((project / ".aider.model.metadata.json").read_text())
    assert metadata["openai/local"]["max_input_tokens"] > metadata["openai/local"]["max_output_tokens"] > 0
    qwen = tmp_path / "qwen"
    assert setup(config, "qwen-code", "--qwen-home", str(qwen), "--write") == 0
    settings = json.loads((qwen / "settings.json").read_text())
    assert settings["security"]["auth"] == {
        "selectedType": "openai",
        "baseUrl": "http://127.0.0.1:4545/v1",
        "apiKey": "hybridge-no-token",
    }
    assert settings["privacy"]["usageStatisticsEnabled"] is False and settings["telemetry"]["enabled"] is False
    assert "Qwen Code's own traffic" in capsys.readouterr().out


def test_ollama_line_and_aliases(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup(config, "ollama") == 0
    assert "export OLLAMA_HOST=http://127.0.0.1:4545" in capsys.readouterr().out
    # `setup opencode` is `hybridge opencode`, its options included.
    assert cli.main(["setup", "opencode", "--project", str(tmp_path), "--no-inventory", "--config", str(config)]) == 0
    assert "hybridge/auto" in capsys.readouterr().out
    assert cli.main(["setup", "claude-code", "--config", str(config)]) == 0
    assert "CLAUDE_CODE_ATTRIBUTION_HEADER=0" in capsys.readouterr().out
