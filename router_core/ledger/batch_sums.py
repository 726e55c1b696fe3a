"""What one written batch adds to today's and this month's figures and to the /metrics
counters, summed by SQLite over the batch's new rows in one query.

The ledger's writer used to add every row up in Python; under load that was a few
microseconds a row of the GIL the event loop's thread needs. SQLite sums with the GIL let
go, so the writer's Python work is per group of alike rows (usually one to three a batch),
not per row. The period figures come from the same SQL definitions `hybridge stats` and the
loaded totals use (periods.AGGREGATES), so the live figures cannot drift from them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, fields
from typing import Any

from router_core.ledger.live import PeriodFigures
from router_core.ledger.metrics import DURATION_BUCKETS, TTFT_BUCKETS
from router_core.ledger.periods import AGGREGATES, day_bounds, day_key, month_bounds, month_key

FIGURE_NAMES = tuple(f.name for f in fields(PeriodFigures) if f.name != "period")
_ZEROS: tuple[float, ...] = tuple(f.default for f in fields(PeriodFigures) if f.name != "period")  # type: ignore[misc]


def bucket_index(column: str, bounds: tuple[float, ...]) -> str:
    """SQL for `bisect.bisect_left(bounds, column)`: how many bounds lie below the value
    (len(bounds): above them all, the +Inf bucket)."""
    return " + ".join(f"({column} > {bound!r})" for bound in bounds)


# A row's period: 2 today (and so this month), 1 this month only, 0 neither (a request that
# started before the day or month began, whose row lands after it).
_PERIOD = (
    "CASE WHEN started_at >= ? AND started_at < ? THEN 2 WHEN started_at >= ? AND started_at < ? THEN 1 ELSE 0 END"
)
_TTFT_SEEN = "ttft_s IS NOT NULL AND outcome = 'ok'"

_QUERY = f"""
SELECT
    {_PERIOD} AS period,
    route, provider, model, outcome,
    CASE WHEN {_TTFT_SEEN} THEN {bucket_index("ttft_s", TTFT_BUCKETS)} END AS ttft_bucket,
    {bucket_index("duration_s", DURATION_BUCKETS)} AS duration_bucket,
    {AGGREGATES},
    COALESCE(SUM(cost_usd IS NULL), 0) AS cost_unknown,
    SUM(CASE WHEN route = 'cloud' THEN cost_usd END) AS cloud_cost_usd,
    COALESCE(SUM(CASE WHEN {_TTFT_SEEN} THEN ttft_s END), 0.0) AS ttft_sum,
    COALESCE(SUM(duration_s), 0.0) AS duration_sum
FROM requests
WHERE id > ?
GROUP BY period, route, provider, model, outcome, ttft_bucket, duration_bucket
"""


@dataclass(slots=True)
class BatchSums:
    """A batch's additions: to the periods current when it was summed, and to the counters
    (one `sqlite3.Row` per group of rows alike in route, model, outcome and buckets)."""

    today: PeriodFigures
    month: PeriodFigures
    groups: list[sqlite3.Row] = field(default_factory=list)


def last_id(conn: sqlite3.Connection) -> int:
    """The highest row id so far: the rows a batch inserts after this are those above it."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM requests").fetchone()[0])


def sum_batch(conn: sqlite3.Connection, after_id: int, now: float) -> BatchSums:
    """The rows above `after_id` (one batch, in the transaction that wrote it), summed."""
    today, month = list(_ZEROS), list(_ZEROS)
    groups = conn.execute(_QUERY, (*day_bounds(now), *month_bounds(now), after_id)).fetchall()
    for group in groups:
        period = group["period"]
        if period:
            values = [group[name] for name in FIGURE_NAMES]
            month = [a + b for a, b in zip(month, values, strict=True)]
            if period == 2:
                today = [a + b for a, b in zip(today, values, strict=True)]
    by_name: list[dict[str, Any]] = [dict(zip(FIGURE_NAMES, figures, strict=True)) for figures in (today, month)]
    return BatchSums(PeriodFigures(day_key(now), **by_name[0]), PeriodFigures(month_key(now), **by_name[1]), groups)
