"""`hybridge claude-code`: the environment that points Claude Code at Hybridge."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from router_core.clients.claude_code import claude_code_env, render_env, write_env_file
from router_core.commands.common import add_url_argument, load_settings, running_port
from router_core.commands.opencode import server_token


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    env = claude_code_env(settings, port=args.port or running_port(args), token=server_token(settings))
    text = render_env(env, cloud_configured=bool(settings.routing.cloud_model))
    if not args.write:
        sys.stdout.write(text)
        return 0
    path = Path(args.write).expanduser()
    write_env_file(path, text)
    print(f"wrote {path}; load it with:  . {path}  (then run `claude`)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "claude-code",
        help="print (or --write) the environment that points Claude Code at Hybridge",
    )
    parser.add_argument("--write", metavar="FILE", help="write a file to `source` instead of printing")
    parser.add_argument(
        "--port", type=int, default=None, help="Hybridge's port (default: the running router's, else server.port)"
    )
    add_url_argument(parser)
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    parser.set_defaults(func=run)
