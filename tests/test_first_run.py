"""The first-run checks (router_core/first_run.py) against the Ollama-API test server:
Ollama absent, present but stopped, running without the model, running with it; the agent
step from OpenCode's own config file; the cloud-key step; and the same block in doctor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from router_core.first_run import recommend, render, run_checks
from tests.support.app_shell import fake_gpu_hardware
from tests.support.fake_ollama import VERSION, FakeModel
from tests.support.pulling_ollama import PullingOllama
from tests.support.servers import ThreadedServer, free_port, make_settings

# /api/version and /api/tags never reach llama-server, so none runs for these tests.
NO_LLAMA = "http://127.0.0.1:9"


def _settings(url: str, model: str = "qwen2.5-coder:7b", **extra: object) -> object:
    return make_settings(
        {"routing": {"local_model": f"ollama/{model}"}, "providers": {"ollama": {"kind": "ollama", "base_url": url}}}
        | dict(extra)
    )


def test_ollama_absent(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_checks(_settings(url), which=lambda _name: None, env={"HOME": str(tmp_path)})
    installed, running = result.check("installed"), result.check("running")
    assert installed.state == "todo" and "https://ollama.com/download" in installed.fix
    assert running.state == "todo" and url in running.found and "ollama serve" in running.fix
    assert not result.complete
    assert "[TODO] Ollama installed" in render(result)


def test_present_but_stopped_says_how_to_start_it_with_privacy(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = _settings(url, privacy={"enabled": True})
    result = run_checks(settings, which=lambda _name: "/usr/bin/ollama", env={"HOME": str(tmp_path)})
    assert result.check("installed").state == "ok" and "/usr/bin/ollama" in result.check("installed").found
    assert result.check("running").fix == "start it: `OLLAMA_NO_CLOUD=1 ollama serve` (or Start Ollama)"


def test_running_without_then_with_the_model(tmp_path: Path) -> None:
    fake = PullingOllama(NO_LLAMA, [FakeModel("gemma3:270m")])
    server = ThreadedServer(fake.app).start()
    try:
        env = {"HOME": str(tmp_path)}
        result = run_checks(_settings(server.url), hardware=fake_gpu_hardware(), which=lambda _n: None, env=env)
        assert result.check("installed").state == "ok"  # an Ollama answers, though not on PATH
        assert result.check("running").state == "ok" and VERSION in result.check("running").found
        model = result.check("model")
        # The 8 GiB test card: doctor's list (advice.suggest_models) starts at the 7B coder.
        assert result.recommended == recommend(fake_gpu_hardware(), {"gemma3:270m"}) == "qwen2.5-coder:7b"
        assert model.state == "todo" and "`ollama pull qwen2.5-coder:7b`" in model.fix

        fake.state.models["qwen2.5-coder:7b"] = FakeModel("qwen2.5-coder:7b")
        after = run_checks(_settings(server.url), hardware=fake_gpu_hardware(), env=env)
        assert after.check("model").state == "ok" and after.recommended == ""
    finally:
        server.stop()


def test_agent_step_reads_opencode_config(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    assert run_checks(_settings(url), env=env).check("agent").state == "todo"
    folder = tmp_path / "cfg" / "opencode"
    folder.mkdir(parents=True)
    (folder / "opencode.json").write_text('{"provider": {"hybridge": {"options": {"baseURL": "x"}}}}')
    agent = run_checks(_settings(url), env=env).check("agent")
    assert agent.state == "ok" and "OpenCode" in agent.found


def test_cloud_key_step_is_optional_and_names_the_fix(tmp_path: Path, memory_keyring) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {"HOME": str(tmp_path)}
    assert run_checks(_settings(url), env=env).check("cloud_key").state == "optional"
    settings = _settings(
        url,
        routing={"local_model": "ollama/x", "cloud_model": "openai/gpt-4.1"},
        providers={"ollama": {"kind": "ollama", "base_url": url}, "openai": {}},
    )
    check = run_checks(settings, env=env).check("cloud_key")
    assert check.state == "optional" and "hybridge keys set openai" in check.fix


@pytest.mark.e2e  # runs a hybridge command as a subprocess
def test_doctor_prints_the_block_and_exits_1_only_when_broken(tmp_path: Path) -> None:
    fake = PullingOllama(NO_LLAMA, [FakeModel("qwen2.5-coder:7b")])
    server = ThreadedServer(fake.app).start()
    config = tmp_path / "config.toml"
    try:
        config.write_text(
            f'[routing]\nlocal_model = "ollama/qwen2.5-coder:7b"\n[providers.ollama]\nbase_url = "{server.url}"\n'
        )
        ok = subprocess.run(
            [sys.executable, "-m", "router_core", "doctor", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        # No GPU here and a short-context warning are warnings, not breakage.
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "First run:" in ok.stdout and "[ok  ] Local model" in ok.stdout
    finally:
        server.stop()
    down = subprocess.run(
        [sys.executable, "-m", "router_core", "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 1 and "[TODO] Ollama running" in down.stdout and "Traceback" not in down.stderr
