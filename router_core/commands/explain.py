"""`hybridge explain`: print where a chat request would be routed, and why, sending nothing.

hybridge explain request.json --header "x-hybridge-tags: review"
cat request.json | hybridge explain --json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import httpx
import orjson

from router_core.commands.common import add_url_argument, find_router, load_settings
from router_core.errors import BadRequest
from router_core.routing.explain import Explanation, render_text
from router_core.runtime import Runtime
from router_core.server.openai_request import parse_chat_request
from router_core.server.token import current_token
from router_core.settings import Settings
from router_core.types import ESCALATION_ACTIONS, ChatRequest

ROUTER_TIMEOUT_S = 10.0
STATE_FLAGS = ("privacy", "local_context", "cooling", "writer")


def _headers(raw: list[str]) -> dict[str, str]:
    headers = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise BadRequest(f"--header {item!r}: expected 'Name: value'")
        headers[name.strip().lower()] = value.strip()
    return headers


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if args.file in (None, "-"):
        raw = sys.stdin.buffer.read()
    else:
        try:
            with open(args.file, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise BadRequest(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc.msg})") from None
    headers = _headers(args.header)
    headers.setdefault("content-length", str(len(raw)))
    request = parse_chat_request(body, headers)
    data, where = None, ""
    url, how = find_router(args, settings) if not args.offline else ("", "")
    if how == "--url" or how.startswith("runtime file"):
        data = ask_router(settings, url, raw, headers)
        if data is not None:
            where = f"planned by the running router at {url} (found by {how}), with its live state"
            if any(getattr(args, f) for f in STATE_FLAGS):
                where += "; --privacy/--local-context/--cooling/--writer are ignored there"
    if data is None:
        data = asyncio.run(plan_here(settings, request, args))
        where = "no running router: planned here with the saved settings (privacy included)"
    if args.json:
        sys.stdout.write(orjson.dumps({**data, "planned_by": where}, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_text(data) + f"source       {where}\n")
    return 0


def ask_router(settings: Settings, url: str, raw: bytes, headers: dict[str, str]) -> Explanation | None:
    """POST /hybridge/explain on the running router; None when it does not answer."""
    sent = {k: v for k, v in headers.items() if k != "content-length"} | {"content-type": "application/json"}
    if token := current_token(settings):
        sent["authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(base_url=url, timeout=ROUTER_TIMEOUT_S, trust_env=False, follow_redirects=False) as client:
            response = client.post("/hybridge/explain", content=raw, headers=sent)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    data: Any = response.json()
    return data if isinstance(data, dict) else None


async def plan_here(settings: Settings, request: ChatRequest, args: argparse.Namespace) -> Explanation:
    """The router's own planning path (Runtime.plan, dry run) over the saved settings."""
    runtime = Runtime(settings)
    overrides: dict[str, Any] = {}
    if args.privacy:
        overrides.update(privacy=True, privacy_escalation=args.privacy_escalation)
    if args.local_context:
        overrides["local_context_limit"] = args.local_context
    if args.cooling:
        overrides["cooling"] = frozenset(args.cooling)
    if args.writer and request.session_id:
        overrides["recent_writer"] = {request.session_id: args.writer}
    try:
        return await runtime.explain(request, overrides)
    finally:
        await runtime.aclose()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "explain",
        help="show where a chat request would be routed and why (sends nothing)",
        description=(
            "Read an OpenAI chat-completions body and print the routing plan with its reasons. "
            "A request runs locally when its prompt estimate + min(max_tokens, context.output_reserve) "
            "fits the local model's context; that context is chosen once per model (the most that fits "
            "beside its weights, within its own maximum and context.max_context_tokens), and "
            "num_predict is min(max_tokens, context - prompt)."
        ),
    )
    parser.add_argument("file", nargs="?", help="JSON request body (default or '-': stdin)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="a request header (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--privacy", action="store_true", help="as if privacy mode were on (no router running)")
    parser.add_argument(
        "--privacy-escalation",
        choices=ESCALATION_ACTIONS,
        default="keep-local",
        help="with --privacy: keep flagged work local (default) or refuse it",
    )
    parser.add_argument("--local-context", type=int, metavar="TOKENS", help="usable local context to assume")
    parser.add_argument("--cooling", action="append", default=[], metavar="PROVIDER/MODEL", help="as if cooling down")
    parser.add_argument("--writer", metavar="PROVIDER/MODEL", help="model that wrote the session's code (reviews)")
    parser.add_argument("--offline", action="store_true", help="plan here even when a router is running")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    add_url_argument(parser)
    parser.set_defaults(func=run)
