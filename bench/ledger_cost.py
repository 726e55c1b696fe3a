"""What the ledger costs a router under load: requests/s at concurrency 32 with the ledger on
and off, and the CPU each of the router's threads spends per request.

    .venv/bin/python -m bench.ledger_cost [--rounds 10] [--seconds 3]

Two `hybridge serve` processes (ledger on, ledger off) in front of the synthetic upstream,
measured in turns (on, off, off, on, ...) so drifts in the machine's load fall on both alike;
the ratio is of the medians. Each thread's CPU time comes from /proc (Linux): the event
loop's, the ledger writer's (`hybridge-ledger`) and the request log's. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

import psutil

from bench import measure, services
from bench.services import Service


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of `pid`, by its name (the main one: loop)."""
    out: dict[str, float] = {}
    for thread in psutil.Process(pid).threads():
        try:
            name = Path(f"/proc/{pid}/task/{thread.id}/comm").read_text().strip()
        except OSError:
            continue
        name = "event loop" if thread.id == pid else name
        out[name] = out.get(name, 0.0) + thread.user_time + thread.system_time
    return out


async def one_round(target: Service, seconds: float) -> tuple[float, dict[str, float]]:
    before = thread_seconds(target.process.pid)
    run = await measure.request_rate(target, 32, seconds)
    await asyncio.sleep(0.3)  # the ledger's last batch of the round
    after = thread_seconds(target.process.pid)
    per_request = {k: (after[k] - before.get(k, 0.0)) / max(run.requests, 1) * 1e6 for k in after}
    return run.per_second, {k: v for k, v in per_request.items() if v >= 0.5}


async def main(rounds: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="hybridge-ledger-cost-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        upstream = services.start_upstream(workdir)
        stack.callback(upstream.stop)
        routers = {
            "ledger on": services.start_hybridge(workdir, services.hybridge_config(workdir, upstream.port)),
            "ledger off": services.start_hybridge(
                workdir,
                services.hybridge_config(workdir, upstream.port, overrides={"ledger": {"enabled": False}}),
                name="ledger off",
            ),
        }
        for router in routers.values():
            stack.callback(router.stop)
            await measure.request_rate(router, 32, 1.0)  # warm-up
        rates: dict[str, list[float]] = {name: [] for name in routers}
        cpu: dict[str, list[dict[str, float]]] = {name: [] for name in routers}
        for i in range(rounds):
            order = list(routers) if i % 2 == 0 else list(reversed(routers))
            for name in order:
                rate, per_request = await one_round(routers[name], seconds)
                rates[name].append(rate)
                cpu[name].append(per_request)
        for name in routers:
            threads = sorted({t for figures in cpu[name] for t in figures})
            cpu_text = ", ".join(f"{t} {statistics.median(f.get(t, 0.0) for f in cpu[name]):.1f} µs" for t in threads)
            print(f"{name}: {statistics.median(rates[name]):,.0f} requests/s (median of {rounds}); "
                  f"CPU per request: {cpu_text}")  # fmt: skip
        ratio = statistics.median(rates["ledger on"]) / statistics.median(rates["ledger off"])
        print(f"ledger on / off, requests/s: {ratio:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.seconds))
