"""OpenAI's Chat Completions and model list served by Hybridge: `POST /v1/chat/completions`
and `GET /v1/models` (in Anthropic's shape when the client sends `anthropic-version`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router_core.errors import HybridgeError
from router_core.server.chat_endpoint import ChatEndpoint, Parsed
from router_core.server.errors import openai_error_response
from router_core.server.helpers import json_response
from router_core.server.openai_request import parse_chat_request
from router_core.server.routed import OPENAI
from router_core.server.services import ChatServices

MODEL_NAMES = {
    "auto": "Auto (Hybridge routes it)",
    "local": "Local (stays on this machine)",
    "cloud": "Cloud (Hybridge's cloud model)",
}


class ChatCompletionsEndpoint(ChatEndpoint):
    """POST /v1/chat/completions."""

    api = "openai"

    def parse(self, headers: dict[str, str], body: Any) -> Parsed:
        return Parsed(parse_chat_request(body, headers), lambda: OPENAI)

    def error(self, exc: HybridgeError, request_id: str) -> Response:
        return openai_error_response(exc, request_id)


def anthropic_model_list(ids: list[str]) -> Any:
    """Anthropic's List Models shape (docs.claude.com/en/api/models-list), for clients that
    send `anthropic-version` (Claude Code's model discovery)."""
    data = [
        {"type": "model", "id": i, "display_name": MODEL_NAMES.get(i, i), "created_at": "1970-01-01T00:00:00Z"}
        for i in ids
    ]
    return {"data": data, "has_more": False, "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}


def routes(runtime: ChatServices) -> list[BaseRoute]:
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
