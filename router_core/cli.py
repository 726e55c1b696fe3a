"""The `hybridge` command. With no subcommand it starts the tray app (which needs Qt);
every subcommand is headless and never imports Qt."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from router_core import __version__
from router_core.commands.common import load_settings
from router_core.errors import HybridgeError, SettingsError
from router_core.redact import install_log_redaction

# Each module registers one subcommand (see router_core/commands/).
COMMAND_MODULES = (
    "serve", "keys", "doctor", "privacy", "token", "stats", "rate", "opencode", "claude_code", "setup", "explain",
    "desktop",
)  # fmt: skip


NO_DISPLAY_HINT = (
    "hybridge: no desktop here (no DISPLAY or WAYLAND_DISPLAY), so no tray icon; "
    "running the headless router instead (the same as `hybridge serve`)"
)


def has_display(env: Mapping[str, str] | None = None, platform: str = sys.platform) -> bool:
    """Whether Qt can show a window: always on macOS and Windows; on Linux only with an X or
    Wayland display, or a platform chosen explicitly (QT_QPA_PLATFORM=offscreen, say)."""
    env = os.environ if env is None else env
    if not platform.startswith("linux"):
        return True
    return any(env.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def cmd_tray(args: argparse.Namespace) -> int:
    if not has_display():
        # Qt would abort here (exit 134, "could not load the Qt platform plugin xcb").
        print(NO_DISPLAY_HINT, file=sys.stderr, flush=True)
        from router_core.commands.serve import serve

        return serve(load_settings(args), None, args)
    try:
        from app.main import main as tray_main  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        print(f"hybridge: the tray app needs PySide6 (pip install 'hybridge[gui]'): {exc}", file=sys.stderr)
        return 2
    return int(tray_main(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridge",
        description="Local-first LLM router for coding agents.",
        epilog=(
            "With no command, hybridge starts the tray app and the router; where there is no desktop it "
            "says so and runs the headless router (as `hybridge serve`). `hybridge doctor` exits 0 unless "
            "something is broken (1: a problem to fix, 2: a bad settings file)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"hybridge {__version__}")
    parser.add_argument("--config", metavar="PATH", help="settings file (default: the platform config dir)")
    parser.add_argument("--no-tray", action="store_true", help="open the dashboard as a window instead of a tray icon")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command")
    for name in COMMAND_MODULES:
        importlib.import_module(f"router_core.commands.{name}").register(sub)
    return parser


# Options before the command that take a value (`--config PATH setup opencode`).
_VALUED_OPTIONS = frozenset({"--config"})


def aliased(argv: list[str]) -> list[str]:
    """`setup opencode ...` and `setup claude-code ...` are those commands, options and all."""
    skip = False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if word == "setup" and argv[i + 1 : i + 2] in (["opencode"], ["claude-code"]):
            return argv[:i] + argv[i + 1 :]
        if word in _VALUED_OPTIONS:
            skip = True
            continue
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
        code = func(args)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
        return code
    except BrokenPipeError:
        # Piped into `head`: the reader has gone, which is no error. Point stdout at devnull
        # so the interpreter's final flush does not raise again (Python docs, "SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
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
