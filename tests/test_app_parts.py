"""The tray app's parts that need no router: state icons, tray state, start at login,
single instance, and the settings form's changes and error placement."""

from __future__ import annotations

import plistlib
import shlex
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtSvg import QSvgRenderer

from app.autostart import Autostart, desktop_entry, launch_agent, windows_command
from app.icons import STATE_ICONS, app_icon, state_icon, svg_bytes
from app.ollama_control import serve_environment
from app.settings_form import (
    apply_user_changes,
    changes_from_form,
    field_for,
    form_from_settings,
    shipped_conventions,
)
from app.single_instance import SingleInstance, ask_running_instance, server_name
from app.tray_state import CLOUD_RECENT_S, tray_state
from router_core.errors import SettingsError
from tests.support.servers import make_settings


@pytest.mark.parametrize("name", [*STATE_ICONS.values(), "hybridge.svg"])
def test_every_icon_is_a_valid_svg_that_renders(qapp, name: str) -> None:
    assert QSvgRenderer(QByteArray(svg_bytes(name))).isValid()
    image = (app_icon() if name == "hybridge.svg" else state_icon(_state_of(name))).pixmap(32, 32).toImage()
    assert image.width() == 32 and image.pixelColor(16, 16).alpha() > 0


def _state_of(file_name: str):
    return next(state for state, name in STATE_ICONS.items() if name == file_name)


@pytest.mark.parametrize(
    ("running", "ollama_up", "privacy", "last_cloud_ago", "expected"),
    [
        (True, True, False, None, "local"),
        (True, None, False, None, "local"),  # not looked at yet: no alarm
        (True, True, False, 10.0, "cloud"),
        (True, True, False, CLOUD_RECENT_S + 1, "local"),
        (True, True, True, 10.0, "privacy"),
        (True, False, True, None, "error"),
        (False, True, False, None, "error"),
    ],
)
def test_tray_state(running, ollama_up, privacy, last_cloud_ago, expected) -> None:
    now = 1_000_000.0
    last = None if last_cloud_ago is None else now - last_cloud_ago
    assert tray_state(running=running, ollama_up=ollama_up, privacy=privacy, last_cloud_at=last, now=now) == expected


def test_autostart_entries_for_each_platform(tmp_path: Path, monkeypatch) -> None:
    command = ["/opt/hybridge bin/hybridge", "--config", "/home/me/100% sure/config.toml"]
    entry = desktop_entry(command)
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    # The Exec key's quoting (Desktop Entry Specification): split like a shell, `%%` is `%`.
    assert shlex.split(exec_line[5:].replace("%%", "%")) == command
    plist = plistlib.loads(launch_agent(command))
    assert plist["ProgramArguments"] == command and plist["RunAtLoad"] is True
    assert windows_command(command) == '"/opt/hybridge bin/hybridge" --config "/home/me/100% sure/config.toml"'

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    linux = Autostart("linux", home=tmp_path)
    assert not linux.is_enabled()
    linux.set(True, tmp_path / "config.toml")
    assert linux.entry_path == tmp_path / "xdg" / "autostart" / "hybridge.desktop" and linux.is_enabled()
    linux.set(False)
    assert not linux.is_enabled()
    mac = Autostart("darwin", home=tmp_path)
    mac.enable()
    assert (
        mac.entry_path is not None and plistlib.loads(mac.entry_path.read_bytes())["Label"] == "dev.hybridge.Hybridge"
    )
    assert "HKEY_CURRENT_USER" in Autostart("win32", home=tmp_path).describe()


def test_a_second_instance_asks_the_first_to_show_its_dashboard(qtbot, tmp_path: Path) -> None:
    name = server_name(tmp_path / "config.toml")
    assert name != server_name(tmp_path / "other.toml")
    first = SingleInstance(name)
    assert first.claim()
    try:
        second = SingleInstance(name)
        with qtbot.waitSignal(first.show_requested, timeout=3000):
            assert not second.claim()
    finally:
        first.close()
    # Once the first is gone, nobody answers and a new one takes over.
    assert not ask_running_instance(name)
    third = SingleInstance(name)
    assert third.claim()
    third.close()


def test_the_form_writes_only_what_changed_and_removes_what_was_removed(tmp_path: Path) -> None:
    settings = make_settings(
        {
            "routing": {"conventions": {"**/payments/**": "billing"}},
            "providers": {"groq": {"kind": "openai", "base_url": "https://g/v1"}},
        }
    )
    form = form_from_settings(settings)
    form.daily_usd = "3"
    form.conventions = [(g, t) for g, t in form.conventions if g not in ("**/payments/**", "**/*.sql")]
    form.providers = [p for p in form.providers if p.name != "groq"]
    result = changes_from_form(form, settings, shipped_conventions())
    assert result.problems == []
    assert result.changes == {"budget": {"daily_usd": 3.0}, "routing": {"conventions": {"**/*.sql": ""}}}
    assert sorted(result.removals) == [("providers", "groq"), ("routing", "conventions", "**/payments/**")]

    config = tmp_path / "config.toml"
    config.write_text(
        '[routing.conventions]\n"**/payments/**" = "billing"\n[providers.groq]\nkind = "openai"\nbase_url = "https://g/v1"\n'
    )
    applied = apply_user_changes(config, result.changes, result.removals)
    assert "groq" not in applied.providers and "**/payments/**" not in applied.routing.conventions
    assert applied.routing.conventions["**/*.sql"] == "" and applied.budget.daily_usd == 3.0

    # A model on a provider that is neither configured nor a preset is refused, naming the
    # key; the file stays. (groq is a preset: `groq/llama` needs no [providers.groq] table.)
    before = config.read_text()
    with pytest.raises(SettingsError) as refused:
        apply_user_changes(config, {"routing": {"cloud_model": "mycloud/llama"}})
    assert refused.value.problems == ["routing.cloud_model: no provider named 'mycloud'"]
    assert config.read_text() == before


def test_problems_land_on_the_most_specific_field() -> None:
    fields = ["server.port", "routing.local_model", "providers", "routing.conventions", "budget.daily_usd"]
    assert field_for("server.port: Input should be less than or equal to 65535", fields) == "server.port"
    assert field_for("routing.local_model: no provider named 'x'", fields) == "routing.local_model"
    assert field_for("providers.groq.base_url: base_url is required", fields) == "providers"
    assert field_for("routing.conventions: '**/[': unclosed bracket", fields) == "routing.conventions"
    assert field_for("routing.fallback_chain[0]: no provider named 'x'", fields) is None
    assert field_for("invalid TOML somewhere", fields) is None


def test_bad_numbers_are_named_before_validation() -> None:
    settings = make_settings({})
    form = form_from_settings(settings)
    form.port, form.warn_at = "80a", "most"
    result = changes_from_form(form, settings, shipped_conventions())
    assert result.problems == ["server.port: '80a' is not a whole number", "budget.warn_at: 'most' is not a number"]


def test_ollama_serve_environment() -> None:
    env = serve_environment("http://127.0.0.1:11500", privacy=True, env={"PATH": "/bin"})
    assert env == {"PATH": "/bin", "OLLAMA_HOST": "127.0.0.1:11500", "OLLAMA_NO_CLOUD": "1"}
    assert "OLLAMA_NO_CLOUD" not in serve_environment("http://[::1]:11434", privacy=False, env={})
    assert serve_environment("http://[::1]:11434", privacy=False, env={})["OLLAMA_HOST"] == "[::1]:11434"
