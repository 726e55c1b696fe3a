"""`GET /hybridge/backends`: each pooled backend's state (routing.pools), for health views.

Up or down (and why), the models it has loaded with their context, the busy figures
choosing uses (ours in flight, the engine's own running and waiting at the last poll),
members cooling down, and the last error. Read from memory: asking sends nothing.
"""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router_core.server.helpers import json_response
from router_core.server.services import BackendServices


def routes(runtime: BackendServices) -> list[BaseRoute]:
    async def backends(request: Request) -> Response:
        return json_response(
            {
                "poll_s": runtime.settings.inventory.backends_poll_s,
                "pools": {name: list(members) for name, members in runtime.settings.routing.pools.items()},
                "backends": [asdict(state) for state in runtime.backends()],
            }
        )

    return [Route("/hybridge/backends", backends, methods=["GET"])]
