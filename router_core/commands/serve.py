"""`hybridge serve`: run the router headless in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import sys

from router_core import __version__
from router_core.commands.common import config_path, load_settings


def run(args: argparse.Namespace) -> int:
    from router_core.service import RouterService, run_loop

    service = RouterService(load_settings(args), port=args.port)
    service.config_path = config_path(args)

    async def main() -> None:
        async def announce() -> None:
            # Tests and scripts read the real port (for --port 0) from this line.
            # Ready: the port is known and the runtime file written (the CLI finds it at once).
            while not service.ready:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            status = service.status()
            if status.running:
                print(f"hybridge {__version__}: serving on {status.base_url}", flush=True)

        task = asyncio.create_task(announce())
        await service.serve()
        task.cancel()

    run_loop(main())
    status = service.status()
    if status.error:
        print(f"hybridge: {status.error}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="run the router headless")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (0: any free port)")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    parser.set_defaults(func=run)
