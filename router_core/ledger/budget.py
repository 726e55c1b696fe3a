"""Cloud budgets: daily and monthly caps on cloud spend, a warning near them, a stop at them.

Spend counts when a request finishes (its cost is known only then), so requests already
running when a cap is reached may pass it a little. Unpriced cloud requests cannot count:
views list them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from router_core.ledger.live import PeriodFigures
from router_core.settings import BudgetSettings
from router_core.types import EscalationAction

Period = Literal["day", "month"]


@dataclass(frozen=True, slots=True)
class BudgetState:
    """What routing needs (exhausted, action) and what views show."""

    exhausted: bool = False
    action: EscalationAction = "keep-local"
    warning: bool = False
    # The cap reached (or neared, when only warning): "day", "month" or "".
    period: str = ""
    day_spent_usd: float = 0.0
    day_cap_usd: float = 0.0  # 0: no cap
    month_spent_usd: float = 0.0
    month_cap_usd: float = 0.0

    @property
    def reason(self) -> str:
        """A line for logs, route reasons and notifications."""
        if not self.period:
            return ""
        spent, cap = (
            (self.day_spent_usd, self.day_cap_usd)
            if self.period == "day"
            else (self.month_spent_usd, self.month_cap_usd)
        )
        what = "daily" if self.period == "day" else "monthly"
        state = "reached" if self.exhausted else f"{spent / cap:.0%} used"
        return f"{what} cloud budget {state} (${spent:.2f} of ${cap:.2f})"


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """Published when spend crosses the warning share of a cap, and when it reaches the cap."""

    level: Literal["warning", "exhausted"]
    period: Period
    spent_usd: float
    cap_usd: float
    action: EscalationAction
    message: str


def budget_state(settings: BudgetSettings, day: PeriodFigures, month: PeriodFigures) -> BudgetState:
    caps = (("day", day.spend_usd, settings.daily_usd), ("month", month.spend_usd, settings.monthly_usd))
    exhausted = [p for p, spent, cap in caps if cap > 0 and spent >= cap]
    warned = [p for p, spent, cap in caps if cap > 0 and spent >= cap * settings.warn_at]
    period = (exhausted or warned or [""])[0]
    return BudgetState(
        exhausted=bool(exhausted),
        action=settings.action,
        warning=bool(warned),
        period=period,
        day_spent_usd=day.spend_usd,
        day_cap_usd=settings.daily_usd,
        month_spent_usd=month.spend_usd,
        month_cap_usd=settings.monthly_usd,
    )


class BudgetAlerts:
    """Says each alert once per period (the period key names the day or the month)."""

    def __init__(self) -> None:
        self._said: set[tuple[str, str, str]] = set()

    def new_alerts(self, settings: BudgetSettings, day: PeriodFigures, month: PeriodFigures) -> list[BudgetAlert]:
        alerts: list[BudgetAlert] = []
        periods: tuple[tuple[Period, PeriodFigures, float], ...] = (
            ("day", day, settings.daily_usd),
            ("month", month, settings.monthly_usd),
        )
        for period, figures, cap in periods:
            if cap <= 0:
                continue
            spent = figures.spend_usd
            level: Literal["warning", "exhausted"] | None = (
                "exhausted" if spent >= cap else "warning" if spent >= cap * settings.warn_at else None
            )
            if level is None:
                continue
            # Reaching the cap implies having passed the warning share.
            levels = ("warning", "exhausted") if level == "exhausted" else ("warning",)
            fresh = [lv for lv in levels if (figures.period, period, lv) not in self._said]
            self._said.update((figures.period, period, lv) for lv in levels)
            if level in fresh:
                what = "daily" if period == "day" else "monthly"
                then = "cloud work stays local" if settings.action == "keep-local" else "cloud requests are refused"
                message = (
                    f"{what} cloud budget reached: ${spent:.2f} of ${cap:.2f}; {then}"
                    if level == "exhausted"
                    else f"{what} cloud budget {spent / cap:.0%} used: ${spent:.2f} of ${cap:.2f}"
                )
                alerts.append(BudgetAlert(level, period, spent, cap, settings.action, message))
        return alerts
