"""`hybridge explain`: print where a chat request would be routed, and why, sending nothing.

hybridge explain request.json --header "x-hybridge-tags: review"
cat request.json | hybridge explain --json
"""

from __future__ import annotations

import argparse
import sys

import orjson

from router_core.commands.common import load_settings
from router_core.errors import BadRequest
from router_core.routing.explain import explain, render_text
from router_core.routing.state import RoutingState
from router_core.server.openai_request import parse_chat_request


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
    state = RoutingState(
        privacy=args.privacy,
        privacy_escalation=args.privacy_escalation,
        local_context_limit=args.local_context,
        cooling=frozenset(args.cooling),
        recent_writer={request.session_id: args.writer} if args.writer and request.session_id else {},
    )
    data = explain(request, settings, state)
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_text(data))
    return 0


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
    parser.add_argument("--privacy", action="store_true", help="as if privacy mode were on")
    parser.add_argument(
        "--privacy-escalation",
        choices=("keep-local", "refuse"),
        default="keep-local",
        help="with --privacy: keep flagged work local (default) or refuse it",
    )
    parser.add_argument("--local-context", type=int, metavar="TOKENS", help="usable local context to assume")
    parser.add_argument("--cooling", action="append", default=[], metavar="PROVIDER/MODEL", help="as if cooling down")
    parser.add_argument("--writer", metavar="PROVIDER/MODEL", help="model that wrote the session's code (reviews)")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    parser.set_defaults(func=run)
