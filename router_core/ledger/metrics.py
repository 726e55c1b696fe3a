"""Prometheus text exposition (format 0.0.4) of the ledger's figures, series named hybridge_*.

Counters and histograms count since this router started (Prometheus handles restarts);
gauges give the live window, today's and this month's figures, and the budget.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from router_core.ledger.budget import BudgetState
from router_core.ledger.live import LiveSnapshot, PeriodFigures

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
_TOKEN_COLUMNS = tuple(f"{kind}_tokens" for kind in TOKEN_KINDS)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}" if labels else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self._hits = [0] * len(buckets)  # per bucket: the smallest bound at or above the value
        self.total = 0
        self.sum = 0.0

    def add(self, bucket: int, count: int, total: float) -> None:
        """`count` values summing to `total`, all in `bucket` (bisect_left of the bounds)."""
        if bucket < len(self._hits):
            self._hits[bucket] += count
        self.total += count
        self.sum += total

    @property
    def counts(self) -> list[int]:
        """Prometheus' cumulative bucket counts (values at or below each bound)."""
        return list(itertools.accumulate(self._hits))


class Group(Protocol):
    """A group of alike rows' count and sums, by column name (a `sqlite3.Row` of batch_sums)."""

    def __getitem__(self, key: str, /) -> Any: ...


# What Counters.add_groups files a group under, worked out once per (route, provider, model, outcome).
_LabelSet = tuple[Labels, Labels, tuple[Labels, ...], Labels]


