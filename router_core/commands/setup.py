"""`hybridge setup AGENT`: point a coding agent at Hybridge (shows a diff; --write applies it).

`setup opencode ...` and `setup claude-code ...` are the commands `hybridge opencode` and
`hybridge claude-code` (cli.py rewrites them, so their options apply); codex and aider merge Hybridge into their config
files, with a backup of the old file; ollama prints the one line an Ollama-API client
needs. With privacy mode on, each agent's own phone-home switches are written off too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from router_core.clients import aider_config, codex_config, qwen_code_config
from router_core.clients.agent_update import AgentUpdate, plan_update, read_timeout_s
from router_core.clients.model_limits import ModelLimits, cloud_limits, local_facts, local_limits
from router_core.clients.opencode_config import base_url, write_opencode_update
from router_core.commands.common import add_url_argument, load_settings, running_port
from router_core.commands.opencode import read_inventory, server_token
from router_core.settings import Settings

AGENTS = ("opencode", "claude-code", "codex", "aider", "qwen-code", "ollama")
PRIVACY_NOTE = "privacy mode is on: {agent}'s own traffic to its vendor ({what}) is switched off too"


def _limits(settings: Settings, args: argparse.Namespace) -> tuple[ModelLimits, ModelLimits]:
    """(auto's limits, local's): auto may go to the cloud, so the smaller window of the two."""
    snapshot = None if args.no_inventory else read_inventory(settings)
    local = local_limits(settings, local_facts(settings, snapshot))
    if not settings.routing.cloud_model:
        return local, local
    cloud = cloud_limits(settings.routing.cloud_model)
    auto = local if local.context <= cloud.context else cloud
    return auto, local


def _apply(updates: list[AgentUpdate], write: bool) -> int:
    for update in updates:
        for note in update.notes:
            print(f"# {note}")
        if not update.changed:
            print(f"{update.path} already points at Hybridge; nothing to change")
            continue
        sys.stdout.write(update.diff)
        if write:
            backup = write_opencode_update(update)
            print(f"wrote {update.path}" + (f" (the old file is in {backup})" if backup else ""))
    if not write and any(u.changed for u in updates):
        print("(not written: run again with --write to apply)")
    return 0


def codex_updates(settings: Settings, args: argparse.Namespace, token: str | None) -> list[AgentUpdate]:
    home = Path(args.codex_home or os.environ.get("CODEX_HOME") or Path.home() / ".codex").expanduser()
    auto, _ = _limits(settings, args)
    setup = codex_config.CodexSetup(
        base_url=base_url(settings, args.port),
        token=token,
        limits=auto,
        # Codex's idle window between events: as long as Hybridge waits on an upstream.
        idle_timeout_ms=int(read_timeout_s(settings) * 1000),
        privacy=settings.privacy.enabled,
    )
    notes = [f"context window {auto.context:,} tokens ({auto.source})"]
    if setup.privacy:
        notes.append(PRIVACY_NOTE.format(agent="Codex", what="analytics, update check, plugin and app sync"))
    return [
        plan_update(home / "config.toml", lambda old: codex_config.edit(old, setup), secret=token, notes=tuple(notes))
    ]


def aider_updates(settings: Settings, args: argparse.Namespace, token: str | None) -> list[AgentUpdate]:
    folder = Path(args.project or ".").resolve()
    auto, local = _limits(settings, args)
    setup = aider_config.AiderSetup(base_url(settings, args.port), token, auto, local, settings.privacy.enabled)
    notes = [f"auto: {auto.context:,} tokens ({auto.source}); local: {local.context:,} ({local.source})"]
    if setup.privacy:
        notes.append(PRIVACY_NOTE.format(agent="Aider", what="analytics, update check"))
    values = aider_config.conf_values(setup)
    return [
        plan_update(
            folder / ".aider.conf.yml",
            lambda old: aider_config.edit_conf(old, values),
            secret=token,
            notes=tuple(notes),
        ),
        plan_update(folder / aider_config.METADATA_FILE, lambda old: aider_config.edit_metadata(old, setup)),
    ]


def qwen_updates(settings: Settings, args: argparse.Namespace, token: str | None) -> list[AgentUpdate]:
    folder = Path(args.qwen_home or Path.home() / ".qwen").expanduser()
    setup = qwen_code_config.QwenSetup(base_url(settings, args.port), token, settings.privacy.enabled)
    notes = (
        (PRIVACY_NOTE.format(agent="Qwen Code", what="usage statistics, telemetry, auto-update"),)
        if setup.privacy
        else ()
    )
    return [
        plan_update(folder / "settings.json", lambda old: qwen_code_config.edit(old, setup), secret=token, notes=notes)
    ]


def ollama_line(settings: Settings, args: argparse.Namespace) -> int:
    root = base_url(settings, args.port).removesuffix("/v1")
    print("# Ollama-API clients (Continue, Zed, Open WebUI, Copilot's Ollama provider, `ollama` libraries):")
    print(f"export OLLAMA_HOST={root}")
    print("# models: auto, local, cloud (routed by Hybridge) and your local Ollama models by name")
    return 0


WRITERS: dict[str, Callable[[Settings, argparse.Namespace, str | None], list[AgentUpdate]]] = {
    "codex": codex_updates,
    "aider": aider_updates,
    "qwen-code": qwen_updates,
}


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    # The running router's port (runtime file or --url), as `hybridge opencode` finds it.
    args.port = args.port or running_port(args)
    if args.agent == "ollama":
        return ollama_line(settings, args)
    return _apply(WRITERS[args.agent](settings, args, server_token(settings)), args.write)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "setup",
        help="point a coding agent at Hybridge (prints a diff; --write applies it)",
        description="Agents: " + ", ".join(AGENTS) + ". opencode and claude-code take the options of "
        "`hybridge opencode` / `hybridge claude-code` after the agent's name.",
    )
    parser.add_argument("agent", choices=AGENTS)
    parser.add_argument(
        "--port", type=int, default=None, help="Hybridge's port (default: the running router's, else server.port)"
    )
    add_url_argument(parser)
    parser.add_argument("--write", action="store_true", help="write the change (with a backup of the old file)")
    parser.add_argument("--project", metavar="DIR", help="aider: the project (git root) folder (default: here)")
    parser.add_argument("--codex-home", metavar="DIR", help="codex: CODEX_HOME (default: $CODEX_HOME or ~/.codex)")
    parser.add_argument("--qwen-home", metavar="DIR", help="qwen-code: its settings folder (default: ~/.qwen)")
    parser.add_argument(
        "--no-inventory", action="store_true", help="do not read the GPU and Ollama (use the settings' figures)"
    )
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    parser.set_defaults(func=run)
