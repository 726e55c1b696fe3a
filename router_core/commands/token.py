"""`hybridge token new|show|remove`: the optional bearer token clients must send."""

from __future__ import annotations

import argparse

from router_core.commands.common import add_url_argument, config_path, find_router, load_settings
from router_core.server.token import create_token, current_token, remove_token


def _running(args: argparse.Namespace) -> str:
    """Which router must restart to apply a change."""
    url, how = find_router(args, load_settings(args))
    if how == "--url" or how.startswith("runtime file"):
        return f"restart the running router at {url} to apply it"
    return "no router is running; it applies when Hybridge starts"


def run(args: argparse.Namespace) -> int:
    path = config_path(args)
    if args.action == "new":
        token = create_token(path)
        print(token)
        print("Clients must now send it as `Authorization: Bearer <token>` or `x-api-key: <token>`;")
        print(_running(args) + ".")
        return 0
    if args.action == "remove":
        remove_token(path)
        print(f"No token is required any more ({_running(args)}).")
        return 0
    current = current_token(load_settings(args))
    if current is None:
        print("No token is set.")
        return 1
    print(current)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("token", help="the bearer token clients must send (optional)")
    parser.add_argument("action", choices=("new", "show", "remove"))
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    add_url_argument(parser)
    parser.set_defaults(func=run)
