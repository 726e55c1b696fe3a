"""A process that writes ledger rows as fast as it can, for the kill -9 test.

`python -m tests.support.ledger_writer LEDGER RUN` emits RequestRecords through a real
Ledger (its queue and writer thread). After each record it waits until the row is
committed (`flush`) and prints its sequence number, so the parent knows which rows must
survive a kill: every printed one, plus at most the one in flight.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from router_core.events import RouterEvents
from router_core.ledger.recorder import Ledger
from router_core.records import RequestRecord
from router_core.types import Usage
from tests.support.servers import make_settings


def main(path: str, run: str) -> None:
    events = RouterEvents()
    ledger = Ledger(make_settings({}), events, path=Path(path), power=None).start()
    seq = 0
    while True:
        seq += 1
        events.request_finished.emit(
            RequestRecord(
                request_id=f"run{run}-{seq}",
                started_at=time.time(),
                client="crash-test",
                session=f"run{run}",
                requested_model="cloud",
                api="openai",
                route="cloud",
                reason="crash test",
                provider="anthropic",
                model="claude-sonnet-4-6",
                streamed=True,
                outcome="ok",
                usage=Usage(input_tokens=1000 + seq, output_tokens=100, cache_read_tokens=5000),
                ttft_s=0.2,
                duration_s=1.0,
                tags=frozenset({"auth", "schema"}),
            )
        )
        if not ledger.flush(10):
            raise SystemExit("ledger writer stalled")
        print(seq, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
