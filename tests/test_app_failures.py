"""Failures a person can read, in the app (issue 19): the port taken by another program
(named, with Retry that works once it is free), and the settings dialog's cloud model:
a picker filled from the presets, a model whose provider has no key refused beside the
field with the fix, every bad value named in one pass. Ollama is down here (nothing
listens at its address): none of this needs a model."""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path

import pytest

from app.main import AppShell
from router_core.presets import PRESETS
from tests.support.app_shell import fake_gpu_hardware, running_shell
from tests.support.servers import free_port, make_settings


@pytest.fixture(autouse=True)
def no_vendor_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for preset in PRESETS.values():
        monkeypatch.delenv(preset.key_env, raising=False)


def _settings() -> object:
    return make_settings({"providers": {"ollama": {"kind": "ollama", "base_url": f"http://127.0.0.1:{free_port()}"}}})


def test_port_in_use_names_the_holder_and_retry_starts_once_free(qtbot, tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    options = {"hardware_probe": fake_gpu_hardware, "ledger_options": {"path": tmp_path / "l.sqlite3", "power": None}}
    shell = AppShell(_settings(), tmp_path / "config.toml", tray=True, port=port, service_options=options)
    try:
        with qtbot.waitSignal(shell.bridge.service_failed, timeout=15_000) as failed:
            shell.start()
        # This test process holds the port: its PID and name are what a person reads.
        message = failed.args[0]
        assert message.startswith(f"port {port} is used by PID {os.getpid()} (")
        assert "pick another port in Settings" in message and "Errno" not in message
        notice = shell.tray.notices[-1]
        assert (notice.title, notice.message, notice.level) == ("Hybridge could not start", message, "critical")
        tray = shell.tray
        tray.rebuild_menu()
        what, fix = message.split(": ", 1)
        assert tray.status_lines()[:2] == [f"Stopped: {what}", f"→ {fix}"]
        retry = tray.action("retry")
        # Still taken: Retry says so again.
        with qtbot.waitSignal(shell.bridge.service_failed, timeout=15_000):
            retry.trigger()
        holder.close()
        with qtbot.waitSignal(shell.bridge.service_started, timeout=15_000):
            tray.action("retry").trigger()
        assert shell.bridge.running and shell.bridge.endpoint_url == f"http://127.0.0.1:{port}/v1"
        tray.rebuild_menu()
        with pytest.raises(KeyError):
            tray.action("retry")
    finally:
        holder.close()
        shell.shutdown()
        shell.dashboard.close()
        shell.deleteLater()


def test_cloud_model_picker_and_a_model_without_a_key(qtbot, tmp_path: Path, memory_keyring) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[budget]\ndaily_usd = 5.0\n")
    with running_shell(qtbot, _settings(), tmp_path) as shell:
        dialog = shell.open_settings()
        qtbot.addWidget(dialog)
        offered = [dialog.cloud_model.itemText(i) for i in range(dialog.cloud_model.count())]
        # Filled from the presets (usable by name alone): no provider table needed for these.
        assert offered[0] == "" and {"openai/gpt-5", "anthropic/claude-sonnet-4-6"} <= set(offered)

        # No key anywhere: refused beside the field, with the command that fixes it.
        dialog.cloud_model.setEditText("openai/gpt-5")
        dialog.port.setText("70000")
        with qtbot.waitSignal(dialog.checked, timeout=10_000) as checked:
            dialog.apply(close=False)
        assert checked.args[0] == [
            "server.port: must be less than or equal to 65535",
        ]  # a bad file is named first: the key is checked on settings that hold together
        dialog.port.setText("11435")
        with qtbot.waitSignal(dialog.checked, timeout=10_000):
            dialog.apply(close=False)
        assert dialog.problems_shown() == {
            "routing.cloud_model": "openai has no API key: store one with `hybridge keys set openai` or set "
            "OPENAI_API_KEY (or type it under Providers & keys)"
        }
        assert dialog.tabs.currentIndex() == 1 and "unchanged" in dialog.status.text()
        assert config.read_text() == "[budget]\ndaily_usd = 5.0\n"

        # With a key in the keyring, the same model is accepted; no [providers.openai] is written.
        memory_keyring.set_password("hybridge", "openai", "sk-test-0123456789abcdef")
        with qtbot.waitSignal(shell.bridge.settings_applied, timeout=10_000):
            dialog.apply(close=False)
        written = tomllib.loads(config.read_text())
        assert written == {"budget": {"daily_usd": 5.0}, "routing": {"cloud_model": "openai/gpt-5"}}
        qtbot.waitUntil(lambda: shell.bridge.running, timeout=15_000)
        assert shell.bridge.settings.providers["openai"].base_url == "https://api.openai.com/v1"


def test_every_bad_value_in_the_dialog_is_named_at_once(qtbot, tmp_path: Path) -> None:
    with running_shell(qtbot, _settings(), tmp_path) as shell:
        dialog = shell.open_settings()
        qtbot.addWidget(dialog)
        dialog.port.setText("eleven")
        dialog.daily.setText("lots")
        dialog.local_model.setEditText("nope/some-model")
        with qtbot.waitSignal(dialog.checked, timeout=10_000):
            dialog.apply(close=False)
        assert dialog.problems_shown() == {
            "server.port": "'eleven' is not a whole number",
            "budget.daily_usd": "'lots' is not a number",
            "routing.local_model": "no provider named 'nope'",
        }
        assert not (tmp_path / "config.toml").exists()
