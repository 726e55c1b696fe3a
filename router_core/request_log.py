"""One log line per finished request for `hybridge serve` (as `ollama serve` logs each one):
time, client, route, model, reason, tokens, milliseconds, outcome. Never prompt text: only
the fields of RequestRecord that describe the request, not what it said.

Off the request path: the listener (on the router's event loop) only queues the record; a
thread formats what is queued and writes the lines of a burst in one log record, so a busy
router pays one record, one redaction pass and one write for many lines. A line may wait
up to WINDOW_S; `close` writes what is queued.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time

from router_core.background import lower_this_thread
from router_core.events import RouterEvents
from router_core.records import RequestRecord

log = logging.getLogger("hybridge.requests")

# How long the first line of a burst waits for the others.
WINDOW_S = 0.05
_STOP = None


def format_record(record: RequestRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.started_at))
    client = (record.client or "-").split(" ", 1)[0][:40]
    tokens = f"{record.usage.input_tokens}→{record.usage.output_tokens}"
    outcome = record.outcome + (f" ({record.error_kind})" if record.error_kind else "")
    model = f"{record.provider}/{record.model}" if record.provider else (record.requested_model or "-")
    line = (
        f"{stamp} {client} {record.route or '-'} {model} reason={record.reason or '-'} "
        f"tokens={tokens} {record.duration_s * 1000:.0f}ms {outcome}"
    )
    # What the client was told, for a request that did not get its answer (never prompt text).
    if record.error and record.error != record.reason:
        line += f": {record.error[:300]}"
    return line


class RequestLog:
    """Writes the request lines from its own thread (see the module's docstring)."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self._window_s = window_s
        self._queue: queue.SimpleQueue[RequestRecord | None] = queue.SimpleQueue()
        # Started with the first line: an idle router keeps no thread (and its memory) for it.
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def __call__(self, record: RequestRecord) -> None:
        self._queue.put(record)
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="hybridge-request-log", daemon=True)
                    self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)

    def _run(self) -> None:
        lower_this_thread()
        while True:
            records = [self._queue.get()]
            if records[0] is not _STOP:
                time.sleep(self._window_s)
            while True:
                try:
                    records.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = [format_record(r) for r in records if r is not _STOP]
            if lines:
                # A logging failure must not end the thread (logging reports its own).
                with contextlib.suppress(Exception):
                    log.info("%s", "\n".join(lines))
            if _STOP in records:
                return


def attach(events: RouterEvents) -> RequestLog:
    """Log every finished request at INFO on the `hybridge.requests` logger. Keep the
    returned writer (signals hold their listeners weakly) and close it when done."""
    writer = RequestLog()
    events.request_finished.connect(writer)
    return writer
