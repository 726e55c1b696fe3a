"""The one core of every chat endpoint: read → parse → plan → answer, or refuse with a row.

Chat completions, Anthropic's messages, OpenAI's Responses and Ollama's chat and generate
differ in how a body becomes a ChatRequest, in the encoder that writes the answer, and in
the shape of an error. Everything else is this class: the request id, the body read under
the size limit, the one planning path, a ledger row (outcome refused or error) for a request
no model ran, the route headers on the error, and RoutedChat for the rest. It is a raw ASGI
app, so the routed response owns the socket (server/app.py dispatches it before Starlette's
middleware).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from router_core.errors import HybridgeError
from router_core.records import Api
from router_core.routing.plan import RoutePlan
from router_core.server.helpers import forwarded_headers, new_request_id, read_json_from
from router_core.server.routed import ResponseEncoder, RoutedChat, route_headers
from router_core.server.services import ChatServices
from router_core.types import ChatRequest


@dataclass(slots=True)
class Parsed:
    """A body read as this API's request."""

    chat: ChatRequest
    # The answer's encoder, made once the request is planned.
    encoder: Callable[[], ResponseEncoder]
    # The model name the client sent, where routing sees another (Anthropic's `claude-…`).
    requested_model: str | None = None


class ChatEndpoint(ABC):
    """Subclasses say how a body is parsed (`parse`) and what an error looks like (`error`)."""

    api: Api

    def __init__(self, services: ChatServices) -> None:
        self.services = services

    def headers(self, scope: Scope) -> dict[str, str]:
        """The client's headers routing may read (one pass over the raw list)."""
        return forwarded_headers(scope)

    @abstractmethod
    def parse(self, headers: dict[str, str], body: Any) -> Parsed:
        """The body as a ChatRequest (raises the HybridgeError the client gets)."""

    @abstractmethod
    def error(self, exc: HybridgeError, request_id: str) -> Response:
        """An error before the first byte, in this API's shape."""

    def refusal(self, exc: HybridgeError, request_id: str, plan: RoutePlan | None) -> Response:
        response = self.error(exc, request_id)
        for name, value in route_headers(None, plan, request_id, []):
            response.headers[name.decode()] = value.decode()
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        started_at = time.time()
        parsed: Parsed | None = None
        plan: RoutePlan | None = None
        try:
            headers = self.headers(scope)
            limit = self.services.settings.server.max_body_bytes
            # The body straight from `receive`: no Request object on the hot path.
            body = await read_json_from(receive, limit, headers.get("content-length"))
            parsed = self.parse(headers, body)
            plan = await self.services.plan(parsed.chat)
        except HybridgeError as exc:
            # Refused or unreadable: still one ledger row (outcome refused / error).
            self.services.record_refusal(
                request_id,
                started_at,
                exc,
                api=self.api,
                request=parsed.chat if parsed else None,
                requested_model=parsed.requested_model if parsed else None,
            )
            await self.refusal(exc, request_id, plan)(scope, receive, send)
            return
        routed = RoutedChat(
            self.services, plan, parsed.chat, request_id, parsed.encoder(), requested_model=parsed.requested_model
        )
        await routed(scope, receive, send)
