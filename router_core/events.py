"""Events the router publishes (for the ledger, the tray and the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from router_core.inventory.context import TruncationWarning
from router_core.privacy.state import PrivacyStatus
from router_core.signals import Signal
from router_core.types import Usage

if TYPE_CHECKING:  # the ledger's types import this module
    from router_core.ledger.budget import BudgetAlert
    from router_core.ledger.entry import LedgerEntry
    from router_core.ledger.live import LiveSnapshot

# ok; error (failed upstream, or unreadable request); cancelled (the client left);
# refused (policy: privacy, budget, unknown model, no route); interrupted (Hybridge stopped).
Outcome = Literal["ok", "error", "cancelled", "refused", "interrupted"]


@dataclass(slots=True)
class RequestRecord:
    """One finished request, as the ledger stores it."""

    request_id: str
    started_at: float  # Unix time
    client: str  # user agent
    session: str | None
    requested_model: str
    api: Literal["openai", "anthropic", "responses", "ollama"]
    route: str  # local | cloud | "" when no candidate ran
    reason: str
    provider: str
    model: str
    streamed: bool
    outcome: Outcome
    usage: Usage
    ttft_s: float | None
    duration_s: float
    error_kind: str | None = None
    tags: frozenset[str] = frozenset()
    fallbacks: tuple[str, ...] = ()
    # What the prompt held (references, hashed off the hot path by the ledger's baseline cache).
    messages: list[Any] | None = None
    tools: list[Any] | None = None


@dataclass(slots=True)
class StreamProgress:
    """Emitted as a stream runs, for live tokens/sec."""

    request_id: str
    route: str
    model: str
    chunks: int
    done: bool = False


@dataclass(frozen=True, slots=True)
class KeptLocal:
    """Privacy mode served locally a request that routing would have sent to the cloud."""

    requested_model: str
    reason: str  # why routing wanted the cloud (e.g. a heavy tag)
    tags: frozenset[str] = frozenset()


@dataclass(slots=True)
class RouterEvents:
    request_finished: Signal[RequestRecord] = field(default_factory=Signal)
    stream_progress: Signal[StreamProgress] = field(default_factory=Signal)
    # Privacy mode switched (router_core/privacy/state.py) and flagged work it kept local.
    privacy_changed: Signal[PrivacyStatus] = field(default_factory=Signal)
    privacy_kept_local: Signal[KeptLocal] = field(default_factory=Signal)
    # A local model read far fewer prompt tokens than were sent (router_core/inventory/context.py).
    truncation_warning: Signal[TruncationWarning] = field(default_factory=Signal)
    # The ledger (router_core/ledger/): each row once written, with its cost and savings; live
    # tokens/sec, spend and savings about once a second while busy; budget warnings.
    ledger_entry: Signal[LedgerEntry] = field(default_factory=Signal)
    live_stats: Signal[LiveSnapshot] = field(default_factory=Signal)
    budget_alert: Signal[BudgetAlert] = field(default_factory=Signal)
