"""Live figures: tokens/sec over the last 10 s and per active stream, TTFT, active streams.

Streams are sampled, not followed: each running stream bumps plain counters on its
LiveStream (router_core/records.py) and this module reads them when a snapshot is taken
(the ledger's publisher, about once a second, and the tray's 1 s refresh), so a chunk costs
the router nothing here. Finished requests arrive from the ledger's writer thread, a batch
at a time (a few list operations under a lock). A streamed chunk counts as one token
(engines send about one a chunk); a whole answer's output tokens count when it arrives.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from router_core.records import LiveStream, LiveStreams, RequestRecord

WINDOW_S = 10.0
TTFT_KEEP = 20


@dataclass(frozen=True, slots=True)
class StreamRate:
    request_id: str
    route: str
    model: str
    tokens: int
    tokens_per_second: float | None  # None until two chunks have arrived
    running_s: float


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """Spend and savings of one period (today, this month)."""

    period: str  # "2026-11-22" or "2026-11"
    requests: int = 0
    local_requests: int = 0
    cloud_requests: int = 0
    spend_usd: float = 0.0  # priced cloud requests only
    baseline_usd: float = 0.0
    savings_usd: float = 0.0
    unpriced_requests: int = 0  # a price (actual or baseline) was missing: not in the sums
    energy_wh: float = 0.0
    energy_cost_usd: float = 0.0
    # Local requests whose electricity could not be measured.
    electricity_unmeasured: int = 0
    # Refused before any model ran (privacy mode's own count apart), Ollama cloud (paid by
    # subscription, no per-token price), local requests with estimated electricity.
    refused_requests: int = 0
    privacy_refused: int = 0
    subscription_requests: int = 0
    energy_estimated: int = 0


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    at: float
    tokens_per_second: float  # everything, over the last WINDOW_S
    local_tokens_per_second: float
    cloud_tokens_per_second: float
    streams: tuple[StreamRate, ...]
    ttft_last_s: float | None
    ttft_median_s: float | None  # over the last TTFT_KEEP requests
    today: PeriodFigures
    month: PeriodFigures
    electricity_measured: bool
    window_s: float = WINDOW_S

    @property
    def active_streams(self) -> int:
        return len(self.streams)


class LiveStats:
    def __init__(self, clock: Callable[[], float] = time.time, streams: LiveStreams | None = None) -> None:
        self._clock = clock
        self._live = streams
        # Chunks of each sampled stream already counted in `_tokens`.
        self._seen: dict[str, int] = {}
        self._tokens: deque[tuple[float, int, bool]] = deque()  # (at, tokens, local)
        self._ttfts: deque[float] = deque(maxlen=TTFT_KEEP)
        self._lock = threading.Lock()
        self._version = 0

    def _now(self) -> float:
        return self._clock()

    def on_finished(self, record: RequestRecord) -> None:
        self.on_finished_all((record,))

    def on_finished_all(self, records: Iterable[RequestRecord]) -> None:
        """Finished requests (the ledger's writer hands over a batch at a time)."""
        now = self._now()
        with self._lock:
            self._version += 1
            for record in records:
                if record.ttft_s is not None and record.outcome == "ok":
                    self._ttfts.append(record.ttft_s)
                if not record.streamed and record.usage.output_tokens:
                    self._tokens.append((now, record.usage.output_tokens, record.route == "local"))

    def _sample(self, now: float) -> list[LiveStream]:
        """Fold the counters' new chunks into the window; the streams running now.
        Called under the lock."""
        if self._live is None:
            return []
        running = self._live.running()
        seen = self._seen
        for stream in [*self._live.take_ended(), *running]:
            before = seen.get(stream.request_id, 0)
            chunks = stream.chunks
            if chunks > before:
                self._version += 1
                self._tokens.append((now, chunks - before, stream.route == "local"))
                seen[stream.request_id] = chunks
        if len(seen) > len(running):
            ids = {s.request_id for s in running}
            for rid in [rid for rid in seen if rid not in ids]:
                del seen[rid]
        return running

    @property
    def version(self) -> int:
        """Changes whenever an event arrived (the publisher emits only then, or while busy)."""
        return self._version

    def local_stream_intervals(self) -> list[tuple[str, float, float]]:
        """(request id, first chunk, now) of every local stream still running (to share GPU energy)."""
        now = self._now()
        with self._lock:
            return [(s.request_id, s.first_at, now) for s in self._sample(now) if s.route == "local" and s.chunks]

    def busy(self) -> bool:
        """Streams are running or tokens are still inside the window."""
        now = self._now()
        with self._lock:
            if self._sample(now):
                return True
            return bool(self._tokens and self._tokens[-1][0] > now - WINDOW_S)

    def snapshot(self, today: PeriodFigures, month: PeriodFigures, electricity_measured: bool) -> LiveSnapshot:
        now = self._now()
        with self._lock:
            running = self._sample(now)
            while self._tokens and self._tokens[0][0] <= now - WINDOW_S:
                self._tokens.popleft()
            local = sum(n for _, n, is_local in self._tokens if is_local)
            cloud = sum(n for _, n, is_local in self._tokens if not is_local)
            streams = tuple(
                StreamRate(
                    request_id=s.request_id,
                    route=s.route,
                    model=s.model,
                    tokens=s.chunks,
                    # The first chunk starts the clock; the rest are decoded after it.
                    tokens_per_second=(s.chunks - 1) / (s.last_at - s.first_at) if s.last_at > s.first_at else None,
                    running_s=now - s.first_at if s.chunks else 0.0,
                )
                for s in running
            )
            ttfts = sorted(self._ttfts)
            last = self._ttfts[-1] if self._ttfts else None
        return LiveSnapshot(
            at=now,
            tokens_per_second=(local + cloud) / WINDOW_S,
            local_tokens_per_second=local / WINDOW_S,
            cloud_tokens_per_second=cloud / WINDOW_S,
            streams=streams,
            ttft_last_s=last,
            ttft_median_s=ttfts[len(ttfts) // 2] if ttfts else None,
            today=today,
            month=month,
            electricity_measured=electricity_measured,
        )
