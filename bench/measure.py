"""The request-level measurements, each run over every target with the targets interleaved.

A target is a Service (bench/services.py): where to send, in which API, with which model
prefix. The first target is the direct connection; "added" figures are a target's minus
the direct one's from the same run. Loads are bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psutil

from bench.services import Service
from bench.wire import Connection, Response, WireError, content_events, stream_failed

MESSAGES = [{"role": "user", "content": "benchmark"}]
STALL_S = 1.0  # a gap this long between two chunks of one stream counts as a stall


def body(target: Service, model: str, chunks: int, stream: bool) -> bytes:
    data: dict[str, object] = {
        "model": target.model(model),
        "max_tokens": chunks,
        "stream": stream,
        "messages": MESSAGES,
    }
    return orjson.dumps(data)


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _post(conn: Connection, target: Service, payload: bytes, limit_s: float = 120.0) -> Response:
    response = await conn.request(target.chat_path, payload, target.headers, limit_s=limit_s)
    if response.status != 200:
        raise WireError(f"{target.name}: HTTP {response.status}: {response.body[:300]!r}")
    return response


@dataclass
class Samples:
    """Per-target lists of one figure's samples (seconds unless named otherwise)."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)


def shuffled(targets: Sequence[Service], i: int) -> list[Service]:
    """The targets in a fresh order each round (seeded by the round, so runs repeat): work a
    server does after answering (a ledger write, a peer's logging) lands on each of the others
    alike. Rotating the list did not do that: it keeps who follows whom, so one target always
    came right after the same other one (Hybridge with the ledger off after Hybridge, direct
    after claude-code-router) and carried its after-work in every round."""
    order = list(targets)
    random.Random(i).shuffle(order)
    return order


# How long every process idles before each request of the cold figures. On this machine (a VM
# whose idle vCPUs halt at once: guest_halt_poll_ns=0) Hybridge's added latency p50 was +0.39 ms
# back to back, +0.45 after 2 ms of idle, +0.90 after 20 ms and no more after 100 ms
# (bench/profile_notes.md): 50 ms is well into the cold side.
COLD_IDLE_S = 0.05


async def _one_at_a_time(
    targets: Sequence[Service], requests: int, warmup: int, idle_s: float, stream: bool
) -> list[tuple[str, Response]]:
    """`requests` measured requests per target at concurrency 1, the targets taking turns.

    Warm (idle_s 0): each measured request follows an unmeasured one on the same path, so
    every path, direct included, is measured just after it served. Without it the paths are
    not alike: the upstream serves every path's requests and stays warm, while a router's
    process idles through the other paths' turns (a peer's request takes 10 ms) and starts
    cold, which made the routed paths' added latency depend on which peers took part.
    Cold (idle_s > 0): every process idles that long before each measured request instead."""
    conns = {t.name: Connection("127.0.0.1", t.port) for t in targets}
    chunks = 4 if stream else 16
    out: list[tuple[str, Response]] = []
    for i in range(warmup + requests):
        for target in shuffled(targets, i):
            payload = body(target, "synth", chunks, stream)
            if idle_s:
                await asyncio.sleep(idle_s)
            else:
                await _post(conns[target.name], target, payload)
            response = await _post(conns[target.name], target, payload)
            if i >= warmup:
                out.append((target.name, response))
    for conn in conns.values():
        conn.close()
    return out


async def latency(targets: Sequence[Service], requests: int, warmup: int = 30, idle_s: float = 0.0) -> Samples:
    """Non-streaming request time at concurrency 1 (16-token answer), warm or cold (_one_at_a_time)."""
    out = Samples()
    for name, response in await _one_at_a_time(targets, requests, warmup, idle_s, stream=False):
        out.add(name, response.elapsed)
    return out


async def ttft(targets: Sequence[Service], requests: int, warmup: int = 30, idle_s: float = 0.0) -> Samples:
    """Time to the first content chunk of a 4-chunk stream at concurrency 1, warm or cold."""
    out = Samples()
    for name, response in await _one_at_a_time(targets, requests, warmup, idle_s, stream=True):
        arrivals = content_events(response)
        if arrivals:
            out.add(name, arrivals[0] - response.started)
    return out


@dataclass
class StreamFigures:
    rates: dict[str, list[float]] = field(default_factory=dict)  # chunks/s per stream
    counts: dict[str, list[int]] = field(default_factory=dict)  # content chunks per stream
    gaps: dict[str, list[float]] = field(default_factory=dict)  # seconds between chunks


