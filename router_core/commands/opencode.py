"""`hybridge opencode`: point OpenCode at Hybridge (shows the diff; `--write` applies it)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from router_core.clients.opencode_config import (
    AgentRoute,
    build_setup,
    config_file,
    opencode_config_dir,
    plan_opencode_update,
    write_opencode_update,
)
from router_core.commands.common import add_url_argument, load_settings, running_port
from router_core.inventory.machine import Inventory, InventorySnapshot
from router_core.settings import Settings

log = logging.getLogger(__name__)


async def _read_inventory(settings: Settings) -> InventorySnapshot:
    inventory = Inventory(settings)
    try:
        return await inventory.refresh()
    finally:
        await inventory.aclose()


def read_inventory(settings: Settings) -> InventorySnapshot | None:
    """One look at this machine and its Ollama servers (None when that fails)."""
    limit = settings.inventory.probe_timeout_s + settings.inventory.ollama_timeout_s + 5
    try:
        return asyncio.run(asyncio.wait_for(_read_inventory(settings), limit))
    except Exception as exc:  # the figures then fall back to the documented defaults
        log.warning("cannot read the inventory: %s", exc)
        return None


def server_token(settings: Settings) -> str | None:
    if not settings.server.token:
        return None
    from router_core.server.token import current_token

    token = current_token(settings)
    if token is None:
        print(
            f"hybridge: warning: server.token is {settings.server.token} but cannot be read; "
            "no apiKey written (OpenCode will be refused until it has one)",
            file=sys.stderr,
        )
    return token


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    agents = [AgentRoute.parse(spec) for spec in args.agent or ()]
    snapshot = None if args.no_inventory else read_inventory(settings)
    port = args.port or running_port(args)
    if port is not None and args.port is None:
        print(f"# the running router listens on port {port}")
    setup = build_setup(
        settings,
        port=port,
        snapshot=snapshot,
        token=server_token(settings),
        agents=agents,
        max_output=args.max_output,
    )
    folder = opencode_config_dir() if args.global_ else Path(args.project or ".").resolve()
    update = plan_opencode_update(config_file(folder), setup)
    for note in update.notes:
        print(f"# {note}")
    if not update.changed:
        print(f"{update.path} already points OpenCode at Hybridge; nothing to change")
        return 0
    sys.stdout.write(update.diff)
    if not args.write:
        print("(not written: run again with --write to apply)")
        return 0
    backup = write_opencode_update(update)
    print(f"wrote {update.path}" + (f" (the old file is in {backup})" if backup else ""))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "opencode",
        help="point OpenCode at Hybridge (prints a diff; --write applies it)",
        description="Merge a `hybridge` provider (models auto, local, cloud) into opencode.json(c), "
        "keeping your other providers, settings and comments.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--project", metavar="DIR", help="the project's opencode.json(c) (default: this folder)")
    where.add_argument("--global", dest="global_", action="store_true", help="your global config (~/.config/opencode)")
    parser.add_argument(
        "--port", type=int, default=None, help="Hybridge's port (default: the running router's, else server.port)"
    )
    add_url_argument(parser)
    parser.add_argument("--write", action="store_true", help="write the change (with a backup of the old file)")
    parser.add_argument(
        "--agent",
        action="append",
        metavar="NAME=TARGET",
        help="route an OpenCode agent: NAME=auto|local|cloud (its model) or NAME=tag:TAG[,TAG] "
        "(tags in its options); repeatable, e.g. --agent plan=cloud",
    )
    parser.add_argument(
        "--max-output", type=int, default=None, metavar="N", help="cap every model's limit.output (max_tokens)"
    )
    parser.add_argument(
        "--no-inventory", action="store_true", help="do not read the GPU and Ollama (use the settings' figures)"
    )
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    parser.set_defaults(func=run)
