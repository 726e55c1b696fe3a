"""The egress guard: an httpx transport every outbound client of Hybridge goes through.

It sits below routing policy, so a wrong plan, a fallback, a redirect or a model that
Ollama relays to its cloud still cannot send a prompt out while privacy mode is on. With
privacy on it refuses, before any socket is opened or any name is resolved:

- a destination that is neither loopback (any spelling of the address, or `localhost`) nor
  a LAN backend the user marked trusted;
- a request naming an Ollama cloud model (Ollama would relay it to ollama.com).

Always (privacy on or off) it refuses to hand back a redirect of a request that carries
credentials, so no client can follow one and take the key along. Proxy variables are
never read: clients are built with `trust_env=False` (providers/http.make_client).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable

import httpx
import orjson

from router_core.addresses import destination_allowed
from router_core.privacy.ollama_cloud import is_cloud_model_name
from router_core.privacy.state import PrivacyState

log = logging.getLogger(__name__)

# Same shape as providers.http.TransportFactory (kept apart: providers import this module).
TransportFactory = Callable[[], httpx.AsyncBaseTransport]

CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class EgressRefused(httpx.TransportError):
    """The guard stopped a request (an httpx error, so every client maps it like a failure)."""


class PrivacyBlocked(EgressRefused):
    """Privacy mode refused the destination or the model."""


class RedirectRefused(EgressRefused):
    """An upstream answered a credentialed request with a redirect."""


def carries_credentials(request: httpx.Request) -> bool:
    return any(name in request.headers for name in CREDENTIAL_HEADERS)


# Our bodies are serialised from dicts (no duplicate keys) and put `model` first, so a
# leading `"model": "..."` is the model and the rest of a large body need not be read.
_LEADING_MODEL = re.compile(rb'\{\s*"model"\s*:\s*"((?:[^"\\]|\\.)*)"')


def is_cloud_model(model: str, remote_models: frozenset[str]) -> bool:
    return is_cloud_model_name(model) or model in remote_models or model.removesuffix(":latest") in remote_models


def _named_model(body: bytes, remote_models: frozenset[str]) -> str | None:
    leading = _LEADING_MODEL.match(body)
    if leading is not None:
        with contextlib.suppress(orjson.JSONDecodeError):
            named = orjson.loads(b'"' + leading.group(1) + b'"')
            if named:
                return str(named)
    if not remote_models and b"cloud" not in body.lower():
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    model = (data.get("model") or data.get("name")) if isinstance(data, dict) else None
    return model if isinstance(model, str) else None


def cloud_model_requested(request: httpx.Request, remote_models: frozenset[str]) -> str | None:
    """The Ollama cloud model a JSON request body names, if any."""
    if request.method not in ("POST", "PUT"):
        return None
    try:
        body = request.content
    except httpx.RequestNotRead:
        # A streamed upload cannot be inspected; none of our clients sends one.
        return "<streamed body>"
    if not body:
        return None
    model = _named_model(body, remote_models)
    return model if model is not None and is_cloud_model(model, remote_models) else None


class EgressGuard(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, privacy: PrivacyState) -> None:
        self.inner = inner
        self.privacy = privacy

    def check(self, request: httpx.Request) -> None:
        """Raise PrivacyBlocked when privacy mode forbids `request`."""
        host = request.url.raw_host.decode("ascii", "replace")
        if not destination_allowed(host, self.privacy.trusted):
            log.warning("privacy mode refused a connection to %s (not loopback, not trusted)", host)
            raise PrivacyBlocked(
                "privacy mode is on: the destination is not this machine or a trusted LAN host", request=request
            )
        model = cloud_model_requested(request, self.privacy.remote_models)
        if model is not None:
            log.warning("privacy mode refused the Ollama cloud model %s", model)
            raise PrivacyBlocked(f"privacy mode is on: '{model}' is an Ollama cloud model", request=request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.privacy.enabled:
            self.check(request)
        response = await self.inner.handle_async_request(request)
        if (
            response.status_code in REDIRECT_STATUSES
            and "location" in response.headers
            and carries_credentials(request)
        ):
            await response.aclose()
            raise RedirectRefused(
                f"the upstream answered with a redirect (HTTP {response.status_code}); "
                "Hybridge never follows a redirect of a request that carries a key",
                request=request,
            )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def guarded(factory: TransportFactory, privacy: PrivacyState) -> TransportFactory:
    """A transport factory whose every transport is wrapped in the guard bound to `privacy`."""

    def make() -> httpx.AsyncBaseTransport:
        return EgressGuard(factory(), privacy)

    return make
