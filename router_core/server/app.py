"""The HTTP edge: a Starlette app over one Runtime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from router_core import __version__
from router_core.errors import HybridgeError
from router_core.runtime import Runtime
from router_core.server import (
    anthropic_api,
    backends_api,
    explain_api,
    local_api,
    ollama_api,
    openai_api,
    openapi_api,
    privacy_api,
    responses_api,
    stats_api,
)
from router_core.server.errors import error_for_path
from router_core.server.helpers import json_response, new_request_id
from router_core.server.security import LoopbackGuard
from router_core.server.token import enforced_token

log = logging.getLogger(__name__)

# Modules under router_core/server/ that add routes: each has `routes(runtime) -> list[BaseRoute]`.
ROUTE_MODULES = (
    openai_api,
    anthropic_api,
    backends_api,
    responses_api,
    ollama_api,
    local_api,
    privacy_api,
    stats_api,
    explain_api,
    backends_api,
    openapi_api,
)


class RouterApp(Starlette):
    """Starlette, with the raw-ASGI POST endpoints (the chat routes every request takes)
    dispatched before its middleware and router.

    Those cost tens of microseconds a request and wrap `send` twice for every streamed
    chunk; the chat endpoints need none of it. The loopback guard still runs first, and an
    error escaping them still becomes our JSON error and reaches the server's log.
    """

    def __init__(
        self,
        *,
        hot: dict[str, ASGIApp],
        guard: dict[str, Any],
        on_error: Callable[[Request, Exception], Awaitable[Response]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._hot = {path: LoopbackGuard(endpoint, **guard) for path, endpoint in hot.items()}
        self._on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self._hot.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if hot is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        scope.setdefault("path_params", {})
        try:
            await hot(scope, receive, send)
        except Exception as exc:
            # As Starlette's ServerErrorMiddleware: our error if nothing was sent yet, then re-raise.
            response = await self._on_error(Request(scope), exc)
            with contextlib.suppress(RuntimeError):  # the response had started: nothing more to send
                await response(scope, receive, send)
            raise


def _hot_endpoints(routes: list[BaseRoute]) -> dict[str, ASGIApp]:
    """Exact-path POST routes whose endpoint is a raw ASGI app (no Request/Response wrapping)."""
    return {
        route.path: route.app
        for route in routes
        if isinstance(route, Route)
        and route.app is route.endpoint
        and route.methods == {"POST"}
        and not route.param_convertors
    }


def create_app(runtime: Runtime) -> Starlette:
    async def health(request: Request) -> Response:
        return json_response({"status": "ok", "version": __version__})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        err = HybridgeError(f"{request.method} {request.url.path}: {exc.detail}", status=exc.status_code)
        err.kind = kind
        return error_for_path(request.url.path, err, new_request_id())

    async def internal_error(request: Request, exc: Exception) -> Response:
        request_id = new_request_id()
        log.error("request %s failed", request_id, exc_info=exc)
        return error_for_path(request.url.path, HybridgeError("internal error in Hybridge; see its log"), request_id)

    routes: list[BaseRoute] = [Route("/health", health, methods=["GET"])]
    for module in ROUTE_MODULES:
        routes += module.routes(runtime)
    guard_options: dict[str, Any] = {
        "bind_host": runtime.settings.server.host,
        "token": enforced_token(runtime.settings),
    }
    guard = Middleware(LoopbackGuard, **guard_options)
    app = RouterApp(
        hot=_hot_endpoints(routes),
        guard=guard_options,
        on_error=internal_error,
        routes=routes,
        middleware=[guard],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
    app.state.runtime = runtime
    return app
