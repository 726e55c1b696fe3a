"""One log line per finished request for `hybridge serve` (as `ollama serve` logs each one):
time, client, route, model, reason, tokens, milliseconds, outcome. Never prompt text: only
the fields of RequestRecord that describe the request, not what it said."""

from __future__ import annotations

import logging
import time

from router_core.events import RouterEvents
from router_core.records import RequestRecord

log = logging.getLogger("hybridge.requests")


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


def log_record(record: RequestRecord) -> None:
    log.info("%s", format_record(record))


def attach(events: RouterEvents) -> None:
    """Log every finished request at INFO on the `hybridge.requests` logger (a module-level
    function: signals hold their listeners weakly)."""
    events.request_finished.connect(log_record)
