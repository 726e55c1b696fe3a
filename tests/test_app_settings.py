"""The settings dialog on a running app: bad values are refused beside their field and change
nothing; good ones are written (only what changed) and applied live; keys go to the keyring."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from app.settings_dialog import SettingsDialog
from app.settings_form import ProviderRow
from tests.conftest import local_settings
from tests.support.app_shell import running_shell

pytestmark = pytest.mark.real_model


def test_invalid_settings_are_refused_beside_the_field(qtbot, fake_ollama, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[budget]\ndaily_usd = 5.0\n")
    with running_shell(qtbot, local_settings(fake_ollama.url), tmp_path) as shell:
        dialog = shell.open_settings()
        qtbot.addWidget(dialog)
        service_before = shell.bridge.service

        # Not even a number: refused, nothing written.
        dialog.port.setText("eleven")
        with qtbot.waitSignal(dialog.checked, timeout=5000):
            dialog.apply(close=False)
        assert dialog.problems_shown() == {"server.port": "'eleven' is not a whole number"}
        assert dialog.errors["server.port"].isVisibleTo(dialog)

        # A number out of range: the settings validation names the key, shown beside the field.
        dialog.port.setText("70000")
        with qtbot.waitSignal(dialog.checked, timeout=5000):
            dialog.apply(close=False)
        assert dialog.problems_shown() == {"server.port": "must be less than or equal to 65535"}

        # A model on a provider that does not exist: refused beside the model field; the port's
        # error is gone once the port is fixed.
        dialog.port.setText("11435")
        dialog.local_model.setEditText("nope/some-model")
        with qtbot.waitSignal(dialog.checked, timeout=5000):
            dialog.apply(close=False)
        assert dialog.problems_shown() == {"routing.local_model": "no provider named 'nope'"}
        assert dialog.tabs.currentIndex() == 1  # the Routing tab, where the field is
        assert "unchanged" in dialog.status.text()
        assert config.read_text() == "[budget]\ndaily_usd = 5.0\n"
        assert shell.bridge.service is service_before and shell.bridge.running
        assert dialog.isVisible()


def test_valid_settings_are_saved_and_applied_live(qtbot, fake_ollama, tmp_path: Path, memory_keyring) -> None:
    config = tmp_path / "config.toml"
    with running_shell(qtbot, local_settings(fake_ollama.url), tmp_path) as shell:
        dialog = shell.open_settings()
        qtbot.addWidget(dialog)
        old_service = shell.bridge.service

        dialog.daily.setText("2.50")
        dialog.heavy_tags.setText("schema, migration, payments")
        dialog._add_provider(ProviderRow("groq", "openai", "https://api.groq.com/openai/v1"))
        dialog.key_field("groq").setText("gsk-secret-key-123")
        with qtbot.waitSignal(shell.bridge.settings_applied, timeout=5000):
            dialog.apply(close=False)
        qtbot.waitUntil(lambda: shell.bridge.service is not old_service and shell.bridge.running, timeout=15_000)

        written = tomllib.loads(config.read_text())
        assert written["budget"] == {"daily_usd": 2.5}
        assert written["routing"] == {"heavy_tags": ["schema", "migration", "payments"]}
        assert written["providers"] == {"groq": {"kind": "openai", "base_url": "https://api.groq.com/openai/v1"}}
        # Applied live: the running router has the new settings.
        runtime = shell.bridge.service.runtime
        assert runtime.settings.budget.daily_usd == 2.5 and "groq" in runtime.providers
        # The key went to the keyring, not the file, and the field does not show it back.
        qtbot.waitUntil(lambda: memory_keyring.get_password("hybridge", "groq") == "gsk-secret-key-123", timeout=5000)
        assert "gsk-secret" not in config.read_text()
        assert dialog.key_field("groq").text() == ""
        dialog.load(shell.bridge.settings)
        qtbot.waitUntil(lambda: "stored" in dialog.key_field("groq").placeholderText(), timeout=5000)
        assert dialog.key_field("groq").text() == ""


def test_start_at_login_writes_the_xdg_autostart_entry(qtbot, fake_ollama, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with running_shell(qtbot, local_settings(fake_ollama.url), tmp_path) as shell:
        dialog = SettingsDialog(shell.bridge)
        qtbot.addWidget(dialog)
        entry = tmp_path / "xdg" / "autostart" / "hybridge.desktop"
        assert not dialog.start_at_login.isChecked()
        dialog.start_at_login.setChecked(True)
        dialog.apply(close=False)
        qtbot.waitUntil(entry.exists, timeout=5000)
        text = entry.read_text()
        assert "[Desktop Entry]" in text and f"--config {tmp_path / 'config.toml'}" in text
        dialog.start_at_login.setChecked(False)
        dialog.apply(close=False)
        qtbot.waitUntil(lambda: not entry.exists(), timeout=5000)
