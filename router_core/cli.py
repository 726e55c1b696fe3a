"""The `hybridge` command. With no subcommand it starts the tray app (which needs Qt);
every subcommand is headless and never imports Qt."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from router_core import __version__
from router_core.errors import HybridgeError, SettingsError
from router_core.redact import install_log_redaction

# Each module registers one subcommand (see router_core/commands/).
COMMAND_MODULES = (
    "serve", "keys", "doctor", "privacy", "token", "stats", "rate", "opencode", "claude_code", "setup", "explain",
    "desktop",
)  # fmt: skip


def cmd_tray(args: argparse.Namespace) -> int:
    try:
        from app.main import main as tray_main  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        print(f"hybridge: the tray app needs PySide6 (pip install 'hybridge[gui]'): {exc}", file=sys.stderr)
        return 2
    return int(tray_main(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybridge", description="Local-first LLM router for coding agents.")
    parser.add_argument("--version", action="version", version=f"hybridge {__version__}")
    parser.add_argument("--config", metavar="PATH", help="settings file (default: the platform config dir)")
    parser.add_argument("--no-tray", action="store_true", help="open the dashboard as a window instead of a tray icon")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command")
    for name in COMMAND_MODULES:
        importlib.import_module(f"router_core.commands.{name}").register(sub)
    return parser


def aliased(argv: list[str]) -> list[str]:
    """`setup opencode ...` and `setup claude-code ...` are those commands, options and all."""
    for i, word in enumerate(argv):
        if word == "setup" and argv[i + 1 : i + 2] in (["opencode"], ["claude-code"]):
            return argv[:i] + argv[i + 1 :]
        if not word.startswith("-"):
            break
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(aliased(list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction()
    func: Callable[[argparse.Namespace], int] = getattr(args, "func", cmd_tray)
    try:
        return func(args)
    except SettingsError as exc:
        print("hybridge: " + exc.message.replace("; ", "\n  "), file=sys.stderr)
        return 2
    except HybridgeError as exc:
        print(f"hybridge: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
