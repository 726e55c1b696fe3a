"""Backend pools on the Models & hardware tab: each pooled backend's state (routing.pools).

Up or down (and why), what it has loaded with its context, how busy it is by the engine's
own figures and ours, and its last error, as `GET /hybridge/backends` reports them. Hidden
when no pool is configured.
"""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from router_core.providers.pool import BackendState

COLUMNS = ("Backend", "Engine", "Address", "Pool", "State", "Loaded", "Busy", "Last error")
UP = QColor("#2e7d32")
DOWN = QColor("#c62828")


def state_text(state: BackendState) -> str:
    if state.up is None:
        return "not read yet"
    if not state.up:
        return "down"
    return "cooling down" if state.cooling else "up"


def busy_text(state: BackendState) -> str:
    """Ours in flight, and the engine's own running/waiting figures when it reports them."""
    slots = f" of {state.slots} slot{'s' if state.slots != 1 else ''}" if state.slots else ""
    parts = [f"{state.busy}{slots}"]
    if state.running is not None or state.waiting is not None:
        parts.append(f"engine: {state.running or 0} running, {state.waiting or 0} waiting")
    parts.append(f"ours: {state.in_flight}")
    return " · ".join(parts)


def loaded_text(state: BackendState) -> str:
    return ", ".join(f"{name} ({ctx:,})" if ctx else name for name, ctx in state.loaded) or "—"


class BackendsPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Backend pools", parent)
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("backends")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table)
        self.setVisible(False)

    def show_states(self, states: list[BackendState]) -> None:
        self.setVisible(bool(states))
        self.table.setRowCount(len(states))
        for row, state in enumerate(states):
            cells = (
                state.provider,
                state.engine,
                state.address,
                ", ".join(state.pools),
                state_text(state),
                loaded_text(state),
                busy_text(state),
                state.last_error or "",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 4 and state.up is not None:
                    item.setForeground(UP if state.up else DOWN)
                    if state.down_reason:
                        item.setToolTip(f"{state.down_reason}; skipped until the background poll sees it up")
                self.table.setItem(row, col, item)
