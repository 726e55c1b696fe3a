"""The request records the whole core shares: a finished request's row, and a running
stream's live counters.

A leaf (it imports only `types`): the server writes these, the ledger and the request log
read them, and the event bus carries them, so none of those needs to import another to
name them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from router_core.types import Usage

# ok; error (failed upstream, or unreadable request); cancelled (the client left);
# refused (policy: privacy, budget, unknown model, no route); interrupted (Hybridge stopped).
Outcome = Literal["ok", "error", "cancelled", "refused", "interrupted"]
# The API the client spoke.
Api = Literal["openai", "anthropic", "responses", "ollama"]


@dataclass(slots=True)
class RequestRecord:
    """One finished request, as the ledger stores it."""

    request_id: str
    started_at: float  # Unix time
    client: str  # user agent
    session: str | None
    requested_model: str
    api: Api
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
    # What went wrong, as the client was told (redacted); "" for an answered request.
    error: str = ""
    # The pool (routing.pools) the serving backend was chosen from ("" none), and the local
    # engine's address (`host:port`) that served it ("" for the cloud).
    pool: str = ""
    backend: str = ""
    # What the prompt held (references, hashed off the hot path by the ledger's baseline cache).
    messages: list[Any] | None = None
    tools: list[Any] | None = None


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
