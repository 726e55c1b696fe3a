"""`hybridge` with no subcommand: the tray app (or, with --no-tray, the dashboard as a window)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from app.bridge import RouterBridge
from app.dashboard import Dashboard
from app.icons import app_icon
from app.opencode_dialog import OpenCodeDialog
from app.quit_signals import quit_on_signals
from app.settings_dialog import SettingsDialog
from app.single_instance import SingleInstance, server_name
from app.tray import Notice, TrayActions, TrayController
from router_core.collector import raise_young_threshold
from router_core.commands.common import config_path, load_settings
from router_core.settings import Settings

log = logging.getLogger(__name__)


class AppShell(QObject):
    """Owns the bridge, the tray and the windows; what the tray menu and a second launch open."""

    def __init__(
        self,
        settings: Settings,
        config: Path,
        *,
        tray: bool = True,
        port: int | None = None,
        service_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.bridge = RouterBridge(settings, config, port=port, service_options=service_options, parent=self)
        self.tray = TrayController(
            self.bridge,
            TrayActions(self.open_dashboard, self.open_settings, self.open_opencode, self.quit),
            parent=self,
        )
        self.tray.noticed.connect(self._noticed)
        self.use_tray = tray and QSystemTrayIcon.isSystemTrayAvailable()
        if tray and not self.use_tray:
            log.warning("no system tray here: showing the dashboard as a window")
        self.dashboard = Dashboard(
            self.bridge,
            open_settings=self.open_settings,
            open_opencode=self.open_opencode,
            quit_on_close=not self.use_tray,
        )
        self.dashboard.first_run.checked.connect(self.tray.set_first_run)
        self.settings_dialog: SettingsDialog | None = None
        self.opencode_dialog: OpenCodeDialog | None = None

    def start(self) -> None:
        self.bridge.start()
        if self.use_tray:
            self.tray.show()
        else:
            self.dashboard.show_and_raise()

    def open_dashboard(self) -> None:
        self.dashboard.show_and_raise()

    def open_settings(self) -> SettingsDialog:
        if self.settings_dialog is None:
            self.settings_dialog = SettingsDialog(self.bridge)
        else:
            self.settings_dialog.load(self.bridge.settings)
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        self.settings_dialog.activateWindow()
        return self.settings_dialog

    def open_opencode(self) -> OpenCodeDialog:
        if self.opencode_dialog is None:
            self.opencode_dialog = OpenCodeDialog(self.bridge)
        else:
            self.opencode_dialog.preview()
        self.opencode_dialog.show()
        self.opencode_dialog.raise_()
        return self.opencode_dialog

    def _noticed(self, notice: Notice) -> None:
        self.dashboard.statusBar().showMessage(f"{notice.title}: {notice.message}", 30_000)

    def quit(self) -> None:
        self.shutdown()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def shutdown(self) -> None:
        self.tray.icon.hide()
        for window in (self.dashboard, self.settings_dialog, self.opencode_dialog):
            if window is not None:
                window.hide()
        self.bridge.shutdown()


def main(args: argparse.Namespace) -> int:
    config = config_path(args)
    settings = load_settings(args)  # a bad file stops here, with the CLI's message
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Hybridge")
    app.setDesktopFileName("hybridge")
    app.setWindowIcon(app_icon())
    instance = SingleInstance(server_name(config))
    if not instance.claim():
        print("hybridge: already running; its dashboard is open now", file=sys.stderr)
        return 0
    shell = AppShell(settings, config, tray=not getattr(args, "no_tray", False))
    instance.show_requested.connect(shell.open_dashboard)
    # With a tray, closing every window keeps the app (and the router) running.
    app.setQuitOnLastWindowClosed(not shell.use_tray)
    raise_young_threshold()  # the router serves from this process too (router_core/collector.py)
    shell.start()
    quit_on_signals(shell.quit, parent=shell)  # SIGTERM/SIGINT quit like the tray's Quit
    try:
        return int(app.exec())
    finally:
        shell.shutdown()
        instance.close()
