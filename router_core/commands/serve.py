"""`hybridge serve`: run the router headless in the foreground.

It says who holds the port when it is taken, prints the first-run checklist once it listens,
and logs one line per request to stderr (router_core/request_log.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from router_core import __version__
from router_core.collector import freeze_startup_objects, raise_young_threshold
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


def enable_request_log() -> None:
    """Request lines at the normal level, whatever -v says, in a plain format on stderr."""
    logger = logging.getLogger("hybridge.requests")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def print_first_run(settings: Settings) -> None:
    from router_core.first_run import render, run_checks

    try:
        print(render(run_checks(settings)), flush=True)
    except BrokenPipeError:  # `hybridge serve | head -1`: whoever read the first line left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def serve(settings: Settings, port: int | None, args: argparse.Namespace) -> int:
    from router_core.port_check import port_problem
    from router_core.request_log import attach
    from router_core.service import RouterService, run_loop

    broken_file = check_files(settings)
    if broken_file is not None:
        print(f"hybridge: {broken_file}", file=sys.stderr)
        return 2
    problem = port_problem(settings.server.host, settings.server.port if port is None else port)
    if problem:
        print(f"hybridge: {problem}", file=sys.stderr)
        return 1
    service = RouterService(settings, port=port)
    service.config_path = config_path(args)
    enable_request_log()
    request_log = attach(service.events)

    async def main() -> None:
        async def announce() -> None:
            # Tests and scripts read the real port (for --port 0) from this line.
            # Ready: the port is known and the runtime file written (the CLI finds it at once).
            while not service.ready:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            status = service.status()
            if status.running:
                freeze_startup_objects()
                raise_young_threshold()
                print(f"hybridge {__version__}: serving on {status.base_url}", flush=True)
                if not getattr(args, "quiet", False):
                    await asyncio.to_thread(print_first_run, settings)

        task = asyncio.create_task(announce())
        await service.serve()
        task.cancel()

    try:
        run_loop(main())
    finally:
        request_log.close()  # the lines still queued
    status = service.status()
    if status.error:
        print(f"hybridge: {status.error}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    return serve(load_settings(args), args.port, args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="run the router headless")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (0: any free port)")
    parser.add_argument("--quiet", action="store_true", help="skip the first-run checklist at start")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    parser.set_defaults(func=run)