async def streams(targets: Sequence[Service], model: str, chunks: int, rounds: int) -> StreamFigures:
    """`rounds` streams of `chunks` chunks per target, interleaved, one at a time."""
    conns = {t.name: Connection("127.0.0.1", t.port) for t in targets}
    out = StreamFigures()
    for target in targets:  # warm each path once
        await _post(conns[target.name], target, body(target, model, min(chunks, 50), True))
    for i in range(rounds):
        for target in shuffled(targets, i):
            response = await _post(conns[target.name], target, body(target, model, chunks, True), limit_s=300)
            arrivals = content_events(response)
            out.counts.setdefault(target.name, []).append(len(arrivals))
            out.rates.setdefault(target.name, []).append(len(arrivals) / response.elapsed)
            out.gaps.setdefault(target.name, []).extend(b - a for a, b in itertools.pairwise(arrivals))
    for conn in conns.values():
        conn.close()
    return out


@dataclass
class ConcurrentRun:
    target: str
    streams: int
    chunks: int
    errors: int
    wrong_counts: int
    stalls: int
    gaps: list[float]
    wall_s: float
    error_samples: list[str]


async def concurrent_streams(target: Service, n: int, chunks: int, model: str = "synth-p20") -> ConcurrentRun:
    """`n` streams at once, each on its own connection; counts errors, wrong chunk counts, stalls."""
    payload = body(target, model, chunks, True)
    gaps: list[float] = []
    errors: list[str] = []
    wrong = stalls = 0

    async def one() -> None:
        nonlocal wrong, stalls
        conn = Connection("127.0.0.1", target.port)
        try:
            response = await _post(conn, target, payload, limit_s=max(60.0, chunks * 0.02 * 20))
        except (WireError, OSError, TimeoutError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        finally:
            conn.close()
        arrivals = content_events(response)
        if stream_failed(response):
            errors.append("stream ended without its proper end")
        if len(arrivals) != chunks:
            wrong += 1
        mine = [b - a for a, b in itertools.pairwise(arrivals)]
        stalls += sum(1 for g in mine if g >= STALL_S)
        gaps.extend(mine)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return ConcurrentRun(target.name, n, chunks, len(errors), wrong, stalls, gaps, time.perf_counter() - t0, errors[:3])


@dataclass
class RateRun:
    target: str
    concurrency: int
    requests: int
    errors: int
    wall_s: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0


async def request_rate(target: Service, concurrency: int, seconds: float) -> RateRun:
    """Non-streaming requests from `concurrency` keep-alive connections for `seconds`."""
    payload = body(target, "synth", 16, False)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        conn = Connection("127.0.0.1", target.port)
        try:
            while time.perf_counter() < deadline:
                try:
                    response = await _post(conn, target, payload, limit_s=30)
                    latencies.append(response.elapsed)
                except (WireError, OSError, TimeoutError):
                    errors += 1
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return RateRun(target.name, concurrency, len(latencies), errors, time.perf_counter() - t0, latencies)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _run_ns(pid: int) -> int | None:
    """CPU time of `pid`'s live threads in nanoseconds (Linux schedstat), or None where the
    kernel does not give it. psutil's figure moves in 10 ms clock ticks: a few hundred
    requests or a stream of thousands of chunks is only a handful of ticks."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total


def cpu_seconds(target: Service) -> float:
    """User + system CPU time of the target's process tree so far."""
    total = 0.0
    for proc in target.tree():
        precise = _run_ns(proc.pid)
        if precise is not None:
            total += precise / 1e9
            continue
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@dataclass
class CpuCost:
    """CPU the router itself spends (its process, not the client's or the upstream's)."""

    target: str
    per_chunk_us: list[float] = field(default_factory=list)  # one figure per stream
    per_request_ms: list[float] = field(default_factory=list)  # one figure per batch of requests


async def cpu_cost(target: Service, chunks: int, rounds: int, requests: int) -> CpuCost:
    """CPU per streamed chunk (0 ms pace) and per non-streaming request, one at a time.

    The ledger writes after the last byte, off the loop: each figure waits for the process to
    go quiet again (CPU unchanged over 0.2 s, at most 2 s) so a row's write is counted.
    """
    out = CpuCost(target.name)
    conn = Connection("127.0.0.1", target.port)

    async def settled() -> float:
        before = cpu_seconds(target)
        for _ in range(10):
            await asyncio.sleep(0.2)
            now = cpu_seconds(target)
            if now - before < 0.002:
                return now
            before = now
        return before

    try:
        await _post(conn, target, body(target, "synth", 50, True))
        for _ in range(rounds):
            start = await settled()
            response = await _post(conn, target, body(target, "synth", chunks, True), limit_s=300)
            got = len(content_events(response))
            spent = await settled() - start
            out.per_chunk_us.append(spent / max(got, 1) * 1e6)
            start = await settled()
            payload = body(target, "synth", 16, False)
            for _ in range(requests):
                await _post(conn, target, payload)
            spent = await settled() - start
            out.per_request_ms.append(spent / requests * 1e3)
    finally:
        conn.close()
    return out
