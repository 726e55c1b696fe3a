"""OpenAI's Chat Completions and model list served by Hybridge: `POST /v1/chat/completions`
and `GET /v1/models` (in Anthropic's shape when the client sends `anthropic-version`)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from router_core.errors import HybridgeError
from router_core.runtime import Runtime
from router_core.server.errors import openai_error_response
from router_core.server.helpers import forwarded_headers, json_response, new_request_id, read_json_from
from router_core.server.openai_request import parse_chat_request
from router_core.server.routed import RoutedChat, route_headers

MODEL_NAMES = {
    "auto": "Auto (Hybridge routes it)",
    "local": "Local (stays on this machine)",
    "cloud": "Cloud (Hybridge's cloud model)",
}


class ChatCompletionsEndpoint:
    """POST /v1/chat/completions, as a raw ASGI app so the routed response owns the socket."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        started_at = time.time()
        plan = None
        chat = None
        try:
            headers = forwarded_headers(scope)
            limit = self.runtime.settings.server.max_body_bytes
            body = await read_json_from(receive, limit, headers.get("content-length"))
            chat = parse_chat_request(body, headers)
            plan = await self.runtime.plan(chat)
        except HybridgeError as exc:
            # Refused or unreadable: still one ledger row (outcome refused / error).
            self.runtime.record_refusal(request_id, started_at, exc, api="openai", request=chat)
            response = openai_error_response(exc, request_id)
            for name, value in route_headers(None, plan, request_id, []):
                response.headers[name.decode()] = value.decode()
            await response(scope, receive, send)
            return
        await RoutedChat(self.runtime, plan, chat, request_id)(scope, receive, send)


def anthropic_model_list(ids: list[str]) -> Any:
    """Anthropic's List Models shape (docs.claude.com/en/api/models-list), for clients that
    send `anthropic-version` (Claude Code's model discovery)."""
    data = [
        {"type": "model", "id": i, "display_name": MODEL_NAMES.get(i, i), "created_at": "1970-01-01T00:00:00Z"}
        for i in ids
    ]
    return {"data": data, "has_more": False, "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}


def routes(runtime: Runtime) -> list[BaseRoute]:
    async def models(request: Request) -> Response:
        ids = await runtime.list_models()
        if request.headers.get("anthropic-version"):
            return json_response(anthropic_model_list(ids))
        return json_response(
            {
                "object": "list",
                "data": [{"id": i, "object": "model", "created": 0, "owned_by": "hybridge"} for i in ids],
            }
        )

    return [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", ChatCompletionsEndpoint(runtime), methods=["POST"]),
    ]
