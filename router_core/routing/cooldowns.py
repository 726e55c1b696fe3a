"""Per-model cooldowns: the executor's memory of which upstreams are failing.

A model cools down when it answers 429/503/529 with a Retry-After (for that long, capped),
or after `after_failures` failures in a row (connect, timeout, rate limit, overload, 5xx)
for `cooldown_s`. A model in cooldown is not skipped outright: routing moves it to the back
of each plan, so it is still tried when nothing else is left, and its first success clears
it. Routing sees only `cooling()`, a frozenset snapshot, so `decide` reads no clock; the clock
lives here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from router_core.errors import UpstreamError

# Failures that say the upstream is unwell (a context overflow or a bad request says
# nothing about its health).
HEALTH_FAILURES = frozenset({"connect", "timeout", "rate_limit", "overloaded", "server"})


@dataclass(frozen=True, slots=True)
class CooldownStatus:
    model: str  # `<provider>/<model>`
    failures: int  # in a row
    last_error: str  # the last failure's kind
    remaining_s: float  # 0: not cooling now


@dataclass(slots=True)
class _Health:
    failures: int = 0
    last_error: str = ""
    until: float = 0.0


class Cooldowns:
    def __init__(
        self,
        *,
        after_failures: int = 3,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.after_failures = after_failures
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._health: dict[str, _Health] = {}
        # cooling() is read on every request: cache it until the next expiry or change.
        self._cooling: frozenset[str] = frozenset()
        self._valid_until = float("inf")

    def failure(self, model: str, exc: UpstreamError) -> None:
        if exc.kind not in HEALTH_FAILURES:
            return
        now = self._clock()
        with self._lock:
            health = self._health.setdefault(model, _Health())
            health.failures += 1
            health.last_error = exc.kind
            wait = 0.0
            if exc.retry_after is not None and exc.kind in ("rate_limit", "overloaded"):
                wait = min(exc.retry_after, self.max_cooldown_s)
            if health.failures >= self.after_failures:
                wait = max(wait, self.cooldown_s)
            if wait > 0:
                health.until = max(health.until, now + wait)
                self._valid_until = now  # recompute on the next read

    def success(self, model: str) -> None:
        if model not in self._health:
            return
        with self._lock:
            if self._health.pop(model, None) is not None:
                self._valid_until = self._clock()

    def cooling(self) -> frozenset[str]:
        """Models cooling down now."""
        now = self._clock()
        if now < self._valid_until:
            return self._cooling
        with self._lock:
            active = {m: h.until for m, h in self._health.items() if h.until > now}
            self._cooling = frozenset(active)
            self._valid_until = min(active.values(), default=float("inf"))
            return self._cooling

    def status(self) -> list[CooldownStatus]:
        """Every model with failures on record, cooling ones first (for `status` views)."""
        now = self._clock()
        with self._lock:
            rows = [
                CooldownStatus(m, h.failures, h.last_error, round(max(h.until - now, 0.0), 3))
                for m, h in self._health.items()
            ]
        return sorted(rows, key=lambda r: (-r.remaining_s, r.model))
