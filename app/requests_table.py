"""Recent requests: a table model fed by ledger rows (history) and ledger entries (live), with a filter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor

from app import formatting as fmt
from router_core.ledger.entry import LedgerEntry, decode_rate
from router_core.records import RequestRecord

COLUMNS = ("Time", "Client", "Route", "Model", "Reason", "Tokens in/out", "tok/s", "Cost", "Saved")
MAX_ROWS = 1000
ROUTE_COLORS = {"local": QColor("#2e7d32"), "cloud": QColor("#1565c0")}
ERROR_COLOR = QColor("#c62828")
ModelIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True, slots=True)
class RequestRow:
    request_id: str
    started_at: float
    client: str
    route: str
    model: str  # provider/model that answered (or was tried)
    reason: str
    outcome: str
    input_tokens: int
    output_tokens: int
    tokens_per_second: float | None
    cost_usd: float | None
    savings_usd: float | None
    # Why there is no per-token cost ("Ollama cloud (subscription)"), shown in its place.
    price_note: str | None = None
    # What went wrong, as the client was told ("" for an answered request).
    error: str = ""

    def cells(self) -> tuple[str, ...]:
        route = self.route or "—"
        if self.outcome != "ok":
            route = f"{route} ({self.outcome})"
        return (
            fmt.clock(self.started_at),
            short_client(self.client),
            route,
            self.model,
            self.reason,
            f"{fmt.tokens(self.input_tokens)} / {fmt.tokens(self.output_tokens)}",
            fmt.rate(self.tokens_per_second),
            self.price_note or fmt.usd(self.cost_usd),
            "—" if self.price_note else fmt.usd(self.savings_usd),
        )


def tooltip(row: RequestRow) -> str:
    """The request's id, client and reason; for a request that did not get its answer, what
    went wrong (the message its client got), first."""
    lines = [row.request_id, row.client, row.reason if row.reason != row.error else ""]
    if row.outcome != "ok":
        what = row.error or f"no error message was recorded (outcome: {row.outcome})"
        lines.insert(0, f"{row.outcome}: {what}")
    return "\n".join(line for line in lines if line)


def short_client(user_agent: str) -> str:
    """`opencode/0.15.0 ai-sdk/...` reads as `opencode/0.15.0`."""
    return user_agent.split(" ", 1)[0] if user_agent else "—"


def _model(provider: str, model: str) -> str:
    return f"{provider}/{model}" if provider else model or "—"


def row_from_entry(entry: LedgerEntry) -> RequestRow:
    r = entry.record
    return RequestRow(
        r.request_id, r.started_at, r.client, r.route, _model(r.provider, r.model), r.reason, r.outcome,
        r.usage.input_tokens, r.usage.output_tokens, entry.decode_tps, entry.costing.cost_usd,
        entry.costing.savings_usd, entry.costing.price_note, r.error,
    )  # fmt: skip


def row_from_record(r: RequestRecord) -> RequestRow:
    """A request the ledger did not price (ledger off): no cost or savings."""
    return RequestRow(
        r.request_id, r.started_at, r.client, r.route, _model(r.provider, r.model), r.reason, r.outcome,
        r.usage.input_tokens, r.usage.output_tokens, decode_rate(r), None, None, None, r.error,
    )  # fmt: skip


def row_from_ledger(row: dict[str, Any]) -> RequestRow:
    """A row of router_core.ledger.reports.request_rows."""
    return RequestRow(
        str(row["request_id"]), float(row["started_at"]), str(row["client"] or ""), str(row["route"] or ""),
        _model(str(row["provider"] or ""), str(row["model"] or "")), str(row["reason"] or ""), str(row["outcome"]),
        int(row["input_tokens"] or 0), int(row["output_tokens"] or 0), row["decode_tps"], row["cost_usd"],
        row["savings_usd"], row.get("price_note"), str(row.get("error") or ""),
    )  # fmt: skip


class RequestsModel(QAbstractTableModel):
    """Newest first; at most MAX_ROWS."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RequestRow] = []
        self._ids: set[str] = set()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cells()[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(row)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 2:
            return ERROR_COLOR if row.outcome in ("error", "refused", "interrupted") else ROUTE_COLORS.get(row.route)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 5:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def add(self, row: RequestRow) -> None:
        if row.request_id in self._ids:
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.rows.insert(0, row)
        self._ids.add(row.request_id)
        self.endInsertRows()
        if len(self.rows) > MAX_ROWS:
            self.beginRemoveRows(QModelIndex(), MAX_ROWS, len(self.rows) - 1)
            for dropped in self.rows[MAX_ROWS:]:
                self._ids.discard(dropped.request_id)
            del self.rows[MAX_ROWS:]
            self.endRemoveRows()

    def load(self, rows: list[RequestRow]) -> None:
        """History from the ledger (oldest first), merged with what arrived live meanwhile."""
        merged = {r.request_id: r for r in rows}
        merged.update({r.request_id: r for r in self.rows})
        self.beginResetModel()
        self.rows = sorted(merged.values(), key=lambda r: r.started_at, reverse=True)[:MAX_ROWS]
        self._ids = {r.request_id for r in self.rows}
        self.endResetModel()


class RequestsFilter(QSortFilterProxyModel):
    """Text in any column (case-insensitive), and a route: all, local, cloud or errors."""

    def __init__(self, model: RequestsModel) -> None:
        super().__init__()
        self.setSourceModel(model)
        self._text = ""
        self._route = "all"

    def set_text(self, text: str) -> None:
        self._refilter(text.strip().lower(), self._route)

    def set_route(self, route: str) -> None:
        self._refilter(self._text, route)

    def _refilter(self, text: str, route: str) -> None:
        # Qt 6.10 replaced invalidateFilter() with begin/endFilterChange(); older ones lack those.
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            self._text, self._route = text, route
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._text, self._route = text, route
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        model = self.sourceModel()
        assert isinstance(model, RequestsModel)
        row = model.rows[source_row]
        if self._route == "errors" and row.outcome == "ok":
            return False
        if self._route == "blocked" and row.outcome != "refused":
            return False
        if self._route in ("local", "cloud") and row.route != self._route:
            return False
        return not self._text or any(self._text in cell.lower() for cell in (*row.cells(), row.request_id))
