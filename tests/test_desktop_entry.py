"""`hybridge desktop install|remove`: the Linux menu entry and icon, consistent with the tray's
start-at-login entry (app/autostart.py), and removed together with it.

Entries are checked against the Desktop Entry Specification 1.5
(specifications.freedesktop.org/desktop-entry-spec): a `[Desktop Entry]` group of `Key=Value`
lines, Type/Name/Exec required for an Application, list values ending in `;`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import autostart, desktop_menu
from app.autostart import Autostart

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SHARED_KEYS = ("Type", "Name", "Comment", "Exec", "Icon", "Terminal")


def parse_entry(text: str) -> dict[str, str]:
    lines = text.splitlines()
    assert lines[0] == "[Desktop Entry]"
    entry: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        assert sep and key and key == key.strip() and key not in entry, line
        entry[key] = value
    assert entry["Type"] == "Application" and entry["Name"] and entry["Exec"]
    for key in ("Categories", "Keywords"):
        assert entry.get(key, ";").endswith(";")
    return entry


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def test_the_menu_entry_matches_the_autostart_entry(xdg: Path) -> None:
    config = xdg / "my settings" / "config.toml"  # a space: Exec needs the spec's quoting
    files = desktop_menu.install(config)
    start = Autostart(platform="linux", home=xdg)
    start.enable(config)

    menu = parse_entry(files.entry.read_text())
    login = parse_entry(start.entry_path.read_text())  # type: ignore[union-attr]
    assert {k: menu[k] for k in SHARED_KEYS} == {k: login[k] for k in SHARED_KEYS}
    assert menu["Exec"].endswith(f'--config "{config}"')
    assert menu["Icon"] == "hybridge" and menu["Categories"] == "Development;Utility;"
    assert "X-GNOME-Autostart-enabled" not in menu and login["X-GNOME-Autostart-enabled"] == "true"
    assert files.entry == xdg / "data" / "applications" / "hybridge.desktop"
    assert files.icon == xdg / "data" / "icons" / "hicolor" / "scalable" / "apps" / "hybridge.svg"
    assert files.icon.read_bytes() == (RESOURCES / "hybridge.svg").read_bytes()


def test_a_bundle_starts_its_own_executable(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In a PyInstaller bundle sys.executable is the bundle's `hybridge`, and `-m router_core` means nothing.
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/Hybridge/hybridge")
    assert autostart.launch_command() == ["/opt/Hybridge/hybridge"]
    entry = parse_entry(desktop_menu.install().entry.read_text())
    assert entry["Exec"] == "/opt/Hybridge/hybridge"


def run_cli(xdg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(xdg / "data"), "XDG_CONFIG_HOME": str(xdg / "config")}
    command = [sys.executable, "-m", "router_core", "desktop", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.e2e  # runs a hybridge command as a subprocess
def test_the_command_installs_then_removes_everything(xdg: Path) -> None:
    config = xdg / "config.toml"
    installed = run_cli(xdg, "install", "--config", str(config))
    assert installed.returncode == 0, installed.stderr
    files = desktop_menu.DesktopFiles.under(xdg / "data")
    assert installed.stdout == f"menu entry: {files.entry}\nicon: {files.icon}\n"
    entry = parse_entry(files.entry.read_text())
    # The same command the tray's start-at-login entry runs (the CLI inherits this PATH and Python).
    assert entry["Exec"] == parse_entry(autostart.desktop_entry(autostart.launch_command(config)))["Exec"]
    assert entry["Exec"].endswith(f" --config {config}")
    # The tray's "start at login" adds its entry; uninstalling removes all three.
    login = Autostart(platform="linux", home=xdg)
    login.enable(config)

    removed = run_cli(xdg, "remove")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"removed {files.entry}, {files.icon}, {login.entry_path}\n"
    assert not files.entry.exists() and not files.icon.exists() and not login.is_enabled()
    again = run_cli(xdg, "remove")
    assert (again.returncode, again.stdout) == (0, "nothing to remove\n")
