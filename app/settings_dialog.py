"""Settings: providers and keys, routing rules, budgets and prices, port, start at login.

Every field has its error line beside it. Apply validates the whole result
(router_core.settings.validate), writes only what changed, and restarts the router with
it; a refused change names the field and leaves both the file and the router as they were.
Keys go into the OS keyring and are never read back into this dialog.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.autostart import Autostart
from app.bridge import RouterBridge
from app.icons import app_icon
from app.settings_form import (
    FormChanges,
    FormValues,
    ProviderRow,
    changes_from_form,
    check_user_changes,
    field_for,
    form_from_settings,
    shipped_conventions,
)
from router_core.keys import keyring_name
from router_core.model_choices import cloud_model_choices, local_model_choices
from router_core.settings import Settings, shipped_defaults
from router_core.types import ESCALATION_ACTIONS

ERROR_STYLE = "color: #c62828;"
KINDS = ("ollama", "openai-local", "openai", "anthropic")
PROVIDER_COLUMNS = ("Name", "Kind", "Base URL", "API key (stored in the OS keyring)")


class FieldError(QLabel):
    def __init__(self) -> None:
        super().__init__("")
        self.setStyleSheet(ERROR_STYLE)
        self.setWordWrap(True)
        self.setVisible(False)

    def show_problems(self, problems: list[str]) -> None:
        self.setText("\n".join(problems))
        self.setVisible(bool(problems))


class SettingsDialog(QDialog):
    checked = Signal(list)  # the problems found by Apply's one-pass check ([] when none)

    def __init__(self, bridge: RouterBridge, autostart: Autostart | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.autostart = autostart or Autostart()
        self.setWindowTitle("Hybridge settings")
        self.setWindowIcon(app_icon())
        self.resize(760, 560)
        self.errors: dict[str, FieldError] = {}
        self.inputs: dict[str, QWidget] = {}
        self._pending_keys: dict[str, str] = {}
        self._close_when_applied = False
        self.shipped_providers = set(shipped_defaults().get("providers", {}))
        tabs = QTabWidget()
        tabs.addTab(self._general_tab(), "General")
        tabs.addTab(self._routing_tab(), "Routing")
        tabs.addTab(self._providers_tab(), "Providers && keys")
        tabs.addTab(self._money_tab(), "Budgets && prices")
        self.tabs = tabs
        self.general_error = FieldError()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel
        )
        self.apply_button = buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply_button.clicked.connect(lambda: self.apply(close=False))
        buttons.accepted.connect(lambda: self.apply(close=True))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs, 1)
        layout.addWidget(self.general_error)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        bridge.settings_applied.connect(self._applied)
        bridge.settings_rejected.connect(self._rejected)
        bridge.keys_checked.connect(self._keys_checked)
        bridge.key_stored.connect(self._key_stored)
        self.load(bridge.settings)

    # -- building ----------------------------------------------------------------------------

    def _field(self, form: QFormLayout, label: str, key: str, widget: QWidget, hint: str = "") -> None:
        """A row: the input, its hint, and its error line right under it."""
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(widget)
        if hint:
            note = QLabel(hint)
            note.setWordWrap(True)
            note.setStyleSheet("color: palette(mid);")
            column.addWidget(note)
        error = FieldError()
        column.addWidget(error)
        widget.setObjectName(key)
        self.inputs[key] = widget
        self.errors[key] = error
        form.addRow(label, box)

    def _line(self) -> QLineEdit:
        return QLineEdit()

    def _combo(self, items: tuple[str, ...], editable: bool = False) -> QComboBox:
        combo = QComboBox()
        combo.setEditable(editable)
        combo.addItems(list(items))
        return combo

    def _general_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.port = self._line()
        self._field(
            form,
            "Port",
            "server.port",
            self.port,
            "Clients use http://127.0.0.1:PORT/v1. Applying restarts the router.",
        )
        self.escalation = self._combo(ESCALATION_ACTIONS)
        self._field(form, "Flagged work in privacy mode", "privacy.escalation", self.escalation)
        self.start_at_login = QCheckBox("Start Hybridge when I log in")
        self._field(form, "Start at login", "autostart", self.start_at_login, self.autostart.describe())
        return page

    def _routing_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.local_model = self._combo((), editable=True)
        self._field(
            form, "Local model", "routing.local_model", self.local_model,
            "<provider>/<model>: serves auto and local. Listed: what Ollama has installed, best fit first",
        )  # fmt: skip
        self.cloud_model = self._combo((), editable=True)
        self._field(
            form, "Cloud model", "routing.cloud_model", self.cloud_model,
            "For flagged work; empty: no cloud. Presets (openai/…, anthropic/…) need no provider table, only a key",
        )  # fmt: skip
        self.heavy_model = self._line()
        self._field(form, "Heavy-work model", "routing.heavy_model", self.heavy_model, "Empty: the cloud model")
        self.heavy_tags = self._line()
        self._field(form, "Heavy tags", "routing.heavy_tags", self.heavy_tags, "Comma-separated")
        self.ui_model = self._line()
        self._field(form, "UI-work model", "routing.ui_model", self.ui_model)
        self.ui_tags = self._line()
        self._field(form, "UI tags", "routing.ui_tags", self.ui_tags)
        self.inline_markers = QCheckBox("#local, #cloud and #tag:NAME in a prompt steer routing")
        self._field(form, "Inline markers", "routing.inline_markers", self.inline_markers)
        self.conventions = QTableWidget(0, 2)
        self.conventions.setHorizontalHeaderLabels(["Path glob", "Tag"])
        self.conventions.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.conventions.setMinimumHeight(120)
        box = QWidget()
        row = QVBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.conventions)
        buttons = QHBoxLayout()
        add = QPushButton("Add convention")
        add.clicked.connect(lambda: self._add_convention("", ""))
        remove = QPushButton("Remove selected")
        remove.clicked.connect(lambda: self._remove_selected(self.conventions))
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        row.addLayout(buttons)
        self._field(form, "Path conventions", "routing.conventions", box, "Files an agent touches tag its work")
        return page

    def _providers_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.providers = QTableWidget(0, len(PROVIDER_COLUMNS))
        self.providers.setObjectName("providers")
        self.providers.setHorizontalHeaderLabels(list(PROVIDER_COLUMNS))
        header = self.providers.horizontalHeader()
        # Name and kind as wide as their text; URL and key share the rest, so no header is cut.
        fit, fill = QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Stretch
        for column, mode in enumerate((fit, fit, fill, fill)):
            header.setSectionResizeMode(column, mode)
        self.providers.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        layout.addWidget(self.providers, 1)
        buttons = QHBoxLayout()
        add = QPushButton("Add provider")
        add.clicked.connect(lambda: self._add_provider(ProviderRow("", "openai", ""), new=True))
        remove = QPushButton("Remove selected")
        remove.clicked.connect(self._remove_provider)
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.providers_error = FieldError()
        self.errors["providers"] = self.providers_error
        self.inputs["providers"] = self.providers
        layout.addWidget(self.providers_error)
        note = QLabel(
            "Keys typed here go straight into the OS keyring and are never shown again; "
            "leave a key empty to keep the one stored. Presets (groq, openrouter, …) fill the URL."
        )
        note.setWordWrap(True)
        layout.addWidget(note)
        return page

    def _money_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.daily = self._line()
        self._field(form, "Daily cloud budget (USD)", "budget.daily_usd", self.daily, "0: no cap")
        self.monthly = self._line()
        self._field(form, "Monthly cloud budget (USD)", "budget.monthly_usd", self.monthly, "0: no cap")
        self.warn_at = self._line()
        self._field(form, "Warn at (share of a cap)", "budget.warn_at", self.warn_at, "e.g. 0.8")
        self.budget_action = self._combo(ESCALATION_ACTIONS)
        self._field(form, "At the cap", "budget.action", self.budget_action)
        self.baseline = self._line()
        self._field(
            form, "Baseline model", "pricing.baseline_model", self.baseline,
            "Savings compare against it; empty: the cloud model, else anthropic/claude-sonnet-4-6",
        )  # fmt: skip
        self.electricity = self._line()
        self._field(form, "Electricity (USD per kWh)", "pricing.electricity_price_per_kwh", self.electricity)
        return page

    # -- values in and out -------------------------------------------------------------------

    def load(self, settings: Settings) -> None:
        form = form_from_settings(settings)
        self.port.setText(form.port)
        self.escalation.setCurrentText(form.privacy_escalation)
        self.start_at_login.setChecked(self.autostart.is_enabled())
        inventory = self.bridge.inventory
        pickers = (
            (self.local_model, form.local_model, local_model_choices(settings, inventory)),
            (self.cloud_model, form.cloud_model, ["", *cloud_model_choices(settings, inventory)]),
        )
        for combo, value, models in pickers:
            combo.clear()
            combo.addItems(models)
            combo.setEditText(value)
        self.heavy_model.setText(form.heavy_model)
        self.heavy_tags.setText(form.heavy_tags)
        self.ui_model.setText(form.ui_model)
        self.ui_tags.setText(form.ui_tags)
        self.inline_markers.setChecked(form.inline_markers)
        self.conventions.setRowCount(0)
        for glob, tag in form.conventions:
            self._add_convention(glob, tag)
        self.providers.setRowCount(0)
        for row in form.providers:
            self._add_provider(row)
        self.daily.setText(form.daily_usd)
        self.monthly.setText(form.monthly_usd)
        self.warn_at.setText(form.warn_at)
        self.budget_action.setCurrentText(form.budget_action)
        self.baseline.setText(form.baseline_model)
        self.electricity.setText(form.electricity_price)
        self._show_problems([])
        self.bridge.check_keys()

    def form_values(self) -> FormValues:
        conventions = []
        for i in range(self.conventions.rowCount()):
            glob, tag = (self.conventions.item(i, c) for c in (0, 1))
            conventions.append((glob.text() if glob else "", tag.text() if tag else ""))
        return FormValues(
            port=self.port.text(),
            local_model=self.local_model.currentText(),
            cloud_model=self.cloud_model.currentText(),
            heavy_model=self.heavy_model.text(),
            ui_model=self.ui_model.text(),
            heavy_tags=self.heavy_tags.text(),
            ui_tags=self.ui_tags.text(),
            inline_markers=self.inline_markers.isChecked(),
            conventions=conventions,
            daily_usd=self.daily.text(),
            monthly_usd=self.monthly.text(),
            warn_at=self.warn_at.text(),
            budget_action=self.budget_action.currentText(),
            baseline_model=self.baseline.text(),
            electricity_price=self.electricity.text(),
            privacy_escalation=self.escalation.currentText(),
            providers=[self._provider_row(i) for i in range(self.providers.rowCount())],
        )

    def _add_convention(self, glob: str, tag: str) -> None:
        row = self.conventions.rowCount()
        self.conventions.insertRow(row)
        self.conventions.setItem(row, 0, QTableWidgetItem(glob))
        self.conventions.setItem(row, 1, QTableWidgetItem(tag))

    def _remove_selected(self, table: QTableWidget) -> None:
        for row in sorted({i.row() for i in table.selectedIndexes()}, reverse=True):
            table.removeRow(row)

    def _add_provider(self, provider: ProviderRow, new: bool = False) -> None:
        row = self.providers.rowCount()
        self.providers.insertRow(row)
        name = QTableWidgetItem(provider.name)
        # The reference stays with the row: the key itself is never read back.
        name.setData(Qt.ItemDataRole.UserRole, provider.api_key_ref)
        if provider.name in self.shipped_providers:
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.providers.setItem(row, 0, name)
        kind = self._combo(KINDS)
        kind.setCurrentText(provider.kind)
        self.providers.setCellWidget(row, 1, kind)
        self.providers.setItem(row, 2, QTableWidgetItem(provider.base_url))
        key = QLineEdit()
        key.setEchoMode(QLineEdit.EchoMode.Password)
        key.setPlaceholderText("no key needed" if provider.kind in ("ollama", "openai-local") else "checking keyring…")
        self.providers.setCellWidget(row, 3, key)
        if new:
            self.providers.editItem(name)

    def _provider_row(self, row: int) -> ProviderRow:
        name, url = self.providers.item(row, 0), self.providers.item(row, 2)
        kind = self.providers.cellWidget(row, 1)
        assert isinstance(kind, QComboBox)
        return ProviderRow(
            name.text() if name else "",
            kind.currentText(),
            url.text() if url else "",
            str(name.data(Qt.ItemDataRole.UserRole) or "") if name else "",
        )

    def key_field(self, provider: str) -> QLineEdit:
        for row in range(self.providers.rowCount()):
            item = self.providers.item(row, 0)
            if item is not None and item.text() == provider:
                widget = self.providers.cellWidget(row, 3)
                assert isinstance(widget, QLineEdit)
                return widget
        raise KeyError(provider)

    def _remove_provider(self) -> None:
        for row in sorted({i.row() for i in self.providers.selectedIndexes()}, reverse=True):
            item = self.providers.item(row, 0)
            if item is not None and item.text() in self.shipped_providers:
                self.providers_error.show_problems([f"providers.{item.text()}: shipped with Hybridge, kept"])
                continue
            self.providers.removeRow(row)

    # -- applying ----------------------------------------------------------------------------

    def apply(self, close: bool) -> None:
        """Check the whole form in one pass (every bad value, and each changed cloud model
        with no key), off the GUI thread; save only when nothing is wrong."""
        form = self.form_values()
        result = changes_from_form(form, self.bridge.settings, shipped_conventions())
        typed = {row.name.strip() for row in form.providers if row.name.strip() and self._typed_key(row.name.strip())}
        path = self.bridge.config_path
        self.apply_button.setEnabled(False)
        self.status.setText("Checking…")
        self.bridge.run_background(
            lambda: check_user_changes(path, result.changes, result.removals, typed),
            lambda problems: self._checked(result, problems, close),
            lambda exc: self._rejected([f"cannot check the settings: {exc}"]),
        )

    def _typed_key(self, provider: str) -> str:
        try:
            return self.key_field(provider).text()
        except KeyError:
            return ""

    def _checked(self, result: FormChanges, found: list[str], close: bool) -> None:
        problems = result.problems + [p for p in found if p not in result.problems]
        # A missing key can also be typed here, beside the provider.
        problems = [p + " (or type it under Providers & keys)" if "has no API key" in p else p for p in problems]
        self.checked.emit(problems)
        if problems:
            self._rejected(problems)
            return
        self._pending_keys = {}
        for row in range(self.providers.rowCount()):
            provider = self._provider_row(row)
            key = self._typed_key(provider.name) if provider.name else ""
            if key:
                self._pending_keys[provider.name] = key
        self._apply_autostart()
        self._close_when_applied = close
        if not result.changes and not result.removals:
            self._applied(self.bridge.settings, restarted=False)
            return
        self.status.setText("Checking and saving…")
        self.bridge.save_settings(result.changes, result.removals)

    def _apply_autostart(self) -> None:
        wanted = self.start_at_login.isChecked()
        if wanted == self.autostart.is_enabled():
            return
        config = self.bridge.config_path

        def failed(exc: BaseException) -> None:
            self.errors["autostart"].show_problems([f"cannot change start at login: {exc}"])

        self.bridge.run_background(lambda: self.autostart.set(wanted, config), lambda _: None, failed)

    def _applied(self, settings: Settings, restarted: bool = True) -> None:
        self.apply_button.setEnabled(True)
        self._show_problems([])
        for provider, key in self._pending_keys.items():
            conf = settings.providers.get(provider)
            ref = conf.api_key if conf is not None else ""
            if ref.startswith("env:"):
                self.errors["providers"].show_problems(
                    [f"providers.{provider}: its key is read from ${ref[4:]}; set that variable instead"]
                )
                continue
            self.bridge.store_key(provider, keyring_name(provider, ref), key)
            self.key_field(provider).clear()
        self._pending_keys = {}
        self.status.setText("Saved and applied (the router restarted)." if restarted else "Saved.")
        if self._close_when_applied:
            self.accept()

    def _rejected(self, problems: list[str]) -> None:
        self.apply_button.setEnabled(True)
        self._show_problems(problems)
        self.status.setText("Not saved: the settings in force are unchanged.")

    def _show_problems(self, problems: list[str]) -> None:
        by_field: dict[str, list[str]] = {}
        general: list[str] = []
        for problem in problems:
            name = field_for(problem, self.errors)
            if name is None:
                general.append(problem)
            else:
                by_field.setdefault(name, []).append(problem.split(": ", 1)[-1])
        for name, error in self.errors.items():
            error.show_problems(by_field.get(name, []))
            widget = self.inputs.get(name)
            if widget is not None:
                widget.setStyleSheet("border: 1px solid #c62828;" if name in by_field else "")
        self.general_error.show_problems(general)
        if by_field:
            self._show_tab_of(next(iter(by_field)))

    def _show_tab_of(self, name: str) -> None:
        widget = self.inputs.get(name)
        for index in range(self.tabs.count()):
            page = self.tabs.widget(index)
            if widget is not None and page is not None and page.isAncestorOf(widget):
                self.tabs.setCurrentIndex(index)
                return

    def problems_shown(self) -> dict[str, str]:
        """Field -> its error text, for every field showing one."""
        return {name: e.text() for name, e in self.errors.items() if e.text()}

    def _keys_checked(self, found: dict[str, bool]) -> None:
        for provider, present in found.items():
            try:
                field = self.key_field(provider)
            except KeyError:
                continue
            field.setPlaceholderText("a key is stored (type to replace)" if present else "no key set: type one")

    def _key_stored(self, provider: str, problem: str) -> None:
        if problem:
            self.errors["providers"].show_problems([f"providers.{provider}: {problem}"])
            return
        with contextlib.suppress(KeyError):
            self.key_field(provider).setPlaceholderText("a key is stored (type to replace)")