class Counters:
    """Running totals since start, written by the ledger's thread, read by /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[Labels, int] = defaultdict(int)
        self.tokens: dict[Labels, int] = defaultdict(int)
        self.cost: dict[Labels, float] = defaultdict(float)
        self.unpriced: dict[Labels, int] = defaultdict(int)
        self.baseline = 0.0
        self.savings = 0.0
        self.energy_wh = 0.0
        self.energy_cost = 0.0
        self.ttft: dict[Labels, _Histogram] = {}
        self.duration: dict[Labels, _Histogram] = {}
        self._label_sets: dict[tuple[str, str, str, str], _LabelSet] = {}

    def _labels_of(self, route: str, provider: str, model_name: str, outcome: str) -> _LabelSet:
        key = (route, provider, model_name, outcome)
        found = self._label_sets.get(key)
        if found is None:
            model = f"{provider}/{model_name}" if provider else ""
            by_model: Labels = (("route", route or "none"), ("model", model))
            found = (
                by_model,
                (*by_model, ("outcome", outcome)),
                tuple((*by_model, ("kind", kind)) for kind in TOKEN_KINDS),
                (("route", route or "none"),),
            )
            if len(self._label_sets) >= 4096:  # a bound, whatever names clients send
                self._label_sets.clear()
            self._label_sets[key] = found
        return found

    def add_groups(self, groups: Iterable[Group]) -> None:
        """A written batch, as ledger/batch_sums.py sums it: per group of rows alike in route,
        provider, model, outcome and histogram buckets, their count and sums."""
        with self._lock:
            for g in groups:
                label_set = self._labels_of(g["route"], g["provider"], g["model"], g["outcome"])
                by_model, by_outcome, by_kind, route = label_set
                count = g["requests"]
                self.requests[by_outcome] += count
                for labels, column in zip(by_kind, _TOKEN_COLUMNS, strict=True):
                    if g[column]:
                        self.tokens[labels] += g[column]
                if g["cost_unknown"]:
                    self.unpriced[by_model] += g["cost_unknown"]
                if g["cloud_cost_usd"] is not None:
                    self.cost[by_model] += g["cloud_cost_usd"]
                self.baseline += g["baseline_usd"]
                self.savings += g["savings_usd"]
                self.energy_wh += g["energy_wh"]
                self.energy_cost += g["energy_cost_usd"]
                if g["ttft_bucket"] is not None:
                    ttft = self.ttft.get(route)
                    if ttft is None:
                        ttft = self.ttft[route] = _Histogram(TTFT_BUCKETS)
                    ttft.add(g["ttft_bucket"], count, g["ttft_sum"])
                duration = self.duration.get(route)
                if duration is None:
                    duration = self.duration[route] = _Histogram(DURATION_BUCKETS)
                duration.add(g["duration_bucket"], count, g["duration_sum"])

    def render(self, live: LiveSnapshot, budget: BudgetState) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, Labels, float]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{series}{_labels(labels)} {_number(value)}" for series, labels, value in samples)

        def simple(name: str, kind: str, help_text: str, values: Iterable[tuple[Labels, float]]) -> None:
            family(name, kind, help_text, [(name, labels, value) for labels, value in values])

        def histograms(name: str, help_text: str, data: dict[Labels, _Histogram]) -> None:
            samples: list[tuple[str, Labels, float]] = []
            for labels, h in sorted(data.items()):
                for bound, count in zip(h.buckets, h.counts, strict=True):
                    samples.append((f"{name}_bucket", (*labels, ("le", _number(float(bound)))), count))
                samples.append((f"{name}_bucket", (*labels, ("le", "+Inf")), h.total))
                samples.append((f"{name}_sum", labels, h.sum))
                samples.append((f"{name}_count", labels, h.total))
            family(name, "histogram", help_text, samples)

        def per_period(pick: str) -> list[tuple[Labels, float]]:
            figures: tuple[tuple[str, PeriodFigures], ...] = (("day", live.today), ("month", live.month))
            return [((("period", p),), getattr(f, pick)) for p, f in figures]

        counter, gauge = "counter", "gauge"
        with self._lock:
            simple(
                "hybridge_requests_total",
                counter,
                "Requests finished, by route, model and outcome.",
                sorted(self.requests.items()),
            )
            simple(
                "hybridge_tokens_total",
                counter,
                "Tokens by route, model and kind (input excludes cache reads and writes).",
                sorted(self.tokens.items()),
            )
            simple(
                "hybridge_cost_usd_total", counter, "Cloud spend in USD of priced requests.", sorted(self.cost.items())
            )
            simple(
                "hybridge_unpriced_requests_total",
                counter,
                "Requests to a model with no price (in no cost).",
                sorted(self.unpriced.items()),
            )
            simple(
                "hybridge_baseline_cost_usd_total",
                counter,
                "What the same tokens would have cost on the baseline model, USD.",
                [((), self.baseline)],
            )
            simple(
                "hybridge_savings_usd_total",
                counter,
                "Baseline cost minus actual cost minus measured local electricity, USD.",
                [((), self.savings)],
            )
            simple(
                "hybridge_local_energy_wh_total",
                counter,
                "Measured GPU energy of local generation, Wh.",
                [((), self.energy_wh)],
            )
            histograms("hybridge_ttft_seconds", "Time to first token.", self.ttft)
            histograms("hybridge_request_duration_seconds", "Request duration.", self.duration)
        simple(
            "hybridge_tokens_per_second",
            gauge,
            "Output tokens/sec over the last 10 s, by route.",
            [
                ((("route", "local"),), live.local_tokens_per_second),
                ((("route", "cloud"),), live.cloud_tokens_per_second),
            ],
        )
        simple("hybridge_active_streams", gauge, "Streams running now.", [((), live.active_streams)])
        simple(
            "hybridge_electricity_measured",
            gauge,
            "1 when GPU power can be measured here, else 0.",
            [((), int(live.electricity_measured))],
        )
        simple(
            "hybridge_spend_usd",
            gauge,
            "Cloud spend of the current day or month (local time), USD.",
            per_period("spend_usd"),
        )
        simple("hybridge_savings_usd", gauge, "Savings of the current day or month, USD.", per_period("savings_usd"))
        simple(
            "hybridge_period_unpriced_requests",
            gauge,
            "Requests of the period left out for want of a price.",
            per_period("unpriced_requests"),
        )
        simple(
            "hybridge_budget_cap_usd",
            gauge,
            "Cloud budget caps, USD (0: none).",
            [((("period", "day"),), budget.day_cap_usd), ((("period", "month"),), budget.month_cap_usd)],
        )
        simple(
            "hybridge_budget_exhausted", gauge, "1 when a cloud budget cap is reached.", [((), int(budget.exhausted))]
        )
        return "\n".join(out) + "\n"
