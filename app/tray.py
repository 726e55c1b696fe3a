"""The tray icon: state at a glance, a menu rebuilt each time it opens, tooltips and notifications."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app import formatting as fmt
from app.bridge import RouterBridge
from app.icons import state_icon
from app.tray_state import TrayState, tray_state
from router_core.events import KeptLocal
from router_core.first_run import FirstRun
from router_core.ledger.budget import BudgetAlert

PRIVACY_TEXT = "Privacy mode (local only)"
# Kept-local notices repeat at most this often (an agent may send many flagged turns).
KEPT_LOCAL_QUIET_S = 60.0
NOTIFY_MS = 8000


@dataclass(frozen=True, slots=True)
class TrayActions:
    """What the menu opens; the app shell owns the windows."""

    open_dashboard: Callable[[], object]
    open_settings: Callable[[], object]
    open_opencode: Callable[[], object]
    quit: Callable[[], object]


@dataclass(frozen=True, slots=True)
class Notice:
    at: float
    title: str
    message: str
    level: str  # info | warning | critical


class TrayController(QObject):
    noticed = Signal(object)  # Notice, also shown when there is no tray (the dashboard's status bar)

    def __init__(self, bridge: RouterBridge, actions: TrayActions, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.actions = actions
        self.first_run: FirstRun | None = None
        self.state: TrayState = "local"
        # What was said, newest last (the dashboard lists them; tests read them).
        self.notices: deque[Notice] = deque(maxlen=50)
        self._kept_local_said_at = 0.0
        self._ollama_down: set[str] = set()
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.icon = QSystemTrayIcon(state_icon(self.state), self)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.rebuild_menu()
        self.refresh()
        bridge.service_started.connect(self.refresh)
        bridge.service_stopped.connect(self.refresh)
        bridge.service_failed.connect(self._service_failed)
        bridge.privacy_changed.connect(self.refresh)
        bridge.inventory_updated.connect(self.refresh)
        bridge.request_finished.connect(self.refresh)
        bridge.live_stats.connect(self._update_tooltip)
        bridge.budget_alert.connect(self._budget_alert)
        bridge.privacy_kept_local.connect(self._kept_local)
        bridge.ollama_state_changed.connect(self._ollama_state)
        bridge.truncation_warning.connect(lambda w: self.notify("Prompt truncated", w.message, "warning"))
        bridge.operation_failed.connect(lambda message: self.notify("Hybridge", message, "warning"))
        # The cloud icon fades back to local a few minutes after the last cloud answer.
        self._timer = QTimer(self)
        self._timer.setInterval(15_000)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def show(self) -> None:
        self.icon.show()

    # -- the menu (rebuilt each time it opens, so every line is current) -----------------

    def rebuild_menu(self) -> None:
        menu = self.menu
        menu.clear()
        for line in self.status_lines():
            info = menu.addAction(line)
            info.setEnabled(False)
        menu.addSeparator()
        privacy = menu.addAction(PRIVACY_TEXT)
        privacy.setObjectName("privacy")
        privacy.setCheckable(True)
        privacy.setChecked(self.bridge.privacy_enabled)
        privacy.setEnabled(self.bridge.running)
        privacy.toggled.connect(self.bridge.set_privacy)
        live = menu.addAction(self.live_line())
        live.setObjectName("live")
        live.setEnabled(False)
        menu.addSeparator()
        if not self.bridge.running and not self.bridge.starting and not self.bridge.paused:
            self._add(menu, "Retry", "retry", self.bridge.start)
        if self.first_run is not None and not self.first_run.complete:
            left = sum(c.state == "todo" for c in self.first_run.checks)
            self._add(menu, f"Finish first run ({left} steps left)…", "first_run", self.actions.open_dashboard)
        self._add(menu, "Open dashboard", "dashboard", self.actions.open_dashboard)
        self._add(menu, "Copy endpoint URL", "copy_endpoint", self.copy_endpoint)
        self._add(menu, "Set up OpenCode…", "opencode", self.actions.open_opencode)
        self._add(menu, "Settings…", "settings", self.actions.open_settings)
        menu.addSeparator()
        if self.bridge.paused:
            self._add(menu, "Resume router", "pause", self.bridge.resume)
        else:
            pause = self._add(menu, "Pause router", "pause", self.bridge.pause)
            pause.setEnabled(self.bridge.running)
        self._add(menu, "Quit", "quit", self.actions.quit)

    def set_first_run(self, result: FirstRun) -> None:
        """The dashboard's checklist result: the menu offers it while steps are left."""
        self.first_run = result
        self.rebuild_menu()

    def _add(self, menu: QMenu, text: str, name: str, slot: Callable[[], object]) -> QAction:
        action = menu.addAction(text)
        action.setObjectName(name)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def action(self, name: str) -> QAction:
        found = next((a for a in self.menu.actions() if a.objectName() == name), None)
        if found is None:
            raise KeyError(name)
        return found

    def status_lines(self) -> list[str]:
        bridge = self.bridge
        if bridge.paused:
            first = "Paused: not serving"
        elif bridge.running:
            first = f"Serving at {bridge.endpoint_url}"
        elif bridge.starting:
            first = "Starting…"
        else:
            error = bridge.last_status.error if bridge.last_status else None
            if error and ": " in error:
                # What happened, then what to do, on a line of its own (menus do not wrap).
                what, fix = error.split(": ", 1)
                return [f"Stopped: {what}", f"→ {fix}", self.machine_line()]
            first = f"Stopped: {error}" if error else "Stopped"
        return [first, self.machine_line()]

    def machine_line(self) -> str:
        bridge = self.bridge
        ollama = bridge.local_ollama()
        if ollama is None:
            parts = ["Ollama: not checked yet" if bridge.ollama_url() else "Ollama: not configured"]
        elif ollama.up:
            parts = [f"Ollama {ollama.version or '?'}"]
        else:
            parts = ["Ollama is down"]
        hardware = bridge.inventory.hardware if bridge.inventory else None
        if hardware is not None:
            if hardware.gpus:
                names = ", ".join(sorted({g.name for g in hardware.gpus}))
                label = "unified memory" if hardware.unified_memory else "VRAM"
                free, total = fmt.gib(hardware.vram_free_bytes), fmt.gib(hardware.vram_total_bytes)
                parts.append(f"{names} · {free} of {total} {label} free")
            else:
                parts.append("no GPU (CPU only)")
        return " · ".join(parts)

    def live_line(self) -> str:
        return f"{fmt.rate(self.bridge.live_rate())} tok/s · saved {fmt.usd(self.bridge.saved_today() or 0.0)} today"

    def copy_endpoint(self) -> None:
        QGuiApplication.clipboard().setText(self.bridge.endpoint_url)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.actions.open_dashboard()

    # -- icon and tooltip ----------------------------------------------------------------

    def refresh(self, *_: object) -> None:
        bridge = self.bridge
        ollama = bridge.local_ollama()
        state = tray_state(
            running=bridge.running,
            ollama_up=ollama.up if ollama is not None else None,
            privacy=bridge.privacy_enabled,
            last_cloud_at=bridge.last_cloud_at,
            now=time.time(),
        )
        if state != self.state:
            self.state = state
            self.icon.setIcon(state_icon(state))
        self._update_tooltip()

    def tooltip(self) -> str:
        bridge = self.bridge
        mode = "privacy mode: local only" if bridge.privacy_enabled else "local first"
        lines = [f"Hybridge — {mode}", self.status_lines()[0], self.live_line()]
        live = bridge.live
        if live is not None and live.today.cloud_requests:
            lines.append(f"cloud today: {live.today.cloud_requests} requests, {fmt.usd(live.today.spend_usd)}")
        ollama = bridge.local_ollama()
        if ollama is not None and not ollama.up:
            lines.append("Ollama is down")
        lines += bridge.ollama_cloud_lines()
        return "\n".join(lines)

    def _update_tooltip(self, *_: object) -> None:
        self.icon.setToolTip(self.tooltip())

    # -- notifications -------------------------------------------------------------------

    def notify(self, title: str, message: str, level: str = "info") -> None:
        notice = Notice(time.time(), title, message, level)
        self.notices.append(notice)
        self.noticed.emit(notice)
        icon = {
            "warning": QSystemTrayIcon.MessageIcon.Warning,
            "critical": QSystemTrayIcon.MessageIcon.Critical,
        }.get(level, QSystemTrayIcon.MessageIcon.Information)
        if self.icon.isVisible():
            self.icon.showMessage(title, message, icon, NOTIFY_MS)

    def _budget_alert(self, alert: BudgetAlert) -> None:
        level = "critical" if alert.level == "exhausted" else "warning"
        self.notify("Cloud budget", alert.message, level)

    def _kept_local(self, kept: KeptLocal) -> None:
        now = time.time()
        if now - self._kept_local_said_at < KEPT_LOCAL_QUIET_S:
            return
        self._kept_local_said_at = now
        why = f" ({kept.reason})" if kept.reason else ""
        self.notify("Privacy mode", f"Flagged work stayed on this machine{why}: the cloud was not used.")

    def _ollama_state(self, provider: str, up: bool, problem: str) -> None:
        if up:
            if provider in self._ollama_down:
                self._ollama_down.discard(provider)
                self.notify("Ollama is back", f"{provider}: local models are served again.")
        else:
            self._ollama_down.add(provider)
            self.notify("Ollama is down", problem or f"{provider} cannot be reached", "critical")
        self.refresh()

    def _service_failed(self, message: str) -> None:
        self.notify("Hybridge could not start", message, "critical")
        self.refresh()
