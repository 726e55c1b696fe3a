"""Anthropic's Messages API served by Hybridge, for Claude Code and the `anthropic` SDKs.

`POST /v1/messages` is routed by the same policy and executor as `/v1/chat/completions`
and always answers in Anthropic's format; `POST /v1/messages/count_tokens` asks the
Anthropic upstream a request would go to, and otherwise estimates.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from router_core.errors import HybridgeError, UpstreamError
from router_core.routing.plan import RoutePlan
from router_core.routing.tokens import estimate_prompt_tokens
from router_core.server.anthropic_encoder import ANTHROPIC, AnthropicEncoder
from router_core.server.anthropic_request import parse_messages_request
from router_core.server.chat_endpoint import ChatEndpoint, Parsed
from router_core.server.helpers import FORWARDED_HEADERS, forwarded_headers, json_response, new_request_id, read_json
from router_core.server.services import ChatServices
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


class MessagesEndpoint(ChatEndpoint):
    """POST /v1/messages: answered in Anthropic's format whichever upstream serves it."""

    api = "anthropic"

    def headers(self, scope: Scope) -> dict[str, str]:
        return client_headers(scope)

    def parse(self, headers: dict[str, str], body: Any) -> Parsed:
        chat = parse_messages_request(body, headers)

        # message_start carries the estimated input tokens: routing's figure (the encoder is
        # made after planning, which sets it), estimated here only when routing skipped it.
        def encoder() -> AnthropicEncoder:
            estimate = chat.prompt_tokens
            if estimate is None:
                estimate = estimate_prompt_tokens(chat.messages, chat.tools)
            return AnthropicEncoder(estimate)

        return Parsed(chat, encoder, requested_model=body["model"])

    def error(self, exc: HybridgeError, request_id: str) -> Response:
        return ANTHROPIC.error_response(exc, request_id)


async def count_input_tokens(services: ChatServices, chat: ChatRequest, plan: RoutePlan) -> int:
    """The upstream's own count when the first candidate can count (Anthropic), else our
    estimate (which errs high, the safe side for a client deciding when to compact)."""
    estimate = estimate_prompt_tokens(chat.messages, chat.tools)
    if not plan.candidates:
        return estimate
    first = plan.candidates[0]
    try:
        counted = await services.upstream_token_count(chat, first)
    except UpstreamError as exc:
        log.warning("count_tokens on %s failed (%s); estimating", first.provider, exc.kind)
        return estimate
    return estimate if counted is None else counted


def routes(services: ChatServices) -> list[BaseRoute]:
    messages = MessagesEndpoint(services)

    async def count_tokens(request: Request) -> Response:
        request_id = new_request_id()
        plan = None
        try:
            body = await read_json(request, services.settings.server.max_body_bytes)
            chat = parse_messages_request(body, client_headers(request.scope), count_only=True)
            plan = await services.plan(chat, dry_run=True)  # counting serves nothing
        except HybridgeError as exc:
            return messages.refusal(exc, request_id, plan)
        return json_response({"input_tokens": await count_input_tokens(services, chat, plan)})

    return [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
    ]
