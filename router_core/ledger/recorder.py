"""The Ledger: listens to the router's events and writes one row per request, off the hot path.

The event listener runs in the router's event loop, so it only appends to a queue; one
writer thread takes everything queued at once (a batch: one row when quiet, many under
load), prices each record, measures its energy, writes the batch in one transaction,
updates today's and this month's totals and the budget once, and publishes its own signals
(ledger/signals.py): `entry_written`, `live_stats` (sampled about once a second while busy:
streams are counters, never events per chunk) and `budget_alert`. A row waits at most for
the batch before it to be written (20 ms when quiet, 200 ms under load); a killed process
loses at most the rows in flight (queued, or in the transaction being written), as it did
with one transaction per row.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from router_core.addresses import is_loopback_host
from router_core.background import lower_this_thread
from router_core.events import RouterEvents
from router_core.ledger import store
from router_core.ledger.baseline import BaselineCache
from router_core.ledger.budget import BudgetAlerts, BudgetState, budget_state
from router_core.ledger.energy import (
    KEEP_S,
    EnergyMeter,
    EstimatedPowerSource,
    PowerSource,
    open_power_source,
    typical_board_power,
)
from router_core.ledger.entry import Pricer
from router_core.ledger.live import LiveSnapshot, LiveStats
from router_core.ledger.metrics import Counters
from router_core.ledger.periods import PeriodTotals, day_bounds
from router_core.ledger.prices import baseline_ref, load_price_table
from router_core.ledger.schema import connect, ledger_path
from router_core.ledger.signals import LedgerSignals
from router_core.records import RequestRecord
from router_core.settings import Settings

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 1.0
# A batch's rows: bounds one transaction's length (and so a row's wait) under any load.
MAX_BATCH = 512
# How long a row may wait for others to share its transaction (the bounded delay)...
BATCH_WINDOW_S = 0.02
# ...and under load (the last batch held BUSY_BATCH rows or more): a transaction's fixed costs
# (its WAL frames, the GIL handed to and from the event loop's thread around each SQLite
# call) are paid per batch, so bigger batches cost the router less. At 3,600 requests/s on
# two cores, 20 ms batches cost the event loop's thread 40 µs a request more than no ledger
# and the writer 36 µs a row; 200 ms batches, nothing measurable and 15 µs.
BUSY_WINDOW_S = 0.2
BUSY_BATCH = 64


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Rate:
    rating: store.Rating
    session: str | None
    request_id: str | None
    result: Future[str | None] = field(default_factory=Future)


_STOP = object()
Job = RequestRecord | _Flush | _Rate | object


class Ledger:
    def __init__(
        self,
        settings: Settings,
        events: RouterEvents,
        *,
        signals: LedgerSignals | None = None,
        path: Path | None = None,
        power: PowerSource | Literal["nvml"] | None = "nvml",
        clock: Callable[[], float] = time.time,
        publish_interval_s: float = PUBLISH_INTERVAL_S,
        gpu_names: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.events = events
        # What the ledger publishes; the service passes one that outlives each ledger.
        self.signals = signals or LedgerSignals()
        self.path = path or ledger_path(settings)
        self.prices = load_price_table(settings)
        self.baseline_model = baseline_ref(settings)
        # The baseline vendor's prompt cache, per session (ledger/baseline.py).
        self.baseline_cache = BaselineCache(self.baseline_model)
        self._ollama_providers = frozenset(n for n, p in settings.providers.items() if p.kind == "ollama")
        self.live = LiveStats(clock, events.streams)
        self.totals = PeriodTotals(clock)
        self.counters = Counters()
        source = open_power_source(settings.pricing.gpu_watts, gpu_names or []) if power == "nvml" else power
        self.meter = EnergyMeter(source)
        # Nothing to read and no wattage set: the detected card's typical board power, once the
        # inventory names the GPUs (learn_gpus). Only when the power source is ours to choose.
        self._may_estimate = power == "nvml" and source is None
        self._clock = clock
        self._publish_interval_s = publish_interval_s
        self._alerts = BudgetAlerts()
        self._budget = BudgetState(action=settings.budget.action)
        self._budget_until = 0.0
        self._budget_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._recent_local: deque[tuple[float, float]] = deque()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._window_s = BATCH_WINDOW_S
        # Rows written since start (tests and views wait on it).
        self.written = 0

    # -- lifecycle ---------------------------------------------------------------------

    def learn_gpus(self, gpu_names: list[str]) -> None:
        """The inventory's GPUs: where power cannot be read, estimate electricity from the
        cards' typical board power (labelled estimated). Called with each inventory round;
        acts once."""
        if not self._may_estimate or not gpu_names:
            return
        watts = typical_board_power(gpu_names)
        if watts:
            self._may_estimate = False
            log.info("electricity estimated at %g W, the typical board power of %s", watts, ", ".join(gpu_names))
            self.meter.source = EstimatedPowerSource(watts)
            if self._accepting:
                self.meter.start()

    def start(self) -> Ledger:
        """Open (create, migrate) the file, load today's figures, start listening and writing."""
        # Opened here so a bad file fails the caller; used only by the writer thread after.
        self._conn = connect(self.path, check_same_thread=False)
        self.totals.load(self._conn)
        self._refresh_budget(say_alerts=False)
        self._accepting = True
        self.events.request_finished.connect(self._on_finished)
        self.meter.start()
        self._thread = threading.Thread(target=self._run, name="hybridge-ledger", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop. Records that arrive after this are dropped (logged)."""
        if not self._accepting:
            return
        self._accepting = False
        self.events.request_finished.disconnect(self._on_finished)
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)
        self.meter.close()

    def wait_written(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` rows were written since start (a request's record is emitted
        just after its last byte, so a client can be quicker than the ledger)."""
        deadline = time.monotonic() + timeout
        while self.written < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written."""
        if not self._accepting:
            return True
        job = _Flush()
        self._queue.put(job)
        return job.done.wait(timeout)

    # -- listeners (router's event loop thread: keep them tiny) --------------------------

    def _on_finished(self, record: RequestRecord) -> None:
        # Only the queue here (and letting go of a prompt no hash will read): the live
        # figures, pricing and the write are the writer's.
        if self._accepting:
            self.baseline_cache.trim(record)
            self._queue.put(record)
        else:
            log.warning("ledger closed: request %s not recorded", record.request_id)

    # -- what the rest of the router reads -----------------------------------------------

    def budget_state(self) -> BudgetState:
        """Cheap enough for every request's routing decision."""
        if self._clock() >= self._budget_until:
            # A new day began since the last request: the daily cap (or monthly) may no longer bind.
            self._refresh_budget(say_alerts=False)
        return self._budget

    def snapshot(self) -> LiveSnapshot:
        today, month = self.totals.current()
        return self.live.snapshot(today, month, self.meter.measured)

    def metrics_text(self) -> str:
        return self.counters.render(self.snapshot(), self.budget_state())

    def rate(
        self, rating: store.Rating, *, session: str | None = None, request_id: str | None = None
    ) -> Future[str | None]:
        """Rate a response (by id, else the session's last, else the last of all), after
        everything queued before is written. The future holds the rated request id, or None
        when there is no such response."""
        job = _Rate(rating, session, request_id)
        if not self._accepting:
            job.result.set_exception(RuntimeError("the ledger is closed"))
        else:
            self._queue.put(job)
        return job.result

    # -- the writer thread ---------------------------------------------------------------

    def _refresh_budget(self, *, say_alerts: bool) -> None:
        with self._budget_lock:
            today, month = self.totals.current()
            self._budget_until = day_bounds(self._clock())[1]
            self._budget = budget_state(self.settings.budget, today, month)
            alerts = self._alerts.new_alerts(self.settings.budget, today, month)
        if say_alerts:
            for alert in alerts:
                log.warning("%s", alert.message)
                self.signals.budget_alert.emit(alert)

    def _take(self, timeout: float) -> list[Job]:
        """The next job, and everything queued behind it (at most MAX_BATCH); [] on timeout."""
        try:
            jobs = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        if isinstance(jobs[0], RequestRecord) and self._queue.qsize() < MAX_BATCH:
            # Let the rows of a busy moment gather (the GIL is free meanwhile): one wake-up
            # and one transaction for all of them rather than a hand-over per request. Not
            # when a whole batch already waits: a writer that sleeps a window per full batch
            # writes at most MAX_BATCH / BUSY_WINDOW_S rows a second (2,560), fewer than the
            # router serves at full load, and its queue (every record, alive) would only grow.
            time.sleep(self._window_s)
        while len(jobs) < MAX_BATCH:
            try:
                jobs.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._window_s = BUSY_WINDOW_S if len(jobs) >= BUSY_BATCH else BATCH_WINDOW_S
        return jobs

    def _run(self) -> None:
        lower_this_thread()
        last_version = -1
        was_busy = False
        next_publish = time.monotonic() + self._publish_interval_s
        stopping = False
        while not stopping:
            jobs = self._take(max(0.0, next_publish - time.monotonic()))
            if _STOP in jobs:
                # Write what came before the stop (close() waits for it); nothing after.
                jobs = jobs[: jobs.index(_STOP)]
                stopping = True
            try:
                self._handle_all(jobs)
            except Exception:
                log.exception("ledger writer failed on a batch of %d", len(jobs))
            if stopping:
                break
            if time.monotonic() >= next_publish:
                next_publish = time.monotonic() + self._publish_interval_s
                busy = self.live.busy()
                # While busy, and once more after, so views do not keep a stale tokens/sec.
                if self.live.version != last_version or busy or was_busy:
                    last_version = self.live.version
                    self.signals.live_stats.emit(self.snapshot())
                was_busy = busy
        # One last picture, so views do not keep a stale tokens/sec.
        self.signals.live_stats.emit(self.snapshot())
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _handle_all(self, jobs: list[Job]) -> None:
        """Records in one transaction per run of them; flushes and ratings in their order."""
        records: list[RequestRecord] = []
        for job in jobs:
            if isinstance(job, RequestRecord):
                records.append(job)
                continue
            if records:
                self._write_batch(records)
                records = []
            try:
                self._handle(job)
            except Exception:
                log.exception("ledger writer failed on %r", type(job).__name__)
        if records:
            self._write_batch(records)

    def _handle(self, job: Job | None) -> None:
        if isinstance(job, RequestRecord):
            self._write_batch([job])
        elif isinstance(job, _Flush):
            job.done.set()
        elif isinstance(job, _Rate):
            self._rate(job)

    def _energy(self, record: RequestRecord) -> float | None:
        if record.route != "local" or not self.meter.measured:
            return None
        if record.backend and not is_loopback_host(record.backend.rpartition(":")[0].strip("[]")):
            return None  # a LAN backend (routing.pools) drew its own power, not this machine's GPU
        start, end = record.started_at, record.started_at + record.duration_s
        others = [(a, b) for rid, a, b in self.live.local_stream_intervals() if rid != record.request_id]
        others += [iv for iv in self._recent_local if iv[1] > start]
        energy = self.meter.energy_wh(start, end, others)
        self._recent_local.append((start, end))
        while self._recent_local and self._recent_local[0][1] < end - KEEP_S:
            self._recent_local.popleft()
        return energy

    def _write_batch(self, records: list[RequestRecord]) -> None:
        assert self._conn is not None
        self.live.on_finished_all(records)
        # What every row shares, looked up once: this loop holds the GIL the event loop needs.
        pricer = Pricer(
            self.prices,
            self.baseline_model,
            self.settings.pricing.electricity_price_per_kwh,
            energy_estimated=self.meter.estimated,
        )
        measured = self.meter.measured
        cache = self.baseline_cache if self.baseline_cache.policy is not None else None
        ollama = self._ollama_providers
        entries = []
        for record in records:
            try:
                entries.append(
                    pricer.entry(
                        record,
                        self._energy(record) if measured else None,
                        # No cache policy: the baseline is priced on the request's own usage.
                        cache.usage(record) if cache is not None else None,
                        record.provider in ollama,
                    )
                )
            except Exception:
                # One bad record must not cost the batch its other rows.
                log.exception("ledger: request %s could not be priced", record.request_id)
        sums = store.insert_entries(self._conn, entries, now=self._clock())
        if sums is not None:
            self.totals.add(sums.today, sums.month)
            self.counters.add_groups(sums.groups)
        self._refresh_budget(say_alerts=True)
        for entry in entries:
            self.signals.entry_written.emit(entry)
        # Last: whoever waits for a row (wait_written) then sees its totals, budget and alerts too.
        self.written += len(entries)

    def _rate(self, job: _Rate) -> None:
        assert self._conn is not None
        try:
            if job.request_id is not None:
                target = job.request_id if store.request_exists(self._conn, job.request_id) else None
            else:
                target = store.last_response(self._conn, job.session)
            if target is not None:
                store.rate(self._conn, target, job.rating)
            job.result.set_result(target)
        except Exception as exc:
            job.result.set_exception(exc)
