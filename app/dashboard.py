"""The dashboard: live figures and charts, recent requests, models and hardware, Ollama."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import formatting as fmt
from app.backends_panel import BackendsPanel
from app.bridge import LedgerHistory, RouterBridge
from app.charts import LiveRateChart, SavingsChart
from app.first_run_panel import FirstRunPanel
from app.icons import app_icon
from app.machine_panel import MachinePanel
from app.ollama_panel import OllamaPanel
from app.requests_table import (
    RequestsFilter,
    RequestsModel,
    row_from_entry,
    row_from_ledger,
    row_from_record,
)
from router_core.ledger.baseline import describe as describe_baseline
from router_core.ledger.entry import LedgerEntry
from router_core.ledger.live import LiveSnapshot
from router_core.privacy.state import PrivacyStatus
from router_core.records import RequestRecord

ROUTE_FILTERS = (
    ("All routes", "all"), ("Local", "local"), ("Cloud", "cloud"), ("Errors", "errors"), ("Blocked", "blocked"),
)  # fmt: skip


class Dashboard(QMainWindow):
    def __init__(
        self,
        bridge: RouterBridge,
        *,
        open_settings: Callable[[], object],
        open_opencode: Callable[[], object],
        quit_on_close: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.quit_on_close = quit_on_close
        self.setWindowTitle("Hybridge")
        self.setWindowIcon(app_icon())
        self.resize(1100, 760)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(self._header(open_settings, open_opencode))
        self.first_run = FirstRunPanel(bridge, open_opencode=open_opencode)
        layout.addWidget(self.first_run)
        bridge.service_started.connect(lambda _status: self.first_run.refresh())
        tabs = QTabWidget()
        tabs.addTab(self._activity_tab(), "Activity")
        tabs.addTab(self._machine_tab(), "Models && hardware")
        self.tabs = tabs
        layout.addWidget(tabs, 1)
        self.setCentralWidget(central)
        bridge.service_started.connect(self._update_header)
        bridge.service_stopped.connect(self._update_header)
        bridge.service_failed.connect(self._update_header)
        bridge.privacy_changed.connect(self._privacy_changed)
        bridge.live_stats.connect(self._live)
        bridge.ledger_entry.connect(self._ledger_entry)
        bridge.request_finished.connect(self._request_finished)
        bridge.history_loaded.connect(self._history)
        bridge.inventory_updated.connect(lambda snapshot: self.machine.show_snapshot(snapshot, bridge.settings.context))
        bridge.inventory_updated.connect(self._update_header)
        bridge.backends_updated.connect(self.backends.show_states)
        self.backends.show_states(bridge.backends)
        if bridge.inventory is not None:
            self.machine.show_snapshot(bridge.inventory, bridge.settings.context)
            self.ollama.show_snapshot(bridge.inventory)
        self._update_header()

    # -- layout ----------------------------------------------------------------------------

    def _header(self, open_settings: Callable[[], object], open_opencode: Callable[[], object]) -> QHBoxLayout:
        row = QHBoxLayout()
        self.status_label = QLabel()
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.live_label = QLabel()
        self.live_label.setObjectName("live")
        font = self.live_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.live_label.setFont(font)
        self.privacy_box = QCheckBox("Privacy mode (local only)")
        self.privacy_box.setObjectName("privacy")
        self.privacy_box.clicked.connect(self.bridge.set_privacy)
        settings = QPushButton("Settings…")
        settings.clicked.connect(lambda: open_settings())
        opencode = QPushButton("Set up OpenCode…")
        opencode.clicked.connect(lambda: open_opencode())
        column = QVBoxLayout()
        column.addWidget(self.live_label)
        column.addWidget(self.status_label)
        row.addLayout(column, 1)
        row.addWidget(self.privacy_box)
        row.addWidget(opencode)
        row.addWidget(settings)
        return row

    def _activity_tab(self) -> QWidget:
        self.live_chart = LiveRateChart()
        self.savings_chart = SavingsChart()
        charts = QSplitter(Qt.Orientation.Horizontal)
        charts.addWidget(self.live_chart)
        charts.addWidget(self.savings_chart)
        self.requests = RequestsModel()
        self.requests_filter = RequestsFilter(self.requests)
        self.filter_text = QLineEdit()
        self.filter_text.setPlaceholderText("Filter: model, client, reason…")
        self.filter_text.setClearButtonEnabled(True)
        self.filter_text.textChanged.connect(self.requests_filter.set_text)
        self.filter_route = QComboBox()
        for label, value in ROUTE_FILTERS:
            self.filter_route.addItem(label, value)
        self.filter_route.currentIndexChanged.connect(
            lambda _: self.requests_filter.set_route(str(self.filter_route.currentData()))
        )
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Recent requests"))
        filters.addStretch(1)
        filters.addWidget(self.filter_route)
        filters.addWidget(self.filter_text, 1)
        self.table = QTableView()
        self.table.setModel(self.requests_filter)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in enumerate((70, 130, 70, 190, 260, 110, 60, 75, 75)):
            self.table.setColumnWidth(column, width)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)  # the reason takes the room left
        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addLayout(filters)
        table_layout.addWidget(self.table)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(charts)
        split.addWidget(table_box)
        split.setSizes([300, 400])
        return split

    def _machine_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.machine = MachinePanel()
        self.backends = BackendsPanel()
        self.ollama = OllamaPanel(self.bridge)
        layout.addWidget(self.machine, 1)
        layout.addWidget(self.backends)
        layout.addWidget(self.ollama)
        return page

    # -- updates ---------------------------------------------------------------------------

    def _update_header(self, *_: object) -> None:
        bridge = self.bridge
        if bridge.paused:
            status = "Paused: not serving."
        elif bridge.running:
            status = f"Serving at <b>{bridge.endpoint_url}</b>"
        elif bridge.starting or bridge.last_status is None:
            status = "Starting…"
        else:
            status = f"<span style='color:#c62828'>Stopped: {bridge.last_status.error or 'not running'}</span>"
        ollama = bridge.local_ollama()
        if ollama is not None:
            status += (
                f" · Ollama {ollama.version or '?'}"
                if ollama.up
                else " · <span style='color:#c62828'>Ollama is down</span>"
            )
        self.status_label.setText(status)
        self.privacy_box.setEnabled(bridge.running)
        self.privacy_box.setChecked(bridge.privacy_enabled)
        self._live_text()

    def _live_text(self) -> None:
        bridge = self.bridge
        text = f"{fmt.rate(bridge.live_rate())} tok/s · saved {fmt.usd(bridge.saved_today() or 0.0)} today"
        live = bridge.live
        if live is not None:
            text += f" · cloud spend {fmt.usd(live.today.spend_usd)} today, {fmt.usd(live.month.spend_usd)} this month"
            # What privacy mode stopped (the rows: the "Blocked" filter of the requests table).
            text += f" · blocked by privacy: {live.today.privacy_refused} today"
        self.live_label.setText(text)
        # How "saved" is computed, in the same words as `hybridge stats` and /hybridge/stats.
        ledger_baseline = bridge.baseline_model()
        if ledger_baseline:
            self.live_label.setToolTip("saved = " + describe_baseline(ledger_baseline) + ", less local electricity")

    def _privacy_changed(self, status: PrivacyStatus) -> None:
        self.privacy_box.setChecked(status.enabled)

    def _live(self, snapshot: LiveSnapshot) -> None:
        self.live_chart.add_point(snapshot.local_tokens_per_second, snapshot.cloud_tokens_per_second, snapshot.at)
        self._live_text()

    def _ledger_entry(self, entry: LedgerEntry) -> None:
        self.requests.add(row_from_entry(entry))
        self.savings_chart.add_entry(entry)

    def _request_finished(self, record: RequestRecord) -> None:
        if not self.bridge.has_ledger:
            # No ledger: the row comes without cost or savings.
            self.requests.add(row_from_record(record))

    def _history(self, history: LedgerHistory) -> None:
        self.requests.load([row_from_ledger(r) for r in history.rows])
        self.savings_chart.load(history)

    # -- window ----------------------------------------------------------------------------

    def show_and_raise(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.quit_on_close:
            event.accept()
            return
        # With a tray icon, closing only hides: the router keeps serving.
        event.ignore()
        self.hide()
