"""Loopback server hardening, as one pure ASGI middleware that runs before any route.

What it stops (lessons from Ollama's DNS-rebinding CVE-2024-28224 and LiteLLM's leaks):

- a Host header that is not `127.0.0.1`, `[::1]` or `localhost` with our port (a page on
  a rebinding domain reaches 127.0.0.1 with its own name in Host) → 403;
- anything a browser page sends: an `Origin` header, `Sec-Fetch-Site: cross-site|same-site`,
  CORS preflights (OPTIONS) → 403; no CORS header is ever sent;
- with a token configured: requests without `Authorization: Bearer <token>` or
  `x-api-key: <token>` → 401.

Body rules (size, nesting depth, fields that would choose an upstream or its key) are
checked where the body is read: server/helpers.py `read_json`. This guard is on every
request's path, so it reads the header list once and allocates little.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from router_core.addresses import is_loopback_host
from router_core.errors import HybridgeError
from router_core.server.errors import error_for_path
from router_core.server.helpers import new_request_id

LOOPBACK_HOST_NAMES = ("127.0.0.1", "[::1]", "localhost")
_BROWSER_SITES = (b"cross-site", b"same-site")


def allowed_hosts(bind_host: str, port: int) -> frozenset[bytes]:
    """Host header values accepted for a server bound to `bind_host` on `port`."""
    names = list(LOOPBACK_HOST_NAMES)
    if not is_loopback_host(bind_host) and not _is_wildcard(bind_host):
        names.append(f"[{bind_host}]" if ":" in bind_host else bind_host.lower())
    values = {f"{name}:{port}" for name in names}
    if port == 80:
        values.update(names)
    return frozenset(v.encode() for v in values)


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


class LoopbackGuard:
    """Refuse what is not a local, non-browser client (and, with a token, not authorised)."""

    def __init__(self, app: ASGIApp, *, bind_host: str, token: str | None) -> None:
        self.app = app
        self.bind_host = bind_host
        self.token = token.encode() if token else None
        # A wildcard bind (LAN use, token required by settings) cannot know its own names.
        self.check_host = not (_is_wildcard(bind_host) and self.token)
        self._hosts_by_port: dict[int, frozenset[bytes]] = {}

    def _hosts(self, scope: Scope) -> frozenset[bytes]:
        server = scope.get("server")
        port = int(server[1]) if server and server[1] is not None else 80
        hosts = self._hosts_by_port.get(port)
        if hosts is None:
            hosts = self._hosts_by_port[port] = allowed_hosts(self.bind_host, port)
        return hosts

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """(status, kind, message) when the request must be refused, else None."""
        host: list[bytes] = []
        origin = site = auth = api_key = None
        for name, value in scope["headers"]:
            if name == b"host":
                host.append(value)
            elif name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                site = value
            elif name == b"authorization":
                auth = value
            elif name == b"x-api-key":
                api_key = value
        if self.check_host and (len(host) != 1 or host[0].lower() not in self._hosts(scope)):
            return (
                403,
                "permission_error",
                "this server answers only requests addressed to 127.0.0.1, [::1] or localhost",
            )
        if scope["method"] == "OPTIONS":
            return 403, "permission_error", "cross-origin requests are not allowed"
        if origin is not None or (site is not None and site.lower() in _BROWSER_SITES):
            return 403, "permission_error", "requests from web pages are not allowed"
        if self.token is not None and not self._authorised(auth, api_key):
            return 401, "authentication_error", "a valid token is required (Authorization: Bearer or x-api-key)"
        return None

    def _authorised(self, auth: bytes | None, api_key: bytes | None) -> bool:
        assert self.token is not None
        offered = []
        if auth is not None and auth[:7].lower() == b"bearer ":
            offered.append(auth[7:].strip())
        if api_key is not None:
            offered.append(api_key.strip())
        # Compare every offer in constant time; never short-circuit on the first mismatch.
        return any([hmac.compare_digest(value, self.token) for value in offered])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, kind, message = refused
        error = HybridgeError(message, status=status)
        error.kind = kind
        response = error_for_path(scope["path"], error, new_request_id())
        if status == 401:
            response.headers["www-authenticate"] = "Bearer"
        await response(scope, receive, send)
