"""The one seam between the router core and Qt.

Core events (router_core/signals.py Signals, emitted in the router's or the ledger's
threads) are re-posted here to the GUI thread and re-emitted as Qt signals, so every
widget slot runs in the GUI thread. Every call from the GUI into the service (start,
stop, privacy, inventory, settings, keys, Ollama) runs on a worker thread, and its result
comes back the same way: the GUI never waits on I/O.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from app.ollama_control import OllamaControlError, PullProgress, pull_model, start_ollama
from app.settings_form import KeyPath, apply_user_changes
from router_core.errors import HybridgeError, SettingsError
from router_core.events import KeptLocal
from router_core.inventory.context import TruncationWarning
from router_core.inventory.machine import InventorySnapshot
from router_core.inventory.ollama_inventory import OllamaStatus
from router_core.key_check import preset_provider, verify_key
from router_core.keys import find_key, keyring_name, store_key
from router_core.ledger import reports
from router_core.ledger.budget import BudgetAlert
from router_core.ledger.entry import LedgerEntry
from router_core.ledger.live import LiveSnapshot
from router_core.port_check import port_problem
from router_core.presets import preset_env
from router_core.privacy.ollama_cloud import describe_switch
from router_core.privacy.state import PrivacyStatus
from router_core.privacy.switch import switch_privacy
from router_core.providers.pool import BackendState
from router_core.records import RequestRecord
from router_core.service import RouterService, ServiceStatus
from router_core.settings import Settings, ollama_base_url

log = logging.getLogger(__name__)
T = TypeVar("T")

TICK_MS = 1000  # live figures are read this often (in-memory, cheap)
OLLAMA_POLL_MS = 15_000  # Ollama going away is noticed within this (plus on a failed local request)
HISTORY_DAYS = 14
HISTORY_ROWS = 500
START_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class DaySavings:
    day: str  # YYYY-MM-DD, local time
    requests: int
    spend_usd: float
    savings_usd: float


@dataclass(frozen=True, slots=True)
class LedgerHistory:
    days: list[DaySavings] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # reports.request_rows, oldest first


class RouterBridge(QObject):
    # The service's life.
    service_started = Signal(object)  # ServiceStatus
    service_stopped = Signal()
    service_failed = Signal(str)
    # Core events, re-emitted in the GUI thread.
    request_finished = Signal(object)  # RequestRecord
    ledger_entry = Signal(object)  # LedgerEntry
    live_stats = Signal(object)  # LiveSnapshot
    budget_alert = Signal(object)  # BudgetAlert
    privacy_changed = Signal(object)  # PrivacyStatus
    privacy_kept_local = Signal(object)  # KeptLocal
    truncation_warning = Signal(object)  # TruncationWarning
    inventory_updated = Signal(object)  # InventorySnapshot
    backends_updated = Signal(object)  # list[BackendState] (routing.pools)
    ollama_state_changed = Signal(str, bool, str)  # provider, up, problem ("" when up)
    # Results of calls the GUI made.
    history_loaded = Signal(object)  # LedgerHistory
    settings_applied = Signal(object)  # Settings
    settings_rejected = Signal(list)  # problems, one per bad key
    keys_checked = Signal(dict)  # provider -> a key is set
    key_stored = Signal(str, str)  # provider, problem ("" when stored)
    key_verified = Signal(str, str, list)  # provider, problem ("" when it works and is stored), models listed
    ollama_start_result = Signal(str)  # "" when started, else what went wrong
    pull_progress = Signal(str, object)  # model, PullProgress
    pull_finished = Signal(str, str)  # model, problem ("" when pulled)
    operation_failed = Signal(str)  # a message for the user

    _posted = Signal(object)

    def __init__(
        self,
        settings: Settings,
        config_path: Path,
        *,
        port: int | None = None,
        service_options: dict[str, Any] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.config_path = config_path
        self._port_override = port
        self._service_options = dict(service_options or {})
        self._service: RouterService | None = None
        self._resume_port: int | None = None
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hybridge-gui-worker")
        # Start and stop run one at a time, in order.
        self._lifecycle = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hybridge-gui-lifecycle")
        self._pull_cancel: dict[str, threading.Event] = {}
        self._ollama_up: dict[str, bool] = {}
        self.paused = False
        self.starting = False
        self._shut_down = False
        self.last_status: ServiceStatus | None = None
        self.live: LiveSnapshot | None = None
        self.inventory: InventorySnapshot | None = None
        self.backends: list[BackendState] = []
        self.privacy: PrivacyStatus | None = None
        self.last_cloud_at: float | None = None
        self._posted.connect(self._run_posted, Qt.ConnectionType.QueuedConnection)
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._read_live)
        self._poll = QTimer(self)
        self._poll.setInterval(OLLAMA_POLL_MS)
        self._poll.timeout.connect(self.refresh_inventory)

    # -- threads -------------------------------------------------------------------------

    def _post(self, fn: Callable[[], object]) -> None:
        """Run `fn` in the GUI thread (safe from any thread)."""
        self._posted.emit(fn)

    @Slot(object)
    def _run_posted(self, fn: Callable[[], object]) -> None:
        fn()

    def _in_worker(
        self,
        fn: Callable[[], T],
        on_done: Callable[[T], object] | None = None,
        on_error: Callable[[BaseException], object] | None = None,
        pool: ThreadPoolExecutor | None = None,
    ) -> Future[T]:
        def finished(future: Future[T]) -> None:
            exc = future.exception()
            if exc is not None:
                if on_error is not None:
                    self._post(lambda: on_error(exc))
                else:
                    log.error("background call failed", exc_info=exc)
            elif on_done is not None:
                result = future.result()
                self._post(lambda: on_done(result))

        if self._shut_down:  # a result that came in after quit starts nothing new
            idle: Future[T] = Future()
            idle.cancel()
            return idle
        future = (pool or self._workers).submit(fn)
        future.add_done_callback(finished)
        return future

    # -- the service's life --------------------------------------------------------------

    @property
    def service(self) -> RouterService | None:
        return self._service

    @property
    def running(self) -> bool:
        return bool(self._service and self._service.status().running)

    @property
    def endpoint_url(self) -> str:
        status = self._service.status() if self._service else self.last_status
        if status is None:
            port = self._port_override if self._port_override is not None else self.settings.server.port
            return ServiceStatus(False, self.settings.server.host, port).base_url
        return status.base_url

    @property
    def serving_port(self) -> int | None:
        """The port the router listens on now (None: not serving)."""
        status = self._service.status() if self._service else None
        return status.port if status is not None and status.running else None

    def ollama_cloud_lines(self) -> list[str]:
        """Each Ollama's own cloud switch, as last read (`GET /api/status`)."""
        runtime = self._service.runtime if self._service else None
        if runtime is None:
            return []
        return [f"{name}: {describe_switch(sw)}" for name, sw in runtime.ollama_facts.switches.items()]

    @property
    def has_ledger(self) -> bool:
        runtime = self._service.runtime if self._service else None
        return runtime is not None and runtime.ledger is not None

    def start(self) -> None:
        """Start the router in its background thread (no-op while one runs or starts)."""
        if self.starting or self.running:
            return
        self.starting = True
        self.paused = False
        port = self._resume_port if self._resume_port is not None else self._configured_port()
        service = RouterService(self.settings, port=port, **self._service_options)
        service.config_path = self.config_path
        self._connect(service)
        self._service = service

        host = self.settings.server.host

        def run() -> ServiceStatus:
            # Who holds the port, in words (uvicorn would only exit with errno 98).
            problem = port_problem(host, port)
            if problem:
                return ServiceStatus(running=False, host=host, port=port, error=problem)
            service.start()
            service.wait_started(START_TIMEOUT_S)
            return service.status()

        self._in_worker(run, lambda status: self._started(service, status), pool=self._lifecycle)

    def _configured_port(self) -> int:
        return self._port_override if self._port_override is not None else self.settings.server.port

    def _connect(self, service: RouterService) -> None:
        events = service.events
        events.request_finished.connect(self._on_request_finished)
        events.privacy_changed.connect(self._on_privacy_changed)
        events.privacy_kept_local.connect(self._on_kept_local)
        events.truncation_warning.connect(self._on_truncation)
        ledger = service.ledger_signals
        ledger.entry_written.connect(self._on_ledger_entry)
        ledger.live_stats.connect(self._on_live_stats)
        ledger.budget_alert.connect(self._on_budget_alert)

    def _started(self, service: RouterService, status: ServiceStatus) -> None:
        self.starting = False
        if service is not self._service:
            return  # replaced while starting
        self.last_status = status
        if not status.running or service.runtime is None:
            self.service_failed.emit(status.error or "the router did not start")
            return
        runtime = service.runtime
        runtime.inventory.updated.connect(self._on_inventory)
        if runtime.inventory.snapshot is not None:
            self._on_inventory(runtime.inventory.snapshot)
        runtime.pools.updated.connect(self._on_backends)
        self._on_backends(runtime.backends())
        self.privacy = runtime.privacy.status()
        self._tick.start()
        self._poll.start()
        self._read_live()
        self.service_started.emit(status)
        self.privacy_changed.emit(self.privacy)
        self.refresh_inventory()
        self.load_history()

    def stop(self, then: Callable[[], object] | None = None) -> None:
        """Stop the router in the background; `then` runs in the GUI thread once it is down."""
        service = self._service
        self._tick.stop()
        self._poll.stop()

        def finish(_: object) -> None:
            self.service_stopped.emit()
            if then is not None:
                then()

        if service is None:
            finish(None)
            return
        self._in_worker(service.stop, finish, pool=self._lifecycle)

    def pause(self) -> None:
        """Stop serving; resume() serves again on the same port."""
        if self._service is None or self.paused:
            return
        self._resume_port = self._service.status().port
        self.paused = True
        self.stop()

    def resume(self) -> None:
        if not self.paused:
            return
        self.start()

    def restart(self, settings: Settings) -> None:
        """Serve with new settings (providers, routing, port are all built at start)."""
        self.settings = settings
        self._resume_port = None
        if self._service is None:
            self.start()
            return
        self.stop(then=self.start)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop everything now (at quit): the one place that waits, since nothing is left to draw."""
        if self._shut_down:
            return
        self._shut_down = True
        self._tick.stop()
        self._poll.stop()
        for event in self._pull_cancel.values():
            event.set()
        if self._service is not None:
            self._service.stop(timeout)
        self._lifecycle.shutdown(wait=False, cancel_futures=True)
        self._workers.shutdown(wait=False, cancel_futures=True)

    # -- core events (router / ledger threads) -> GUI thread ---------------------------

    def _on_request_finished(self, record: RequestRecord) -> None:
        self._post(lambda: self._request_finished(record))

    def _request_finished(self, record: RequestRecord) -> None:
        if record.route == "cloud" and record.outcome == "ok":
            self.last_cloud_at = time.time()
        self.request_finished.emit(record)
        if record.route == "local" and record.error_kind in ("connect", "timeout"):
            # The local server may have gone away: look now rather than at the next poll.
            self.refresh_inventory()

    def _on_ledger_entry(self, entry: LedgerEntry) -> None:
        self._post(lambda: self.ledger_entry.emit(entry))

    def _on_live_stats(self, snapshot: LiveSnapshot) -> None:
        self._post(lambda: self._set_live(snapshot))

    def _on_budget_alert(self, alert: BudgetAlert) -> None:
        self._post(lambda: self.budget_alert.emit(alert))

    def _on_privacy_changed(self, status: PrivacyStatus) -> None:
        self._post(lambda: self._set_privacy(status))

    def _on_kept_local(self, kept: KeptLocal) -> None:
        self._post(lambda: self.privacy_kept_local.emit(kept))

    def _on_truncation(self, warning: TruncationWarning) -> None:
        self._post(lambda: self.truncation_warning.emit(warning))

    def _on_inventory(self, snapshot: InventorySnapshot) -> None:
        self._post(lambda: self._set_inventory(snapshot))

    def _on_backends(self, states: list[BackendState]) -> None:
        self._post(lambda: self._set_backends(states))

    def _set_backends(self, states: list[BackendState]) -> None:
        self.backends = states
        self.backends_updated.emit(states)

    # -- state the tray and dashboard read -----------------------------------------------

    def _set_live(self, snapshot: LiveSnapshot) -> None:
        if self.live is None or snapshot.at >= self.live.at:
            self.live = snapshot
            self.live_stats.emit(snapshot)

    def _read_live(self) -> None:
        """The ledger's live figures, once a second: this samples the running streams' counters
        (nothing is posted per chunk), a lock and a short list."""
        runtime = self._service.runtime if self._service else None
        ledger = runtime.ledger if runtime is not None else None
        if ledger is not None:
            self._set_live(ledger.snapshot())

    def _set_privacy(self, status: PrivacyStatus) -> None:
        self.privacy = status
        self.privacy_changed.emit(status)

    def _set_inventory(self, snapshot: InventorySnapshot) -> None:
        self.inventory = snapshot
        self.inventory_updated.emit(snapshot)
        for name, status in snapshot.ollama.items():
            before = self._ollama_up.get(name)
            self._ollama_up[name] = status.up
            if before != status.up:
                self.ollama_state_changed.emit(name, status.up, "" if status.up else status.problem or "")

    @property
    def privacy_enabled(self) -> bool:
        return bool(self.privacy and self.privacy.enabled)

    @property
    def local_provider(self) -> str:
        return self.settings.routing.local_model.partition("/")[0]

    def local_ollama(self) -> OllamaStatus | None:
        """What the local model's Ollama server reported last (None: not an Ollama, or not read yet)."""
        if self.inventory is None:
            return None
        return self.inventory.ollama.get(self.local_provider)

    def ollama_url(self) -> str | None:
        conf = self.settings.providers.get(self.local_provider)
        if conf is None or conf.kind != "ollama":
            conf = next((p for p in self.settings.providers.values() if p.kind == "ollama"), None)
        return ollama_base_url(conf.base_url) if conf is not None else None

    def live_rate(self, now: float | None = None) -> float:
        """Tokens/sec now; 0 when the last figure is older than a few ticks (the router went quiet)."""
        now = time.time() if now is None else now
        if self.live is None or now - self.live.at > 3 * TICK_MS / 1000:
            return 0.0
        return self.live.tokens_per_second

    def saved_today(self) -> float | None:
        return self.live.today.savings_usd if self.live is not None else None

    def baseline_model(self) -> str:
        """The model savings are measured against (settings.pricing's baseline)."""
        from router_core.ledger.prices import baseline_ref

        return baseline_ref(self.settings)

    # -- calls the GUI makes (each on a worker thread) -----------------------------------

    def set_privacy(self, enabled: bool) -> None:
        """Switch privacy mode live and save it in the settings file."""
        service = self._service
        if service is None or service.runtime is None:
            self.operation_failed.emit("the router is not running")
            return
        runtime = service.runtime

        def done(result: Any) -> None:
            if not result.saved:
                self.operation_failed.emit(f"privacy mode: {result.problem}")

        self._in_worker(lambda: switch_privacy(runtime, enabled, self.config_path), done, self._failed("privacy mode"))

    def refresh_inventory(self) -> None:
        service = self._service
        if service is None or service.runtime is None or not self.running:
            return
        # The snapshot comes back through the inventory's `updated` event.
        self._in_worker(service.refresh_inventory, None, lambda exc: log.warning("inventory refresh failed: %s", exc))

    def load_history(self) -> None:
        """Savings per day and recent requests, read from the ledger file."""
        runtime = self._service.runtime if self._service else None
        ledger = runtime.ledger if runtime is not None else None
        if ledger is None:
            return
        path = ledger.path

        def read() -> LedgerHistory:
            if not path.exists():
                return LedgerHistory()
            # Read-only: the ledger's writer thread owns every write (WAL lets both run).
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
            conn.row_factory = sqlite3.Row
            try:
                now = time.time()
                since = now - HISTORY_DAYS * 86400
                days = [
                    DaySavings(str(r["day"]), int(r["requests"]), float(r["spend_usd"]), float(r["savings_usd"]))
                    for r in reports.grouped(conn, since, "day")
                ]
                rows = [dict(r) for r in reports.request_rows(conn, now - 7 * 86400)][-HISTORY_ROWS:]
            finally:
                conn.close()
            return LedgerHistory(days, rows)

        self._in_worker(read, self.history_loaded.emit, lambda exc: log.warning("cannot read the ledger: %s", exc))

    def save_settings(self, changes: dict[str, Any], removals: list[KeyPath] | None = None) -> None:
        """Validate and write `changes` into the user's file; applied live (the router restarts) when valid."""

        def write() -> Settings:
            return apply_user_changes(self.config_path, changes, removals or [])

        def done(settings: Settings) -> None:
            self.settings_applied.emit(settings)
            self.restart(settings)

        def failed(exc: BaseException) -> None:
            if isinstance(exc, SettingsError):
                self.settings_rejected.emit(list(exc.problems))
            elif isinstance(exc, OSError):
                self.settings_rejected.emit([f"cannot write {self.config_path}: {exc.strerror}"])
            else:
                self.settings_rejected.emit([str(exc)])

        self._in_worker(write, done, failed)

    def check_keys(self) -> None:
        """Which cloud providers have a key, without reading any key into the GUI."""
        providers = {n: p for n, p in self.settings.providers.items() if not p.is_local}

        def check() -> dict[str, bool]:
            return {
                name: find_key(name, conf.api_key, preset_env(conf.preset))[0] is not None
                for name, conf in providers.items()
            }

        self._in_worker(check, self.keys_checked.emit, self._failed("keyring"))

    def store_key(self, provider: str, keyring_name: str, secret: str) -> None:
        def done(_: object) -> None:
            self.key_stored.emit(provider, "")

        def failed(exc: BaseException) -> None:
            message = exc.message if isinstance(exc, HybridgeError) else type(exc).__name__
            self.key_stored.emit(provider, message)

        self._in_worker(lambda: store_key(keyring_name, secret), done, failed)

    def verify_and_store_key(self, provider: str, secret: str) -> None:
        """A real call with the key first (the provider's model list); stored in the keyring
        only when it works. `key_verified` says how it went; the key is never echoed."""
        settings = self.settings
        privacy = self.privacy_enabled
        conf = settings.providers.get(provider) or preset_provider(provider)

        def run() -> tuple[str, list[str]]:
            if conf is None:
                return f"no provider named '{provider}'", []
            if conf.api_key.startswith("env:"):
                return f"{provider} reads its key from ${conf.api_key[4:]}: set that variable instead", []
            problem, models = verify_key(settings, provider, secret, privacy=privacy)
            if not problem:
                store_key(keyring_name(provider, conf.api_key), secret.strip())
            return problem, models

        def done(result: tuple[str, list[str]]) -> None:
            self.key_verified.emit(provider, result[0], result[1])

        def failed(exc: BaseException) -> None:
            message = exc.message if isinstance(exc, HybridgeError) else type(exc).__name__
            self.key_verified.emit(provider, message, [])

        self._in_worker(run, done, failed)

    def start_ollama(self) -> None:
        url = self.ollama_url()
        if url is None:
            self.ollama_start_result.emit("no Ollama provider is configured")
            return
        privacy = self.privacy_enabled

        def done(_: object) -> None:
            self.ollama_start_result.emit("")
            # Give it a moment to listen, then look.
            QTimer.singleShot(1500, self.refresh_inventory)

        def failed(exc: BaseException) -> None:
            self.ollama_start_result.emit(str(exc) if isinstance(exc, OllamaControlError) else repr(exc))

        self._in_worker(lambda: start_ollama(url, privacy), done, failed)

    def pull_model(self, model: str) -> None:
        url = self.ollama_url()
        if url is None:
            self.pull_finished.emit(model, "no Ollama provider is configured")
            return
        cancel = self._pull_cancel[model] = threading.Event()

        def progress(p: PullProgress) -> None:
            self._post(lambda: self.pull_progress.emit(model, p))

        def done(_: object) -> None:
            self._pull_cancel.pop(model, None)
            self.pull_finished.emit(model, "")
            self.refresh_inventory()

        def failed(exc: BaseException) -> None:
            self._pull_cancel.pop(model, None)
            self.pull_finished.emit(model, str(exc) if isinstance(exc, OllamaControlError) else repr(exc))

        self._in_worker(lambda: pull_model(url, model, progress, cancel), done, failed)

    def cancel_pull(self, model: str) -> None:
        event = self._pull_cancel.get(model)
        if event is not None:
            event.set()

    def run_background(
        self, fn: Callable[[], T], on_done: Callable[[T], object], on_error: Callable[[BaseException], object]
    ) -> None:
        """Any other slow call of the GUI's (a file write, say), with its result in the GUI thread."""
        self._in_worker(fn, on_done, on_error)

    def _failed(self, what: str) -> Callable[[BaseException], None]:
        def report(exc: BaseException) -> None:
            message = exc.message if isinstance(exc, HybridgeError) else f"{type(exc).__name__}: {exc}"
            self.operation_failed.emit(f"{what}: {message}")

        return report
