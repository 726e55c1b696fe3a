"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from router_core.settings import Settings, default_config_path, load


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if getattr(args, "config", None) else default_config_path()


def load_settings(args: argparse.Namespace) -> Settings:
    return load(Path(args.config) if getattr(args, "config", None) else None)


def add_url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", metavar="URL", default=None, help="the router's address (default: the running router's runtime file)"
    )


def configured_url(settings: Settings) -> str:
    """The router's address per the settings (server.host, server.port)."""
    host = settings.server.host
    if host in ("0.0.0.0", "::", "localhost"):
        host = "127.0.0.1" if host != "::" else "::1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.server.port}"


def find_router(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    """(router URL, how it was found): --url, else the runtime file, else the settings."""
    from router_core.runtime_file import router_url

    return router_url(getattr(args, "url", None), configured_url(settings))


def running_port(args: argparse.Namespace) -> int | None:
    """The port of the router --url names or the runtime file finds; None: not known."""
    from urllib.parse import urlsplit

    from router_core.runtime_file import read_runtime_file

    url = getattr(args, "url", None)
    if url:
        return urlsplit(str(url)).port
    found = read_runtime_file()
    return found.port if found is not None else None
