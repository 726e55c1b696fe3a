"""What Hybridge's own process spends per request and per streamed chunk, ledger on and off.

Two measures that a shared, busy machine disturbs little (wall-clock figures it does):

- CPU time (default): user + system time of the router's threads (Linux schedstat, in
  nanoseconds), as bench/run_all.py's "CPU per chunk and per request" (measure.cpu_cost):
  non-streaming requests one at a time, and streams at 0 ms pace. Other work on the machine
  still moves it some (caches, clock), so take the median of several rounds.
- Instructions (`--instructions`): the router runs under valgrind's callgrind and its
  instruction count is read before and after each batch (callgrind_control). The same
  count whatever else runs. The router is ~50x slower there, so its streams are paced
  (10 ms a chunk: one event per socket read, as real decoding delivers them, even at valgrind's pace) and the
  per-chunk figure is the difference between a long and a short stream.

With --profile, py-spy records the ledger-on router (GIL-holding samples) meanwhile.

    nice -n 19 .venv/bin/python bench/hot_path.py [--requests 500] [--chunks 5000] [--rounds 5]
        [--api openai|anthropic] [--ledger-on-only] [--profile /tmp/hot.txt]
    nice -n 19 .venv/bin/python bench/hot_path.py --instructions [--requests 200] [--chunks 300]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from bench import measure, report, services  # noqa: E402
from bench.services import Service  # noqa: E402

PACED = "synth-p10"  # the synthetic upstream waits 10 ms between chunks: under valgrind too, one per read


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, help="non-streaming requests per figure (500; 200 with --instructions)")
    parser.add_argument(
        "--chunks", type=int, help="chunks per stream (5000 at 0 ms pace; 300 paced with --instructions)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="figures of each kind per router")
    parser.add_argument("--api", choices=("openai", "anthropic"), default="openai")
    parser.add_argument("--ledger-on-only", action="store_true", help="measure only the router with the ledger on")
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    parser.add_argument("--profile", type=Path, help="py-spy raw output for the ledger-on router")
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 200 if args.instructions else 500
    if args.chunks is None:
        args.chunks = 300 if args.instructions else 5000
    return args


def instructions(target: Service) -> int:
    """Instructions the router's threads have run so far (callgrind's Ir, every thread)."""
    done = subprocess.run(
        ["callgrind_control", "-e", "Ir", str(target.process.pid)], capture_output=True, text=True, timeout=60
    )
    counts = [int(m.replace(",", "")) for m in re.findall(r"Th\s+\d+\s+([\d,]+)", done.stdout)]
    if not counts:
        raise RuntimeError(f"callgrind_control found no counts: {done.stdout}{done.stderr}")
    return sum(counts)


async def instruction_cost(target: Service, requests: int, chunks: int, rounds: int) -> tuple[list[float], list[float]]:
    """(instructions per non-streaming request, per streamed chunk) for each round."""
    conn = measure.Connection("127.0.0.1", target.port)
    per_request: list[float] = []
    per_chunk: list[float] = []

    async def idle() -> float:
        """Instructions a second with nothing to serve (uvicorn's tick, the ledger's publisher)."""
        before = await asyncio.to_thread(instructions, target)
        started = time.monotonic()
        await asyncio.sleep(3.0)
        return (await asyncio.to_thread(instructions, target) - before) / (time.monotonic() - started)

    async def counted(payload: bytes, times: int, background: float) -> float:
        """Instructions of `times` requests, less what the idle timers ran meanwhile."""
        await asyncio.sleep(1.0)  # the ledger's batch of the previous step is written
        before = await asyncio.to_thread(instructions, target)
        started = time.monotonic()
        for _ in range(times):
            await measure._post(conn, target, payload, limit_s=600)
        await asyncio.sleep(1.0)
        spent = await asyncio.to_thread(instructions, target) - before
        return spent - background * (time.monotonic() - started)

    try:
        for _ in range(20):  # warm: imports done on first use, caches filled
            await measure._post(conn, target, measure.body(target, "synth", 16, False), limit_s=600)
            await measure._post(conn, target, measure.body(target, PACED, 10, True), limit_s=600)
        for _ in range(rounds):
            background = await idle()
            spent = await counted(measure.body(target, "synth", 16, False), requests, background)
            per_request.append(spent / requests)
            long = await counted(measure.body(target, PACED, chunks, True), 1, background)
            short = await counted(measure.body(target, PACED, 10, True), 1, background)
            per_chunk.append((long - short) / (chunks - 10))
    finally:
        conn.close()
    return per_request, per_chunk


def summary(values: list[float], unit: str, digits: int) -> str:
    rounds = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"{statistics.median(values):.{digits}f} {unit} (rounds {rounds})"


def main() -> int:
    args = parse_args()
    if args.instructions and not shutil.which("callgrind_control"):
        print("--instructions needs valgrind (callgrind_control on PATH)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hybridge-hot-") as tmp:
        workdir = Path(tmp)
        upstream = services.start_upstream(workdir)
        routers: list[Service] = []
        wrapper = (
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/callgrind.%p"]
            if args.instructions
            else None
        )
        timeout = 600.0 if args.instructions else 90.0
        try:
            configs = [(services.hybridge_config(workdir, upstream.port), "Hybridge")]
            if not args.ledger_on_only:
                configs.append(
                    (
                        services.hybridge_config(workdir, upstream.port, overrides={"ledger": {"enabled": False}}),
                        report.HYBRIDGE_NO_LEDGER,
                    )
                )
            for config, name in configs:
                routers.append(services.start_hybridge(workdir, config, name=name, wrapper=wrapper, timeout=timeout))
            if args.api == "anthropic":
                routers = [
                    dataclasses.replace(r, chat_path="/v1/messages", api="anthropic", name=r.name + " (Anthropic)")
                    for r in routers
                ]
            spy = None
            if args.profile:
                binary = Path(sys.executable).parent / "py-spy"
                spy = subprocess.Popen(
                    [str(binary), "record", "-r", "300", "-f", "raw", "--gil", "--threads", "--nonblocking",
                     "-o", str(args.profile), "-p", str(routers[0].process.pid)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            for router in routers:
                if args.instructions:
                    per_request, per_chunk = uvloop.run(
                        instruction_cost(router, args.requests, args.chunks, args.rounds)
                    )
                    print(
                        f"{router.name}: instructions per request {summary([v / 1e6 for v in per_request], 'M', 3)}; "
                        f"per chunk (one per read) {summary([v / 1e3 for v in per_chunk], 'k', 1)}",
                        flush=True,
                    )
                else:
                    cost = uvloop.run(measure.cpu_cost(router, args.chunks, args.rounds, args.requests))
                    print(
                        f"{router.name}: CPU per request {summary(cost.per_request_ms, 'ms', 3)}; "
                        f"per chunk (0 ms pace) {summary(cost.per_chunk_us, 'us', 2)}",
                        flush=True,
                    )
                if spy is not None:
                    spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
                    spy.wait(30)
                    spy = None
        finally:
            for router in routers:
                router.stop()
            upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
