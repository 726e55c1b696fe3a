"""The router's event bus: what the request path and the privacy switch publish.

The ledger's own events (rows written, live figures, budget alerts) are the ledger's: see
`router_core/ledger/signals.py`. This module names no ledger type, so the ledger can
listen here without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router_core.inventory.context import TruncationWarning
from router_core.privacy.state import PrivacyStatus
from router_core.records import LiveStreams, RequestRecord
from router_core.signals import Signal


@dataclass(frozen=True, slots=True)
class KeptLocal:
    """Privacy mode served locally a request that routing would have sent to the cloud."""

    requested_model: str
    reason: str  # why routing wanted the cloud (e.g. a heavy tag)
    tags: frozenset[str] = frozenset()


@dataclass(slots=True)
class RouterEvents:
    request_finished: Signal[RequestRecord] = field(default_factory=Signal)
    # Running streams' counters, sampled by the ledger's live figures about once a second
    # (nothing is emitted per chunk).
    streams: LiveStreams = field(default_factory=LiveStreams)
    # Privacy mode switched (router_core/privacy/state.py) and flagged work it kept local.
    privacy_changed: Signal[PrivacyStatus] = field(default_factory=Signal)
    privacy_kept_local: Signal[KeptLocal] = field(default_factory=Signal)
    # A local model read far fewer prompt tokens than were sent (router_core/inventory/context.py).
    truncation_warning: Signal[TruncationWarning] = field(default_factory=Signal)
