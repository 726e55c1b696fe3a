"""The HTTP edge: a Starlette app over one Runtime."""

from __future__ import annotations

import contextlib
import importlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from router_core import __version__
from router_core.errors import BadRequest, HybridgeError
from router_core.runtime import Runtime
from router_core.server.anthropic_encoder import anthropic_error_response
from router_core.server.errors import openai_error_response
from router_core.server.openai_request import parse_chat_request
from router_core.server.routed import RoutedChat, route_headers
from router_core.server.security import LoopbackGuard, check_json_body
from router_core.server.token import enforced_token

log = logging.getLogger(__name__)

# Modules under router_core/server/ that add routes: each has `routes(runtime) -> list[BaseRoute]`.
ROUTE_MODULES: tuple[str, ...] = (
    "anthropic_api", "responses_api", "ollama_api", "local_api",
    "privacy_api", "stats_api", "explain_api", "openapi_api",
)

# Headers routing may read; everything else the client sends stays out of the request.
# (content-length lets routing bound the prompt's size without walking a long history.)
FORWARDED_HEADERS = (
    "user-agent", "x-session-id", "x-session-affinity", "x-parent-session-id", "x-hybridge-tags", "content-length"
)


_FORWARDED = {name.encode(): name for name in FORWARDED_HEADERS}


def forwarded_headers(scope: Scope, names: Mapping[bytes, str] = _FORWARDED) -> dict[str, str]:
    """The client's headers routing may read (`names`: raw lower-case name to key), in one
    pass over the raw list; the first of a repeated header counts, as Starlette's get()."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = names.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, refusing bodies over `limit` bytes before reading them whole."""
    return await read_json_from(request.receive, limit, request.headers.get("content-length"))


async def read_json_from(receive: Receive, limit: int, declared: str | None) -> Any:
    """read_json for a raw ASGI endpoint: the body straight from `receive` (`declared`: its
    content-length header)."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"request body is larger than {limit} bytes", status=413)
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # Gone, or its body stalled (server/limits.py): no one to answer.
            raise BadRequest("the request body stopped arriving", status=408)
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"request body is larger than {limit} bytes", status=413)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        data = orjson.loads(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc.msg})") from None
    check_json_body(data)
    return data


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


MODEL_NAMES = {"auto": "Auto (Hybridge routes it)", "local": "Local (stays on this machine)",
               "cloud": "Cloud (Hybridge's cloud model)"}


def anthropic_model_list(ids: list[str]) -> Any:
    """Anthropic's List Models shape (docs.claude.com/en/api/models-list), for clients that
    send `anthropic-version` (Claude Code's model discovery)."""
    data = [
        {"type": "model", "id": i, "display_name": MODEL_NAMES.get(i, i), "created_at": "1970-01-01T00:00:00Z"}
        for i in ids
    ]
    return {"data": data, "has_more": False, "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}


def error_for_path(path: str, err: HybridgeError, request_id: str) -> Response:
    """An error in the shape of the API the path belongs to (Anthropic's under /v1/messages)."""
    if path.startswith("/v1/messages"):
        return anthropic_error_response(err, request_id)
    return openai_error_response(err, request_id)


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

    chat = ChatCompletionsEndpoint(runtime)
    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
    for name in ROUTE_MODULES:
        routes += importlib.import_module(f"router_core.server.{name}").routes(runtime)
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
