"""The one place outbound HTTP clients are made, and upstream failures are mapped.

Every provider's httpx client comes from `make_client`, so a transport injected here (a
test's MockTransport, the privacy egress guard) covers every byte Hybridge sends out.
"""

from __future__ import annotations

import email.utils
import functools
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager

import httpx
import orjson

from router_core.errors import UpstreamError
from router_core.privacy.egress import PrivacyBlocked, RedirectRefused
from router_core.providers.plain_http import PlainHTTPTransport
from router_core.redact import redact, strip_urls

TransportFactory = Callable[[], httpx.AsyncBaseTransport]

# Phrases the providers use for a prompt that does not fit the model's context.
_OVERFLOW_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "exceeds the available context size",
    "exceed_context_size_error",
    "input is too long",
    "reduce the length",
)
MAX_RETRY_AFTER_S = 60.0


def default_transport() -> httpx.AsyncBaseTransport:
    # Plain-http upstreams (the local models, on every local request's path) go through the
    # lean httptools transport; https (the clouds) and the rare rest through httpx's own,
    # made when first needed.
    return PlainHTTPTransport(_httpx_transport)


def _httpx_transport() -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(
        verify=tls_context(),
        limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
        retries=0,
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context every https connection uses: httpx's default (the certifi bundle,
    or SSL_CERT_FILE / SSL_CERT_DIR), loaded once. Each context holds its own parsed copy of
    the CA bundle, about a megabyte; contexts are made to be shared between connections."""
    return httpx.create_ssl_context()


def make_client(
    base_url: str,
    *,
    connect_timeout_s: float,
    read_timeout_s: float,
    transport: httpx.AsyncBaseTransport,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        headers=dict(headers or {}),
        timeout=httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=30.0, pool=30.0),
        # Never read proxy variables (they could send loopback calls elsewhere) and never
        # follow a redirect (it could carry credentials to another host).
        trust_env=False,
        follow_redirects=False,
    )


def body_pieces(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body in the pieces the transport hands over. Nothing to decode (no
    content-encoding): straight from the transport's stream, without httpx's aiter_bytes /
    aiter_raw / chunker layers (microseconds per piece on every streamed read). Transport
    errors are still httpx's: the transports map them inside their own streams."""
    stream = response.stream
    # The raw names: `in response.headers` first works out the headers' text encoding.
    if isinstance(stream, httpx.AsyncByteStream) and not any(
        name.lower() == b"content-encoding" for name, _ in response.headers.raw
    ):
        return stream.__aiter__()
    return response.aiter_bytes()


async def read_body(response: httpx.Response) -> bytes:
    """The whole body (decoded where it was encoded), as `body_pieces` delivers it."""
    pieces = [piece async for piece in body_pieces(response)]
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return min(max(float(raw_ms) / 1000.0, 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(when - (now if now is not None else time.time()), 0.0), MAX_RETRY_AFTER_S)


def error_text(body: bytes) -> str:
    """The upstream's own error message, from the usual JSON shapes or plain text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("msg")
            if isinstance(msg, str):
                return msg[:500]
        elif isinstance(err, str):
            return err[:500]
    return body.decode("utf-8", "replace").strip()[:500]


def is_context_overflow(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _OVERFLOW_MARKERS)


def status_error(provider: str, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """Map a non-2xx upstream answer to an UpstreamError with the right kind and status."""
    # Upstreams echo keys back ("Incorrect API key provided: sk-..."): never pass one on.
    text = strip_urls(redact(error_text(body)))
    message = f"{provider}: {text}" if text else f"{provider}: upstream answered HTTP {status}"
    if 300 <= status < 400:
        return UpstreamError(
            f"{provider}: upstream answered with a redirect (HTTP {status}); Hybridge never follows redirects",
            kind="protocol",
            status=502,
            upstream_status=status,
            provider=provider,
        )
    if status in (401, 403):
        return UpstreamError(
            f"{provider} rejected the API key (HTTP {status}); set it with `hybridge keys set {provider}`",
            kind="auth",
            status=502,
            upstream_status=status,
            provider=provider,
        )
    if status == 429:
        return UpstreamError(
            message,
            kind="rate_limit",
            status=429,
            upstream_status=status,
            retry_after=parse_retry_after(headers),
            provider=provider,
        )
    if status in (400, 413, 422) and is_context_overflow(text):
        return UpstreamError(message, kind="context_overflow", status=400, upstream_status=status, provider=provider)
    if status == 404:
        return UpstreamError(message, kind="not_found", status=404, upstream_status=status, provider=provider)
    if status in (503, 529):
        return UpstreamError(
            message,
            kind="overloaded",
            status=503,
            upstream_status=status,
            retry_after=parse_retry_after(headers),
            provider=provider,
        )
    if status >= 500:
        return UpstreamError(message, kind="server", status=502, upstream_status=status, provider=provider)
    return UpstreamError(message, kind="bad_request", status=400, upstream_status=status, provider=provider)


@contextmanager
def upstream_errors(provider: str) -> Iterator[None]:
    """httpx's failures inside the block as the provider's UpstreamError (named by the
    provider, never by its URL). Every provider's calls go through this and `answer_error`."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise transport_error(provider, exc) from None


async def answer_error(
    provider: str, response: httpx.Response, *, on_rejected_key: Callable[[], None] | None = None
) -> UpstreamError:
    """The error an answer above 2xx means (a redirect too: it is never followed), with its
    body read (a stream's now). A rejected key is forgotten, so the next call reads it again."""
    body = await response.aread()
    if response.status_code in (401, 403) and on_rejected_key is not None:
        on_rejected_key()
    return status_error(provider, response.status_code, body, response.headers)


def transport_error(provider: str, exc: httpx.HTTPError) -> UpstreamError:
    """Map an httpx failure; the message names the provider, never its URL."""
    if isinstance(exc, PrivacyBlocked):
        # Retryable on purpose: the plan's next (local) candidate may still serve it.
        return UpstreamError(f"{provider}: {exc}", kind="privacy_blocked", status=403, provider=provider)
    if isinstance(exc, RedirectRefused):
        return UpstreamError(f"{provider}: {exc}", kind="protocol", status=502, provider=provider)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(f"{provider}: upstream timed out", kind="timeout", status=504, provider=provider)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamError(
            f"{provider}: cannot connect to the upstream server", kind="connect", status=502, provider=provider
        )
    return UpstreamError(
        f"{provider}: upstream connection failed ({type(exc).__name__})", kind="connect", status=502, provider=provider
    )
