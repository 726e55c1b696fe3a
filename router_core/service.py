"""RouterService: the router on uvicorn, in the foreground or in a background thread.

The tray app runs it in a thread with its own asyncio loop (no signal handlers there; it
stops through `should_exit`); `hybridge serve` runs it in the foreground.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from router_core import __version__
from router_core.events import RouterEvents
from router_core.inventory.backends import BackendStatus
from router_core.inventory.machine import HardwareProbe, InventorySnapshot
from router_core.ledger.schema import LedgerError
from router_core.ledger.signals import LedgerSignals
from router_core.providers.http import TransportFactory, default_transport
from router_core.redact import install_log_redaction
from router_core.runtime import Runtime
from router_core.runtime_file import RouterAddress, remove_runtime_file, runtime_path, write_runtime_file
from router_core.server.app import create_app
from router_core.server.limits import LimitedHttpToolsProtocol, uvicorn_options
from router_core.settings import Settings

log = logging.getLogger(__name__)


def write_runtime_file_default() -> bool:
    """Off under pytest unless asked, so test routers never overwrite a real router's file."""
    return "PYTEST_CURRENT_TEST" not in os.environ or bool(os.environ.get("HYBRIDGE_RUNTIME_DIR"))


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop where it exists (faster streams), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # Windows
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


@contextlib.contextmanager
def _stop_on_signals(server: uvicorn.Server) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a graceful stop (signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    running: bool
    host: str
    port: int
    error: str | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"


class RouterService:
    def __init__(
        self,
        settings: Settings,
        *,
        port: int | None = None,
        transport_factory: TransportFactory = default_transport,
        hardware_probe: HardwareProbe | None = None,
        ledger_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.events = RouterEvents()
        # The ledger's own signals: one for the service's life, so listeners connect before it opens.
        self.ledger_signals = LedgerSignals()
        # Passed to router_core.ledger.recorder.Ledger (tests: path, power, clock).
        self._ledger_options = dict(ledger_options or {})
        self._transport_factory = transport_factory
        self._hardware_probe = hardware_probe
        self._loop: asyncio.AbstractEventLoop | None = None
        self._host = settings.server.host
        self._port = settings.server.port if port is None else port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: str | None = None
        self.runtime: Runtime | None = None
        # The user's settings file, where live switches (privacy) are saved; None: the default.
        self.config_path: Path | None = None
        # `hybridge serve` and the tray write router_core/runtime_file.py; embedded test routers need not.
        self.write_runtime_file = write_runtime_file_default()
        self._wrote_runtime_file = False

    def _make_server(self) -> uvicorn.Server:
        self.runtime = Runtime(
            self.settings,
            transport_factory=self._transport_factory,
            events=self.events,
            ledger_signals=self.ledger_signals,
            hardware_probe=self._hardware_probe,
        )
        self.runtime.config_path = self.config_path
        install_log_redaction()
        if self.settings.ledger.enabled:
            try:
                self.runtime.open_ledger(**self._ledger_options)
            except LedgerError as exc:
                # Routing matters more than accounting: serve, and say loudly what is not recorded.
                log.error("requests are not recorded: %s", exc.message)
        config = uvicorn.Config(
            create_app(self.runtime),
            host=self._host,
            port=self._port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # httptools with the head/body limits and timeouts uvicorn lacks (server/limits.py).
            http=LimitedHttpToolsProtocol,
            **uvicorn_options(),
            # No WebSocket route exists: not loading a WebSocket stack keeps ~2 MB off idle RSS.
            ws="none",
            # No `server: uvicorn` header: nothing to gain from naming the stack to a prober,
            # and a few bytes less on every answer.
            server_header=False,
            timeout_graceful_shutdown=3,
        )
        server = uvicorn.Server(config)
        # uvicorn re-raises SIGINT/SIGTERM once it has stopped, which kills the process before
        # our cleanup (flushing and closing the ledger) can run; stop on them, never re-raise.
        server.capture_signals = lambda: _stop_on_signals(server)  # type: ignore[method-assign]
        return server

    async def serve(self) -> None:
        """Run until stopped (uvicorn installs signal handlers in the main thread only)."""
        self._server = self._make_server()
        self._loop = asyncio.get_running_loop()
        watcher = asyncio.create_task(self._note_started())
        assert self.runtime is not None
        inventory = asyncio.create_task(self.runtime.inventory.run_periodic())
        # Pooled backends are read in the background, so choosing one costs no round trip.
        backends = asyncio.create_task(self.runtime.backend_poller.run_periodic()) if self.runtime.pools else None
        try:
            await self._server.serve()
        finally:
            watcher.cancel()
            inventory.cancel()
            if backends is not None:
                backends.cancel()
            if self.runtime is not None:
                await self._let_cancelled_requests_finish(self.runtime)
            if self._wrote_runtime_file:
                remove_runtime_file(os.getpid())
                self._wrote_runtime_file = False
            if self.runtime is not None:
                await self.runtime.aclose()
        if not self._server.started:
            self._error = self._error or "the server could not start (is the port in use?)"
            self._started.set()

    @staticmethod
    async def _let_cancelled_requests_finish(runtime: Runtime, timeout_s: float = 2.0) -> None:
        """uvicorn cancels requests still running past its graceful timeout without waiting
        for them; give them a moment to record themselves (outcome interrupted) in the ledger."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while runtime.in_flight.count() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the records are emitted just after a request leaves in_flight

    async def _note_started(self) -> None:
        assert self._server is not None
        # uvicorn offers no "started" event to wait on.
        while not self._server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        sockets = self._server.servers[0].sockets if self._server.servers else []
        if sockets:
            self._port = sockets[0].getsockname()[1]
        if self.write_runtime_file:
            # So every CLI command finds this router on whatever port it got.
            try:
                write_runtime_file(RouterAddress(self._host, self._port, os.getpid(), __version__))
                self._wrote_runtime_file = True
            except OSError as exc:
                log.warning("cannot write the runtime file %s: %s", runtime_path(), exc)
        self._started.set()

    def start(self) -> None:
        """Start in a background thread with its own event loop."""

        def run() -> None:
            try:
                run_loop(self.serve())
            except BaseException as exc:  # shown in status(), never lost in a thread
                log.exception("router thread failed")
                self._error = str(exc) or type(exc).__name__
                self._started.set()

        self._thread = threading.Thread(target=run, name="hybridge-router", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        """Started (port known, runtime file written) or failed to start."""
        return self._started.is_set()

    def wait_started(self, timeout: float = 10.0) -> bool:
        return self._started.wait(timeout) and self._error is None

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def refresh_inventory(self, timeout: float = 30.0) -> InventorySnapshot:
        """Re-read hardware and Ollama now, from any thread (the tray's refresh, tests)."""
        if self._loop is None or self.runtime is None:
            raise RuntimeError("the router is not running")
        return asyncio.run_coroutine_threadsafe(self.runtime.refresh_inventory(), self._loop).result(timeout)

    def poll_backends(self, timeout: float = 30.0) -> list[BackendStatus]:
        """Read every pooled backend now, from any thread (as the background poll does)."""
        if self._loop is None or self.runtime is None:
            raise RuntimeError("the router is not running")
        return asyncio.run_coroutine_threadsafe(self.runtime.backend_poller.poll(), self._loop).result(timeout)

    def status(self) -> ServiceStatus:
        running = bool(self._server and self._server.started and not self._server.should_exit)
        return ServiceStatus(running=running, host=self._host, port=self._port, error=self._error)
