"""The dashboard's first-run checklist, step by step, against the Ollama-API test engine:
Ollama absent, present but stopped (Start Ollama), running without the model, the model
pulled through the app with progress (and a pull cancelled), an agent set up, then the
first local answer; and the optional cloud key, stored only after a real call with it works. The `ollama` binary is a script on PATH (the real one cannot be
installed here); the test starts the engine where `ollama serve` would listen."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from router_core.first_run import FirstRun
from router_core.settings import Settings
from tests.fakes.fake_openai_cloud import API_KEY, MODELS, FakeOpenAICloud
from tests.support.app_shell import chat, running_shell
from tests.support.pulling_ollama import PullingOllama
from tests.support.servers import ThreadedServer, free_port, make_settings

pytestmark = pytest.mark.real_model


def _ollama_script(folder: Path, record: Path) -> None:
    script = folder / "ollama"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" "OLLAMA_NO_CLOUD=$OLLAMA_NO_CLOUD" > "{record}"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def _user_file(tmp_path: Path, url: str) -> Settings:
    """The user's settings file (where the app saves the pulled model) naming the engine's address."""
    (tmp_path / "config.toml").write_text(f'[providers.ollama]\nkind = "ollama"\nbase_url = "{url}"\n')
    return make_settings({"providers": {"ollama": {"kind": "ollama", "base_url": url}}})


def _checked(qtbot, panel, predicate) -> FirstRun:
    """Refresh the checklist and wait for a result that satisfies `predicate`."""
    results: list[FirstRun] = []
    panel.checked.connect(results.append)
    panel.refresh()
    qtbot.waitUntil(lambda: bool(results) and predicate(results[-1]), timeout=15_000)
    return results[-1]


def test_first_run_from_no_ollama_to_a_local_answer(qtbot, llama_server, tmp_path: Path, monkeypatch) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The shipped default local model (qwen3:30b-a3b) does not fit the 8 GiB test card.
    settings = _user_file(tmp_path, url)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    ollama: ThreadedServer | None = None
    with running_shell(qtbot, settings, tmp_path) as shell:
        panel, tray = shell.dashboard.first_run, shell.tray
        # 1. Ollama absent.
        absent = _checked(qtbot, panel, lambda r: r.check("installed").state == "todo")
        assert "https://ollama.com/download" in panel.rows["installed"].text()
        assert not absent.complete and panel.isVisibleTo(shell.dashboard)
        tray.rebuild_menu()
        assert tray.action("first_run").text().startswith("Finish first run (4 steps left)")

        # 2. Installed but stopped: Start Ollama runs `ollama serve`.
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        record = tmp_path / "started.txt"
        _ollama_script(bin_dir, record)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
        stopped = _checked(qtbot, panel, lambda r: r.check("installed").state == "ok")
        assert stopped.check("running").state == "todo" and url in panel.rows["running"].text()
        assert panel.start_button.isVisibleTo(panel)
        with qtbot.waitSignal(shell.bridge.ollama_start_result, timeout=5000) as started:
            panel.start_button.click()
        assert started.args == [""]
        qtbot.waitUntil(lambda: record.exists() and len(record.read_text().splitlines()) == 2, timeout=5000)
        assert record.read_text().splitlines()[0] == "serve"
        fake = PullingOllama(llama_server.url, models=[])
        ollama = ThreadedServer(fake.app, port=port).start()
        try:
            # 3. Running, without the model: the recommendation is doctor's for this machine.
            running = _checked(qtbot, panel, lambda r: r.check("running").state == "ok")
            assert running.check("model").state == "todo" and running.recommended == "qwen2.5-coder:7b"
            assert "`ollama pull qwen2.5-coder:7b`" in panel.rows["model"].text()
            assert not panel.start_button.isVisibleTo(panel) and panel.pull_button.isVisibleTo(panel)
            assert panel.pull_button.text() == "Pull qwen2.5-coder:7b"

            # 4. Pulled through the app, with progress; it becomes routing.local_model.
            values: list[int] = []
            shell.bridge.pull_progress.connect(lambda _m, _p: values.append(panel.progress.value()))
            # Saving restarts the router with the new settings: wait for it to serve again.
            with qtbot.waitSignals([shell.bridge.settings_applied, shell.bridge.service_started], timeout=30_000):
                panel.pull_button.click()
                assert panel.cancel_button.isVisibleTo(panel) and panel.progress.isVisibleTo(panel)
            assert fake.pulls == ["qwen2.5-coder:7b"]
            assert 500 in values and values[-1] == 1000
            assert panel.progress.format() == "qwen2.5-coder:7b: installed"
            saved = tomllib.loads((tmp_path / "config.toml").read_text())
            assert saved["routing"]["local_model"] == "ollama/qwen2.5-coder:7b"
            qtbot.waitUntil(lambda: shell.bridge.running, timeout=15_000)
            pulled = _checked(qtbot, panel, lambda r: r.check("model").state == "ok")
            assert pulled.check("agent").state == "todo" and panel.agent_button.isVisibleTo(panel)

            # 5. An agent set up (OpenCode's own file, as `hybridge setup opencode` writes it).
            folder = Path(os.environ["XDG_CONFIG_HOME"]) / "opencode"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "opencode.json").write_text('{"provider": {"hybridge": {"npm": "@ai-sdk/openai-compatible"}}}')
            try:
                done = _checked(qtbot, panel, lambda r: r.complete)
                assert done.check("cloud_key").state == "optional"
                assert not panel.isVisibleTo(shell.dashboard)
                tray.rebuild_menu()
                with pytest.raises(KeyError):
                    tray.action("first_run")
                # The first local answer.
                answer = chat(qtbot, shell.bridge.endpoint_url, max_tokens=8)
                assert answer.status_code == 200 and answer.headers["x-hybridge-route"] == "local"
            finally:
                (folder / "opencode.json").unlink()
        finally:
            ollama.stop()


def test_a_pull_can_be_cancelled(qtbot, llama_server, tmp_path: Path) -> None:
    fake = PullingOllama(llama_server.url, models=[], delay_s=0.5)
    ollama = ThreadedServer(fake.app).start()
    settings = _user_file(tmp_path, ollama.url)
    try:
        with running_shell(qtbot, settings, tmp_path) as shell:
            panel = shell.dashboard.first_run
            _checked(qtbot, panel, lambda r: r.check("running").state == "ok" and r.recommended == "qwen2.5-coder:7b")
            with qtbot.waitSignal(shell.bridge.pull_progress, timeout=10_000):
                panel.pull_button.click()
            with qtbot.waitSignal(shell.bridge.pull_finished, timeout=10_000) as finished:
                panel.cancel_button.click()
            assert finished.args == ["qwen2.5-coder:7b", "pull qwen2.5-coder:7b: cancelled"]
            assert "cancelled" in panel.rows["model"].text() and not panel.progress.isVisibleTo(panel)
            assert "qwen2.5-coder:7b" not in fake.state.models
            assert "local_model" not in (tmp_path / "config.toml").read_text()  # unchanged
    finally:
        ollama.stop()


def test_a_cloud_key_is_stored_only_after_a_real_call_works(qtbot, tmp_path: Path, memory_keyring) -> None:
    """The optional step: a wrong key is refused by the (fake) cloud and never stored; a good
    one is stored in the keyring, and a model it listed becomes routing.cloud_model."""
    cloud = FakeOpenAICloud()
    server = ThreadedServer(cloud.app).start()
    ollama = f"http://127.0.0.1:{free_port()}"  # down: the checklist stays open, as on a first run
    (tmp_path / "config.toml").write_text(
        f'[providers.ollama]\nbase_url = "{ollama}"\n[providers.openai]\npreset = "openai"\nbase_url = "{server.url}/v1"\n'
    )
    settings = make_settings(
        {"providers": {"ollama": {"kind": "ollama", "base_url": ollama},
                       "openai": {"preset": "openai", "base_url": f"{server.url}/v1"}}}
    )  # fmt: skip
    try:
        with running_shell(qtbot, settings, tmp_path) as shell:
            panel = shell.dashboard.first_run
            first = _checked(qtbot, panel, lambda r: True)
            assert first.check("cloud_key").state == "optional" and panel.cloud_row.isVisibleTo(panel)
            panel.key_provider.setCurrentText("openai")
            panel.key_input.setText("sk-wrong-key-0123456789abcdef")
            with qtbot.waitSignal(shell.bridge.key_verified, timeout=15_000) as bad:
                panel.key_button.click()
            assert bad.args[:2] == [
                "openai",
                "openai rejected the API key (HTTP 401); set it with `hybridge keys set openai`",
            ]
            assert memory_keyring.get_password("hybridge", "openai") is None
            assert panel.key_status.text().startswith("✘ not stored: openai rejected the API key")
            assert "sk-wrong" not in panel.key_status.text()

            panel.key_input.setText(API_KEY)
            with qtbot.waitSignal(shell.bridge.key_verified, timeout=15_000) as good:
                panel.key_button.click()
            assert good.args == ["openai", "", list(MODELS)]
            assert memory_keyring.get_password("hybridge", "openai") == API_KEY
            assert panel.key_input.text() == "" and panel.key_status.text().startswith("✔ openai accepted the key")
            offered = [panel.cloud_models.itemText(i) for i in range(panel.cloud_models.count())]
            assert offered == [f"openai/{m}" for m in sorted(MODELS)] and panel.use_model_button.isVisibleTo(panel)
            with qtbot.waitSignals([shell.bridge.settings_applied, shell.bridge.service_started], timeout=30_000):
                panel.use_model_button.click()
            saved = tomllib.loads((tmp_path / "config.toml").read_text())
            assert saved["routing"]["cloud_model"] == f"openai/{sorted(MODELS)[0]}"
            assert API_KEY not in (tmp_path / "config.toml").read_text()
            done = _checked(qtbot, panel, lambda r: r.check("cloud_key").state == "ok")
            assert done.check("cloud_key").found == "openai: a key is set (keyring)"
    finally:
        server.stop()
