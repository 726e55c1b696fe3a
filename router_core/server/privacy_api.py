"""`GET/POST /hybridge/privacy`: the switch the tray (and `hybridge privacy on|off`) flips.

GET answers the live state, cloud requests in flight and Ollama's cloud warning. POST
`{"enabled": true|false}` switches it live and saves it in the user's settings file.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router_core.errors import BadRequest, HybridgeError
from router_core.privacy.report import privacy_report
from router_core.privacy.switch import switch_privacy
from router_core.runtime import Runtime
from router_core.server.errors import openai_error_response
from router_core.server.helpers import json_response, new_request_id, read_json

MAX_BODY_BYTES = 4096


def _parse(data: Any) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("enabled"), bool):
        raise BadRequest('send {"enabled": true} or {"enabled": false}', param="enabled")
    unknown = sorted(set(data) - {"enabled"})
    if unknown:
        raise BadRequest(f"unknown field '{unknown[0]}'", param=unknown[0])
    return bool(data["enabled"])


def routes(runtime: Runtime) -> list[BaseRoute]:
    async def show(request: Request) -> Response:
        return json_response(await privacy_report(runtime))

    async def switch(request: Request) -> Response:
        request_id = new_request_id()
        try:
            enabled = _parse(await read_json(request, MAX_BODY_BYTES))
        except HybridgeError as exc:
            return openai_error_response(exc, request_id)
        # The settings file is written with fsync: keep that off the event loop.
        result = await asyncio.to_thread(switch_privacy, runtime, enabled)
        report = await privacy_report(runtime)
        report.update({"saved": result.saved, "problem": result.problem})
        return json_response(report)

    return [
        Route("/hybridge/privacy", show, methods=["GET"]),
        Route("/hybridge/privacy", switch, methods=["POST"]),
    ]
