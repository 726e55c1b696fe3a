"""`POST /hybridge/explain` and `GET /hybridge/cooldowns`: routing, explained, sending nothing.

POST takes the same body and headers as `/v1/chat/completions` and answers the plan that
request would get right now (live privacy, budget, cooldowns, machine limits), with every
reason; a request routing would refuse answers 200 with the error it would get. GET
/hybridge/cooldowns lists upstream models with recent failures, cooling ones first.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router_core.errors import HybridgeError
from router_core.runtime import Runtime
from router_core.server.errors import openai_error_response
from router_core.server.helpers import FORWARDED_HEADERS, new_request_id, read_json
from router_core.server.openai_request import parse_chat_request


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def routes(runtime: Runtime) -> list[BaseRoute]:
    async def explain_request(request: Request) -> Response:
        try:
            body = await read_json(request, runtime.settings.server.max_body_bytes)
            headers = {k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k)) is not None}
            chat = parse_chat_request(body, headers)
        except HybridgeError as exc:
            return openai_error_response(exc, new_request_id())
        # Runtime.plan itself, in dry-run mode: no writer notes, no events.
        return _json(await runtime.explain(chat))

    async def cooldowns(request: Request) -> Response:
        return _json({"cooldowns": [asdict(row) for row in runtime.cooldown_status()]})

    return [
        Route("/hybridge/explain", explain_request, methods=["POST"]),
        Route("/hybridge/cooldowns", cooldowns, methods=["GET"]),
    ]
