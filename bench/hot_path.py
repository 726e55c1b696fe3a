"""CPU that Hybridge's own process spends per request and per streamed chunk, ledger on and off.

CPU time (user + system of the router's process, read with psutil) rather than wall-clock
time: other work on a shared machine slows a request down but barely changes the CPU it
costs. The same figure as bench/run_all.py's "CPU per chunk and per request"
(bench/measure.cpu_cost), without the rest of the suite, so a change to the hot path can
be judged in a minute. With --profile, py-spy records the ledger-on router meanwhile.

    nice -n 19 .venv/bin/python bench/hot_path.py [--requests 500] [--chunks 5000] [--rounds 5]
        [--api openai|anthropic] [--profile /tmp/hot.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from bench import measure, report, services  # noqa: E402
from bench.services import Service  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="non-streaming requests per CPU figure")
    parser.add_argument("--chunks", type=int, default=5000, help="chunks per stream (0 ms pace)")
    parser.add_argument("--rounds", type=int, default=5, help="figures of each kind per router")
    parser.add_argument("--api", choices=("openai", "anthropic"), default="openai")
    parser.add_argument("--profile", type=Path, help="py-spy raw output for the ledger-on router")
    parser.add_argument("--ledger-on-only", action="store_true", help="measure only the router with the ledger on")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="hybridge-hot-") as tmp:
        workdir = Path(tmp)
        upstream = services.start_upstream(workdir)
        routers: list[Service] = []
        try:
            routers.append(services.start_hybridge(workdir, services.hybridge_config(workdir, upstream.port)))
            routers.append(
                services.start_hybridge(
                    workdir,
                    services.hybridge_config(workdir, upstream.port, overrides={"ledger": {"enabled": False}}),
                    name=report.HYBRIDGE_NO_LEDGER,
                )
            )
            if args.ledger_on_only:
                routers[1].stop()
                del routers[1]
            if args.api == "anthropic":
                routers = [
                    dataclasses.replace(r, chat_path="/v1/messages", api="anthropic", name=r.name + " (Anthropic)")
                    for r in routers
                ]
            spy = None
            if args.profile:
                binary = Path(sys.executable).parent / "py-spy"
                spy = subprocess.Popen(
                    [str(binary), "record", "-r", "300", "-f", "raw", "--gil", "--threads", "--nonblocking", "-o", str(args.profile),
                     "-p", str(routers[0].process.pid)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            for router in routers:
                cost = uvloop.run(measure.cpu_cost(router, args.chunks, args.rounds, args.requests))
                print(
                    f"{router.name}: CPU per request {statistics.median(cost.per_request_ms):.3f} ms "
                    f"(rounds {', '.join(f'{v:.3f}' for v in cost.per_request_ms)}); "
                    f"per chunk {statistics.median(cost.per_chunk_us):.2f} us "
                    f"(rounds {', '.join(f'{v:.2f}' for v in cost.per_chunk_us)})",
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
