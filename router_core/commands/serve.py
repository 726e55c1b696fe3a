"""`hybridge serve`: run the router headless in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import sys

from router_core import __version__
from router_core.commands.common import config_path, load_settings
from router_core.errors import SettingsError
from router_core.settings import Settings


def check_files(settings: Settings) -> str | None:
    """One line naming a broken ledger or price file, before the server starts; None when fine.

    The tray app serves without a ledger it cannot open (and says so); started by hand,
    a broken file is something to fix first, so `hybridge serve` stops with exit 2.
    """
    from router_core.ledger.prices import shipped_prices
    from router_core.ledger.schema import LedgerError, connect, ledger_path

    try:
        shipped_prices()
    except SettingsError as exc:
        return exc.message.removeprefix("invalid settings: ")
    if settings.ledger.enabled:
        try:
            connect(ledger_path(settings)).close()
        except LedgerError as exc:
            return exc.message
    return None


def run(args: argparse.Namespace) -> int:
    from router_core.service import RouterService, run_loop

    settings = load_settings(args)
    problem = check_files(settings)
    if problem is not None:
        print(f"hybridge: {problem}", file=sys.stderr)
        return 2
    service = RouterService(settings, port=args.port)
    service.config_path = config_path(args)

    async def main() -> None:
        async def announce() -> None:
            # Tests and scripts read the real port (for --port 0) from this line.
            while not (status := service.status()).running and not status.error:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
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
