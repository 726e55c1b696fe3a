"""Anthropic's Messages API served by Hybridge, for Claude Code and the `anthropic` SDKs.

`POST /v1/messages` is routed by the same policy and executor as `/v1/chat/completions`
and always answers in Anthropic's format; `POST /v1/messages/count_tokens` asks the
Anthropic upstream a request would go to, and otherwise estimates.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from router_core.errors import HybridgeError, UpstreamError
from router_core.routing.plan import RoutePlan
from router_core.routing.tokens import estimate_prompt_tokens
from router_core.runtime import Runtime
from router_core.server.anthropic_encoder import ANTHROPIC, AnthropicEncoder
from router_core.server.anthropic_request import parse_messages_request
from router_core.server.helpers import (
    FORWARDED_HEADERS,
    forwarded_headers,
    json_response,
    new_request_id,
    read_json,
    read_json_from,
)
from router_core.server.routed import RoutedChat, route_headers
from router_core.types import ChatRequest

log = logging.getLogger(__name__)

# Passed on to an Anthropic upstream as the client sent them.
ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")
# Claude Code names its session in this header; routing reads x-session-id.
CLAUDE_SESSION_HEADER = "x-claude-code-session-id"


_READ = {name.encode(): name for name in (*FORWARDED_HEADERS, *ANTHROPIC_HEADERS, CLAUDE_SESSION_HEADER)}


def client_headers(scope: Scope) -> dict[str, str]:
    headers = forwarded_headers(scope, _READ)
    session = headers.pop(CLAUDE_SESSION_HEADER, None)
    if session and "x-session-id" not in headers:
        headers["x-session-id"] = session
    return headers


def error_response(exc: HybridgeError, request_id: str, plan: RoutePlan | None) -> Response:
    response = ANTHROPIC.error_response(exc, request_id)
    for name, value in route_headers(None, plan, request_id, []):
        response.headers[name.decode()] = value.decode()
    return response


class MessagesEndpoint:
    """POST /v1/messages, as a raw ASGI app so the routed response owns the socket."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        started_at = time.time()
        plan = None
        chat = None
        try:
            headers = client_headers(scope)
            limit = self.runtime.settings.server.max_body_bytes
            body = await read_json_from(receive, limit, headers.get("content-length"))
            chat = parse_messages_request(body, headers)
            plan = await self.runtime.plan(chat)
        except HybridgeError as exc:
            # Refused or unreadable: still one ledger row (outcome refused / error).
            model = body.get("model") if chat is not None and isinstance(body, dict) else None
            self.runtime.record_refusal(
                request_id, started_at, exc, api="anthropic", request=chat, requested_model=model
            )
            await error_response(exc, request_id, plan)(scope, receive, send)
            return
        # Routing's estimate when it made one (it skips it for a body clearly small enough).
        estimate = plan.prompt_tokens
        if estimate is None:
            estimate = estimate_prompt_tokens(chat.messages, chat.tools)
        encoder = AnthropicEncoder(estimate)
        await RoutedChat(self.runtime, plan, chat, request_id, encoder, requested_model=body["model"])(
            scope, receive, send
        )


async def count_input_tokens(runtime: Runtime, chat: ChatRequest, plan: RoutePlan) -> int:
    """The upstream's own count when the first candidate can count (Anthropic), else our
    estimate (which errs high, the safe side for a client deciding when to compact)."""
    estimate = estimate_prompt_tokens(chat.messages, chat.tools)
    if not plan.candidates:
        return estimate
    first = plan.candidates[0]
    counter = getattr(runtime.providers.get(first.provider), "count_tokens", None)
    if counter is None:
        return estimate
    try:
        return int(await counter(chat, first.model))
    except UpstreamError as exc:
        log.warning("count_tokens on %s failed (%s); estimating", first.provider, exc.kind)
        return estimate


def routes(runtime: Runtime) -> list[BaseRoute]:
    async def count_tokens(request: Request) -> Response:
        request_id = new_request_id()
        plan = None
        try:
            body = await read_json(request, runtime.settings.server.max_body_bytes)
            chat = parse_messages_request(body, client_headers(request.scope), count_only=True)
            plan = await runtime.plan(chat, dry_run=True)  # counting serves nothing
        except HybridgeError as exc:
            return error_response(exc, request_id, plan)
        return json_response({"input_tokens": await count_input_tokens(runtime, chat, plan)})

    return [
        Route("/v1/messages", MessagesEndpoint(runtime), methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
    ]
