"""`hybridge privacy on|off|status`: the privacy switch from a terminal.

`on`/`off` save the switch in the user's settings file and tell a running router, which
applies it at once; `status` shows the saved and the live state and warns when Ollama has
its cloud features on.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httpx
import orjson

from router_core.commands.common import add_url_argument, config_path, find_router, load_settings
from router_core.privacy.egress import EgressGuard
from router_core.privacy.ollama_cloud import NO_CLOUD_ENV, OllamaCloudCheck
from router_core.privacy.report import ollama_cloud_check
from router_core.privacy.state import PrivacyState
from router_core.providers.http import default_transport
from router_core.providers.ollama import OllamaProvider
from router_core.server.token import current_token
from router_core.settings import Settings, ollama_base_url, update_user_file

ROUTER_TIMEOUT_S = 3.0


def _router_client(settings: Settings, url: str) -> httpx.Client:
    token = current_token(settings)
    return httpx.Client(
        base_url=url,
        headers={"authorization": f"Bearer {token}"} if token else {},
        timeout=ROUTER_TIMEOUT_S,
        trust_env=False,
        follow_redirects=False,
    )


def call_router(settings: Settings, url: str, enabled: bool | None = None) -> dict[str, Any] | None:
    """The running router's privacy report (after switching it when `enabled` is given);
    None when no router answers at `url`."""
    try:
        with _router_client(settings, url) as client:
            if enabled is None:
                response = client.get("/hybridge/privacy")
            else:
                response = client.post("/hybridge/privacy", content=orjson.dumps({"enabled": enabled}))
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    data = response.json()
    return data if isinstance(data, dict) else None


async def check_ollamas(settings: Settings) -> dict[str, OllamaCloudCheck | None]:
    """Ask each configured Ollama for its cloud models (through the egress guard)."""
    privacy = PrivacyState.from_settings(settings.privacy)
    checks: dict[str, OllamaCloudCheck | None] = {}
    for name, conf in settings.providers.items():
        if conf.kind != "ollama":
            continue
        provider = OllamaProvider(
            name,
            ollama_base_url(conf.base_url),
            context=settings.context,
            transport=EgressGuard(default_transport(), privacy),
            connect_timeout_s=conf.connect_timeout_s,
        )
        try:
            checks[name] = await ollama_cloud_check(provider)
        finally:
            await provider.aclose()
    return checks


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def show_status(settings: Settings, url: str, how: str) -> int:
    saved = settings.privacy
    print(f"privacy mode: {_on_off(saved.enabled)} (saved)")
    live = call_router(settings, url)
    if live is None:
        print(f"router: not running at {url} (from {how})")
    else:
        print(
            f"router at {url}: privacy {_on_off(bool(live.get('enabled')))} now; "
            f"cloud requests in flight: {live.get('cloud_requests_in_flight', 0)}"
        )
        for name, info in (live.get("ollama") or {}).items():
            if info.get("cloud_switch"):
                print(f"{name}: {info['cloud_switch']}")
    print(f"flagged work in privacy mode: {saved.escalation}")
    print("trusted LAN hosts: " + (", ".join(saved.trusted_hosts) or "none"))
    warned = False
    for name, check in asyncio.run(check_ollamas(settings)).items():
        if check is None:
            print(f"{name}: not reachable")
        elif check.warning:
            print(f"warning: {name}: {check.warning}")
            warned = True
        else:
            print(f"{name}: no cloud models offered")
    if warned:
        print(f'hint: the tray\'s "Start Ollama" starts it with {NO_CLOUD_ENV}=1 in privacy mode')
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "status":
        settings = load_settings(args)
        return show_status(settings, *find_router(args, settings))
    enabled = args.action == "on"
    path = config_path(args)
    settings = update_user_file(path, {"privacy": {"enabled": enabled}})
    print(f"privacy mode {_on_off(enabled)} (saved in {path})")
    url, how = find_router(args, settings)
    live = call_router(settings, url, enabled)
    if live is None:
        print(f"no router answers at {url} (from {how}); the switch applies when Hybridge starts")
    else:
        print(f"the running router at {url} switched privacy {_on_off(bool(live.get('enabled')))}")
        for warning in live.get("warnings") or []:
            print(f"warning: {warning}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("privacy", help="privacy mode: keep every prompt on this machine")
    parser.add_argument("action", nargs="?", choices=("on", "off", "status"), default="status")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    add_url_argument(parser)
    parser.set_defaults(func=run)
