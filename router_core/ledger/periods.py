"""Today's and this month's figures (local time): loaded from the ledger, then kept current.

One SQL definition (AGGREGATES) serves the loaded figures, each written batch's additions
(ledger/batch_sums.py) and `hybridge stats`, so the live view, the budget and the reports agree:
- spend: the cost of priced cloud requests;
- baseline and savings: over the requests whose actual and baseline prices are both known;
- unpriced: requests left out of those sums for want of a price.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import fields, replace

from router_core.ledger.live import PeriodFigures

# One SQL definition of every figure, for any WHERE and GROUP BY.
AGGREGATES = """
    COUNT(*) AS requests,
    COALESCE(SUM(route = 'local'), 0) AS local_requests,
    COALESCE(SUM(route = 'cloud'), 0) AS cloud_requests,
    COALESCE(SUM(input_tokens), 0) AS input_tokens,
    COALESCE(SUM(output_tokens), 0) AS output_tokens,
    COALESCE(SUM(cache_read_tokens), 0) AS cache_read_tokens,
    COALESCE(SUM(cache_write_tokens), 0) AS cache_write_tokens,
    COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens,
    COALESCE(SUM(CASE WHEN route = 'cloud' THEN cost_usd END), 0.0) AS spend_usd,
    COALESCE(SUM(cost_usd IS NULL AND COALESCE(price_key, '') != 'ollama-cloud'), 0) AS unpriced_cost,
    COALESCE(SUM(CASE WHEN savings_usd IS NOT NULL THEN baseline_cost_usd END), 0.0) AS baseline_usd,
    COALESCE(SUM(savings_usd), 0.0) AS savings_usd,
    COALESCE(SUM(savings_usd IS NULL AND COALESCE(price_key, '') != 'ollama-cloud'), 0) AS unpriced_requests,
    COALESCE(SUM(price_key = 'ollama-cloud'), 0) AS subscription_requests,
    COALESCE(SUM(outcome = 'refused'), 0) AS refused_requests,
    COALESCE(SUM(outcome = 'refused' AND error_kind = 'privacy_refused'), 0) AS privacy_refused,
    COALESCE(SUM(route = 'local' AND energy_estimated = 1), 0) AS energy_estimated,
    COALESCE(SUM(energy_wh), 0.0) AS energy_wh,
    COALESCE(SUM(energy_cost_usd), 0.0) AS energy_cost_usd,
    COALESCE(SUM(route = 'local' AND energy_wh IS NULL), 0) AS electricity_unmeasured
"""


def _midnight(year: int, month: int, day: int) -> float:
    # mktime normalises day 32 or month 13 into the next month or year.
    return time.mktime((year, month, day, 0, 0, 0, 0, 0, -1))


def day_bounds(at: float) -> tuple[float, float]:
    t = time.localtime(at)
    return _midnight(t.tm_year, t.tm_mon, t.tm_mday), _midnight(t.tm_year, t.tm_mon, t.tm_mday + 1)


def month_bounds(at: float) -> tuple[float, float]:
    t = time.localtime(at)
    return _midnight(t.tm_year, t.tm_mon, 1), _midnight(t.tm_year, t.tm_mon + 1, 1)


def day_key(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(at))


def month_key(at: float) -> str:
    return time.strftime("%Y-%m", time.localtime(at))


def figures_between(conn: sqlite3.Connection, period: str, start: float, end: float) -> PeriodFigures:
    row = conn.execute(f"SELECT {AGGREGATES} FROM requests WHERE started_at >= ? AND started_at < ?", (start, end))
    r = row.fetchone()
    return PeriodFigures(
        period=period,
        requests=r["requests"],
        local_requests=r["local_requests"],
        cloud_requests=r["cloud_requests"],
        spend_usd=r["spend_usd"],
        baseline_usd=r["baseline_usd"],
        savings_usd=r["savings_usd"],
        unpriced_requests=r["unpriced_requests"],
        energy_wh=r["energy_wh"],
        energy_cost_usd=r["energy_cost_usd"],
        electricity_unmeasured=r["electricity_unmeasured"],
        refused_requests=r["refused_requests"],
        privacy_refused=r["privacy_refused"],
        subscription_requests=r["subscription_requests"],
        energy_estimated=r["energy_estimated"],
    )


def _plus(a: PeriodFigures, b: PeriodFigures) -> PeriodFigures:
    return replace(a, **{f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(a) if f.name != "period"})


class PeriodTotals:
    """Running figures for the current day and month; read from any thread."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        now = clock()
        self._day = PeriodFigures(day_key(now))
        self._month = PeriodFigures(month_key(now))
        self._lock = threading.Lock()

    def load(self, conn: sqlite3.Connection) -> None:
        now = self._clock()
        day = figures_between(conn, day_key(now), *day_bounds(now))
        month = figures_between(conn, month_key(now), *month_bounds(now))
        with self._lock:
            self._day, self._month = day, month

    def add(self, today: PeriodFigures, month: PeriodFigures) -> None:
        """A written batch's figures (ledger/batch_sums.py), each added to its period when that
        period is still the current one."""
        with self._lock:
            self._roll(self._clock())
            if today.period == self._day.period:
                self._day = _plus(self._day, today)
            if month.period == self._month.period:
                self._month = _plus(self._month, month)

    def _roll(self, now: float) -> None:
        if day_key(now) != self._day.period:
            self._day = PeriodFigures(day_key(now))
        if month_key(now) != self._month.period:
            self._month = PeriodFigures(month_key(now))

    def current(self) -> tuple[PeriodFigures, PeriodFigures]:
        """(today, this month), empty when the period changed since the last request."""
        now = self._clock()
        with self._lock:
            self._roll(now)
            return self._day, self._month
