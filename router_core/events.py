"""Events the router publishes (for the ledger, the tray and the dashboard)."""

from __future__ import annotations

import threading
import time
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
    # The pool (routing.pools) the serving backend was chosen from ("" none), and the local
    # engine's address (`host:port`) that served it ("" for the cloud).
    pool: str = ""
    backend: str = ""
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


class LiveStream:
    """One running stream's live figures: plain counters the stream bumps as it forwards,
    read by the live-stats sampler on its own timer (no event per chunk)."""

    __slots__ = ("chunks", "first_at", "last_at", "model", "request_id", "route")

    def __init__(self, request_id: str, route: str, model: str) -> None:
        self.request_id = request_id
        self.route = route
        self.model = model
        self.chunks = 0
        # Unix times of the first and the latest forwarded chunk (0.0 until the first).
        self.first_at = 0.0
        self.last_at = 0.0

    def add(self, chunks: int) -> None:
        """`chunks` more went out (one socket write's worth)."""
        now = time.time()
        if not self.chunks:
            self.first_at = now
        self.chunks += chunks
        self.last_at = now


class LiveStreams:
    """The streams running now, and those that ended since the sampler last looked.

    Opened and closed once per stream under a lock; the counters themselves are written by
    the stream's event loop and read by the sampler's thread without one (an int attribute
    is read whole).
    """

    def __init__(self) -> None:
        self._running: dict[str, LiveStream] = {}
        self._ended: list[LiveStream] = []
        self._lock = threading.Lock()

    def open(self, request_id: str, route: str, model: str) -> LiveStream:
        stream = LiveStream(request_id, route, model)
        with self._lock:
            self._running[request_id] = stream
        return stream

    def close(self, stream: LiveStream) -> None:
        with self._lock:
            if self._running.pop(stream.request_id, None) is not None:
                self._ended.append(stream)

    def running(self) -> list[LiveStream]:
        with self._lock:
            return list(self._running.values())

    def take_ended(self) -> list[LiveStream]:
        """Streams closed since the last call (so their last chunks are counted once)."""
        with self._lock:
            ended, self._ended = self._ended, []
        return ended


@dataclass(frozen=True, slots=True)
class KeptLocal:
    """Privacy mode served locally a request that routing would have sent to the cloud."""

    requested_model: str
    reason: str  # why routing wanted the cloud (e.g. a heavy tag)
    tags: frozenset[str] = frozenset()


@dataclass(slots=True)
class RouterEvents:
    request_finished: Signal[RequestRecord] = field(default_factory=Signal)
    # Not emitted per chunk by the router (see `streams`); kept for callers that feed it.
    stream_progress: Signal[StreamProgress] = field(default_factory=Signal)
    # Running streams' counters, sampled by the ledger's live figures about once a second.
    streams: LiveStreams = field(default_factory=LiveStreams)
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
