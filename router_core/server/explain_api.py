"""`POST /hybridge/explain` and `GET /hybridge/cooldowns`: routing, explained, sending nothing.

POST takes the same body and headers as `/v1/chat/completions` and answers the plan that
request would get right now (live privacy, budget, cooldowns, machine limits), with every
reason; a request routing would refuse answers 200 with the error it would get. GET
/hybridge/cooldowns lists upstream models with recent failures, cooling ones first.
"""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router_core.errors import HybridgeError
from router_core.server.errors import openai_error_response
from router_core.server.helpers import forwarded_headers, json_response, new_request_id, read_json
from router_core.server.openai_request import parse_chat_request
from router_core.server.services import ExplainServices


def routes(runtime: ExplainServices) -> list[BaseRoute]:
    async def explain_request(request: Request) -> Response:
        try:
            body = await read_json(request, runtime.settings.server.max_body_bytes)
            chat = parse_chat_request(body, forwarded_headers(request.scope))
        except HybridgeError as exc:
            return openai_error_response(exc, new_request_id())
        # Runtime.plan itself, in dry-run mode: no writer notes, no events.
        return json_response(await runtime.explain(chat))

    async def cooldowns(request: Request) -> Response:
        return json_response({"cooldowns": [asdict(row) for row in runtime.cooldown_status()]})

    return [
        Route("/hybridge/explain", explain_request, methods=["POST"]),
        Route("/hybridge/cooldowns", cooldowns, methods=["GET"]),
    ]
