"""The Linux applications-menu entry and icon that `hybridge desktop install` writes.

The menu entry is the autostart entry of app/autostart.py plus the keys only a menu reads, so
Name, Exec and Icon are the same in both. The icon is the app's SVG, installed as `hybridge`
in the user's hicolor theme, the name both entries give; Qt's `setDesktopFileName("hybridge")`
(app/main.py) ties the running app's windows to `hybridge.desktop`.

No Qt here: the files are plain text, and the command runs from the headless CLI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from app.autostart import Autostart, desktop_entry, launch_command

DESKTOP_FILE = "hybridge.desktop"
ICON_SOURCE = "hybridge.svg"
# StartupNotify=false: the tray app opens no window, so a launch cursor would spin until timeout.
MENU_KEYS = "Categories=Development;Utility;\nKeywords=LLM;AI;router;Ollama;OpenCode;\nStartupNotify=false\n"
AUTOSTART_ONLY = ("X-GNOME-Autostart",)


def data_home() -> Path:
    """$XDG_DATA_HOME, else ~/.local/share (XDG Base Directory Specification)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


@dataclass(frozen=True)
class DesktopFiles:
    entry: Path
    icon: Path

    @classmethod
    def under(cls, data: Path | None = None) -> DesktopFiles:
        data = data or data_home()
        return cls(data / "applications" / DESKTOP_FILE, data / "icons" / "hicolor" / "scalable" / "apps" / ICON_SOURCE)


def menu_entry(command: list[str]) -> str:
    autostart = desktop_entry(command).splitlines(keepends=True)
    return "".join(line for line in autostart if not line.startswith(AUTOSTART_ONLY)) + MENU_KEYS


def install(config: Path | None = None, data: Path | None = None) -> DesktopFiles:
    files = DesktopFiles.under(data)
    files.icon.parent.mkdir(parents=True, exist_ok=True)
    files.icon.write_bytes(resources.files("router_core.resources").joinpath(ICON_SOURCE).read_bytes())
    files.entry.parent.mkdir(parents=True, exist_ok=True)
    files.entry.write_text(menu_entry(launch_command(config)), encoding="utf-8")
    _refresh_caches(files)
    return files


def remove(data: Path | None = None, autostart: Autostart | None = None) -> list[str]:
    """Remove the menu entry, the icon and the start-at-login entry; what was there, described."""
    files = DesktopFiles.under(data)
    removed = []
    for path in (files.entry, files.icon):
        if path.exists():
            path.unlink()
            removed.append(str(path))
    autostart = autostart or Autostart()
    if autostart.is_enabled():
        autostart.disable()
        removed.append(autostart.describe())
    if removed:
        _refresh_caches(files)
    return removed


def _refresh_caches(files: DesktopFiles) -> None:
    # Current desktops notice new menu entries and icons by themselves; these caches serve
    # the rest. Best effort, and an icon cache is only kept fresh, never created: a cache
    # nobody else updates would hide icons that other programs install later.
    theme = files.icon.parents[2]
    commands = [["update-desktop-database", "-q", str(files.entry.parent)]]
    if (theme / "icon-theme.cache").exists():
        commands.append(["gtk-update-icon-cache", "-q", "-t", "-f", str(theme)])
    for command in commands:
        if shutil.which(command[0]):
            subprocess.run(command, check=False, capture_output=True, timeout=30)
