"""The ledger's own events, declared by the ledger (as a mitmproxy addon owns its hooks).

The service makes one `LedgerSignals` and hands it to each ledger it opens, so whoever
listens (app/bridge.py, `hybridge serve`'s log, tests) subscribes once, before the ledger
exists, and keeps listening across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router_core.ledger.budget import BudgetAlert
from router_core.ledger.entry import LedgerEntry
from router_core.ledger.live import LiveSnapshot
from router_core.signals import Signal


@dataclass(slots=True)
class LedgerSignals:
    # Each row once written, with its cost and savings (the ledger's writer thread).
    entry_written: Signal[LedgerEntry] = field(default_factory=Signal)
    # Live tokens/sec, spend and savings: about once a second while busy, and once after.
    live_stats: Signal[LiveSnapshot] = field(default_factory=Signal)
    # Spend crossed a cap's warning share, or reached the cap.
    budget_alert: Signal[BudgetAlert] = field(default_factory=Signal)
