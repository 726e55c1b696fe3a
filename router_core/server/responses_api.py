"""OpenAI's Responses API served by Hybridge, for Codex CLI and the `openai` SDKs.

`POST /v1/responses` is translated to a chat request (responses_translate.py), routed by
the same policy and executor as `/v1/chat/completions`, and answered in the Responses
format (responses_encoder.py). `previous_response_id` continues a response this router
made and kept (`store` not false), from a bounded in-memory store: it lasts as long as the
router runs, which is all a client chaining turns needs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from router_core.errors import BadRequest, HybridgeError
from router_core.server.chat_endpoint import ChatEndpoint, Parsed
from router_core.server.helpers import FORWARDED_HEADERS, forwarded_headers
from router_core.server.openai_request import parse_chat_request
from router_core.server.responses_encoder import ResponsesEncoder
from router_core.server.responses_translate import chat_body
from router_core.server.services import ChatServices
from router_core.types import JSON

# Codex names its conversation in `session_id`; routing reads x-session-id.
SESSION_HEADERS = ("session_id", "conversation_id")


class ResponseStore:
    """The conversations of the last `size` stored responses (chat messages, by id)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[str, list[JSON]] = OrderedDict()

    def get(self, response_id: str) -> list[JSON]:
        found = self._items.get(response_id)
        if found is None:
            raise BadRequest(
                f"Previous response with id '{response_id}' not found.", param="previous_response_id", status=404
            )
        return list(found)

    def put(self, response_id: str, messages: list[JSON]) -> None:
        self._items[response_id] = messages
        while len(self._items) > self.size:
            self._items.popitem(last=False)


_READ = {name.encode(): name for name in (*FORWARDED_HEADERS, *SESSION_HEADERS)}


def _headers(scope: Scope) -> dict[str, str]:
    """Routing's headers; Codex names its session in `session_id` / `conversation_id`."""
    headers = forwarded_headers(scope, _READ)
    for name in SESSION_HEADERS:
        value = headers.pop(name, None)
        if value and "x-session-id" not in headers:
            headers["x-session-id"] = value
    return headers


class ResponsesEndpoint(ChatEndpoint):
    """POST /v1/responses."""

    api = "responses"

    def __init__(self, services: ChatServices, store: ResponseStore) -> None:
        super().__init__(services)
        self.store = store

    def headers(self, scope: Scope) -> dict[str, str]:
        return _headers(scope)

    def parse(self, headers: dict[str, str], body: Any) -> Parsed:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        previous = body.get("previous_response_id")
        if previous is not None and not isinstance(previous, str):
            raise BadRequest("'previous_response_id' must be a string", param="previous_response_id")
        history = self.store.get(previous) if previous else []
        translated, custom = chat_body(body, history)
        chat = parse_chat_request(translated, headers)
        keep = body.get("store", True) is not False

        def encoder() -> ResponsesEncoder:
            # What was asked (the instructions aside) and answered: the next turn's history.
            asked = chat.messages[1 if body.get("instructions") is not None else 0 :]

            def finished(response_id: str, output: list[JSON]) -> None:
                if keep:
                    self.store.put(response_id, [*asked, *output])

            return ResponsesEncoder(body, custom, finished)

        return Parsed(chat, encoder)

    def error(self, exc: HybridgeError, request_id: str) -> Response:
        return ResponsesEncoder({}, frozenset()).error_response(exc, request_id)


def routes(services: ChatServices) -> list[BaseRoute]:
    return [Route("/v1/responses", ResponsesEndpoint(services, ResponseStore()), methods=["POST"])]
