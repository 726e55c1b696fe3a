"""The dashboard's first-run checklist: one row per step of router_core/first_run.py, each
saying what it found, with the step's action (Start Ollama, Pull with progress and Cancel,
Set up OpenCode, a cloud key). A pulled model becomes routing.local_model. A cloud key is
tried with a real call first (the provider's model list) and stored in the OS keyring only
when that call works; then one of the models it listed can become routing.cloud_model.
Hidden once every step is done."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from app.bridge import RouterBridge
from app.ollama_control import PullProgress
from router_core.first_run import STEPS, FirstRun, local_ollama, run_checks
from router_core.inventory.hardware.info import HardwareInfo
from router_core.presets import PRESETS
from router_core.settings import Settings

MARKS = {"ok": "✔", "todo": "✘", "optional": "–"}
REREAD_S = 10.0


class FirstRunPanel(QGroupBox):
    checked = Signal(object)  # FirstRun, after each pass of the checks

    def __init__(
        self,
        bridge: RouterBridge,
        *,
        open_opencode: Callable[[], object],
        checks: Callable[[Settings, HardwareInfo | None], FirstRun] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("First run", parent)
        self.setObjectName("first_run")
        self.bridge = bridge
        self.checks = checks or (lambda settings, hardware: run_checks(settings, hardware=hardware))
        self.result: FirstRun | None = None
        self.pulling = ""
        self._reread_at = -REREAD_S
        grid = QGridLayout(self)
        self.rows: dict[str, QLabel] = {}
        for i, step in enumerate(STEPS):
            label = QLabel("…")
            label.setObjectName(f"step_{step}")
            label.setWordWrap(True)
            self.rows[step] = label
            grid.addWidget(label, i, 0)
        self.start_button = QPushButton("Start Ollama")
        self.start_button.clicked.connect(self._start_ollama)
        grid.addWidget(self.start_button, STEPS.index("running"), 1)
        self.pull_button = QPushButton("Pull")
        self.pull_button.clicked.connect(self.pull)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.bridge.cancel_pull(self.pulling))
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        row = STEPS.index("model")
        grid.addWidget(self.pull_button, row, 1)
        grid.addWidget(self.cancel_button, row, 2)
        grid.addWidget(self.progress, row + 1, 0, 1, 3)
        self.progress.hide()
        self.cancel_button.hide()
        self.agent_button = QPushButton("Set up OpenCode…")
        self.agent_button.clicked.connect(lambda: open_opencode())
        # The progress bar takes the row under the model step: the agent step sits one lower.
        grid.removeWidget(self.rows["agent"])
        grid.removeWidget(self.rows["cloud_key"])
        grid.addWidget(self.rows["agent"], STEPS.index("agent") + 1, 0)
        grid.addWidget(self.agent_button, STEPS.index("agent") + 1, 1)
        grid.addWidget(self.rows["cloud_key"], STEPS.index("cloud_key") + 1, 0)
        self.cloud_row = self._cloud_key_row()
        grid.addWidget(self.cloud_row, STEPS.index("cloud_key") + 2, 0, 1, 3)
        grid.setColumnStretch(0, 1)
        bridge.key_verified.connect(self._key_verified)
        bridge.pull_progress.connect(self._pull_progress)
        bridge.pull_finished.connect(self._pull_finished)
        bridge.ollama_start_result.connect(self._started)
        bridge.inventory_updated.connect(lambda _snapshot: self.refresh())
        bridge.settings_applied.connect(lambda _settings: self.refresh())

    def _cloud_key_row(self) -> QWidget:
        """Provider, key, "Test and store key"; after a good test, a listed model to use."""
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        self.key_provider = QComboBox()
        self.key_provider.setObjectName("key_provider")
        self.key_input = QLineEdit()
        self.key_input.setObjectName("key_input")
        self.key_input.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_input.setPlaceholderText("API key (tried once, then kept in the OS keyring)")
        self.key_input.setMinimumWidth(320)
        self.key_button = QPushButton("Test and store key")
        self.key_button.clicked.connect(self.test_key)
        self.key_status = QLabel("")
        self.key_status.setObjectName("key_status")
        self.key_status.setWordWrap(True)
        self.cloud_models = QComboBox()
        self.cloud_models.setObjectName("cloud_models")
        self.use_model_button = QPushButton("Use as cloud model")
        self.use_model_button.clicked.connect(self.use_cloud_model)
        for widget in (self.key_provider, self.key_input, self.key_button, self.cloud_models, self.use_model_button):
            line.addWidget(widget)
        line.addWidget(self.key_status, 1)
        self.cloud_models.hide()
        self.use_model_button.hide()
        return row

    def _key_providers(self) -> list[str]:
        """Cloud providers configured here first, then the presets (usable by name alone)."""
        settings = self.bridge.settings
        configured = [n for n, c in settings.providers.items() if not c.is_local]
        cloud = settings.routing.cloud_model.partition("/")[0]
        first = [cloud] if cloud in configured or cloud in PRESETS else []  # not an Ollama cloud model
        return list(dict.fromkeys([*first, *configured, *PRESETS]))

    def test_key(self) -> None:
        provider, secret = self.key_provider.currentText(), self.key_input.text()
        if not provider or not secret.strip():
            self.key_status.setText("Type a key first.")
            return
        self.key_button.setEnabled(False)
        self.key_status.setText(f"Trying the key with {provider}…")
        self.bridge.verify_and_store_key(provider, secret)

    def _key_verified(self, provider: str, problem: str, models: list[str]) -> None:
        self.key_button.setEnabled(True)
        if problem:
            # Not stored: the field keeps the key so it can be corrected.
            self.key_status.setText(f"✘ not stored: {problem}")
            return
        self.key_input.clear()
        self.key_status.setText(
            f"✔ {provider} accepted the key ({len(models)} models listed); stored in the OS keyring"
        )
        if not self.bridge.settings.routing.cloud_model and models:
            self.cloud_models.clear()
            self.cloud_models.addItems([f"{provider}/{m}" for m in sorted(models)])
            self.cloud_models.show()
            self.use_model_button.show()
        self.refresh()

    def use_cloud_model(self) -> None:
        ref = self.cloud_models.currentText()
        if ref:
            self.bridge.save_settings({"routing": {"cloud_model": ref}})
            self.cloud_models.hide()
            self.use_model_button.hide()

    def refresh(self) -> None:
        """Run the checks off the GUI thread (they make HTTP calls) and show the result."""
        if self.bridge.inventory is None:  # inventory_updated calls again with the hardware
            return
        settings = self.bridge.settings
        hardware = self.bridge.inventory.hardware if self.bridge.inventory is not None else None
        checks = self.checks
        self.bridge.run_background(
            lambda: checks(settings, hardware), self.show_result, lambda exc: self._failed(str(exc))
        )

    def show_result(self, result: FirstRun) -> None:
        self.result = result
        for check in result.checks:
            text = f"{MARKS[check.state]} <b>{check.title}</b>: {check.found}"
            if check.fix:
                text += f" — {check.fix}"
            self.rows[check.step].setText(text)
            self.rows[check.step].setToolTip(check.fix or check.found)
        running = result.check("running").state == "ok"
        # Start Ollama only where there is one to start (the install step says where to get it).
        self.start_button.setVisible(not running and result.check("installed").state == "ok")
        ollama = self.bridge.local_ollama()
        if running and ollama is not None and not ollama.up and time.monotonic() - self._reread_at > REREAD_S:
            # The header and tray still show the last poll's "down": read Ollama again now
            # (at most every REREAD_S, so two views that disagree cannot drive a loop).
            self._reread_at = time.monotonic()
            self.bridge.refresh_inventory()
        want_pull = running and result.check("model").state == "todo" and bool(result.recommended)
        self.pull_button.setVisible(want_pull or bool(self.pulling))
        self.pull_button.setEnabled(not self.pulling)
        self.pull_button.setText(f"Pull {result.recommended}" if result.recommended else "Pull")
        self.agent_button.setVisible(result.check("agent").state == "todo")
        if self.key_provider.count() == 0 or self.key_provider.currentText() not in self._key_providers():
            self.key_provider.clear()
            self.key_provider.addItems(self._key_providers())
        self.cloud_row.setVisible(result.check("cloud_key").state != "ok" or self.use_model_button.isVisible())
        self.setVisible(not result.complete or bool(self.pulling))
        self.checked.emit(result)

    def _failed(self, message: str) -> None:
        self.setTitle(f"First run (the checks failed: {message})")

    def _start_ollama(self) -> None:
        self.start_button.setEnabled(False)
        self.bridge.start_ollama()

    def _started(self, problem: str) -> None:
        self.start_button.setEnabled(True)
        if problem:
            self.rows["running"].setText(f"{MARKS['todo']} <b>Ollama running</b>: {problem}")
            self.rows["running"].setToolTip(problem)

    def pull(self) -> None:
        if self.result is None or not self.result.recommended or self.pulling:
            return
        self.pulling = self.result.recommended
        self.pull_button.setEnabled(False)
        self.cancel_button.show()
        self.progress.setValue(0)
        self.progress.setFormat(f"{self.pulling}: starting")
        self.progress.show()
        self.bridge.pull_model(self.pulling)

    def _pull_progress(self, model: str, progress: PullProgress) -> None:
        if model != self.pulling:
            return
        fraction = progress.fraction
        if fraction is not None:
            self.progress.setValue(round(fraction * 1000))
            # %p is Qt's own percentage of the bar's value, so text and bar always agree.
            self.progress.setFormat(f"{model}: {progress.status} %p%")
        else:
            self.progress.setFormat(f"{model}: {progress.status}")

    def _pull_finished(self, model: str, problem: str) -> None:
        if model != self.pulling:
            return
        self.pulling = ""
        self.cancel_button.hide()
        self.pull_button.setEnabled(True)
        if problem:
            self.progress.hide()
            self.rows["model"].setText(f"{MARKS['todo']} <b>Local model</b>: {problem}")
            self.rows["model"].setToolTip(problem)
            return
        self.progress.setValue(1000)
        self.progress.setFormat(f"{model}: installed")
        # The pulled model serves `auto` and `local` from now on.
        _, url = local_ollama(self.bridge.settings)
        provider = self.bridge.settings.routing.local_model.partition("/")[0] if url else "ollama"
        self.bridge.save_settings({"routing": {"local_model": f"{provider}/{model}"}})
