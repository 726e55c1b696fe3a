"""`hybridge keys set|delete|list PROVIDER`: cloud API keys in the OS keyring.

`set` reads the key without echo (or one line from a pipe) and never prints it; `list` says
where each cloud provider's key comes from, never what it is.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from router_core.commands.common import load_settings
from router_core.errors import HybridgeError
from router_core.keys import delete_key, find_key, key_refs, keyring_name, store_key
from router_core.presets import PRESETS, preset_env
from router_core.settings import ProviderSettings, Settings


def _provider(settings: Settings, name: str) -> ProviderSettings | None:
    conf = settings.providers.get(name)
    if conf is None and name not in PRESETS:
        known = sorted({*(n for n, c in settings.providers.items() if not c.is_local), *PRESETS})
        raise HybridgeError(f"no provider named '{name}' (configured or preset: {', '.join(known)})")
    return conf


def _entry(settings: Settings, name: str) -> str:
    """The keyring entry `name`'s key belongs in (its `keyring:NAME` reference, else its name)."""
    conf = _provider(settings, name)
    ref = conf.api_key if conf else ""
    if ref.startswith("env:"):
        raise HybridgeError(
            f"provider '{name}' reads its key from the environment variable {ref[4:]}; "
            "set that, or remove its api_key setting to use the keyring"
        )
    return keyring_name(name, ref)


def read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()  # piped: `printf %s "$KEY" | hybridge keys set NAME`


def cmd_set(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    entry = _entry(settings, args.provider)
    secret = read_secret(f"API key for {args.provider} (not shown): ").strip()
    if not secret:
        raise HybridgeError("no key given; nothing stored")
    store_key(entry, secret)
    print(f"stored the key for {args.provider} in the OS keyring (entry '{entry}')")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    entry = _entry(settings, args.provider)
    if delete_key(entry):
        print(f"deleted the key for {args.provider} from the OS keyring")
        return 0
    print(f"no key for {args.provider} is stored in the OS keyring", file=sys.stderr)
    return 1


def describe(name: str, conf: ProviderSettings | None) -> str:
    ref = conf.api_key if conf else ""
    env = preset_env(conf.preset if conf else name)
    _, found = find_key(name, ref, env)
    if found.startswith("keyring:"):
        return f"{name}: set (OS keyring, entry '{found[8:]}')"
    if found.startswith("env:"):
        return f"{name}: set (environment variable {found[4:]})"
    where = " or ".join(r.replace("keyring:", "keyring entry ").replace("env:", "$") for r in key_refs(name, ref, env))
    return f"{name}: missing (looked in {where})"


def cmd_list(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if args.provider:
        names = [args.provider]
        _provider(settings, args.provider)
    else:
        names = [n for n, c in settings.providers.items() if not c.is_local or c.api_key]
    if not names:
        print("no cloud providers configured (add one, e.g. [providers.anthropic] in your settings)")
        return 0
    for name in names:
        print(describe(name, settings.providers.get(name)))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("keys", help="store, remove or check cloud API keys (OS keyring)")
    actions = parser.add_subparsers(dest="keys_command", required=True)
    for name, func, help_text in (
        ("set", cmd_set, "store a provider's key (read without echo)"),
        ("delete", cmd_delete, "remove a provider's stored key"),
        ("list", cmd_list, "where each cloud provider's key comes from (never the key)"),
    ):
        action = actions.add_parser(name, help=help_text)
        if name == "list":
            action.add_argument("provider", nargs="?", help="only this provider")
        else:
            action.add_argument("provider", help="provider name, e.g. anthropic")
        action.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
        action.set_defaults(func=func)
