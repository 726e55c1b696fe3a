"""The one error hierarchy of Hybridge.

Upstream failures are mapped to these at the provider edge; the HTTP edge maps them to
OpenAI- or Anthropic-shaped JSON. Messages here are shown to clients, so they never carry
keys, file paths or upstream URLs.
"""

from __future__ import annotations


class HybridgeError(Exception):
    """Base of every error Hybridge raises on purpose."""

    status: int = 500
    kind: str = "api_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class SettingsError(HybridgeError):
    """Settings failed validation; `problems` lists one line per bad key."""

    status = 400
    kind = "invalid_request_error"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings: " + "; ".join(problems))
        self.problems = problems


class BadRequest(HybridgeError):
    """The client's request is malformed or names something that does not exist."""

    status = 400
    kind = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message, status=status)
        self.param = param


class ModelNotFound(BadRequest):
    def __init__(self, model: str) -> None:
        super().__init__(f"The model `{model}` does not exist", param="model", status=404)
        self.kind = "not_found_error"


class NoRoute(HybridgeError):
    """No candidate can serve the request (e.g. `cloud` with no cloud provider)."""

    status = 503
    kind = "no_route"


class Forbidden(HybridgeError):
    status = 403
    kind = "permission_error"


class EscalationRefused(Forbidden):
    """Flagged work would go to the cloud, and privacy mode or a spent budget is set to refuse it."""

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause  # "privacy" | "budget"


class UpstreamError(HybridgeError):
    """An upstream model server failed. `retryable` drives fallback before the first byte.

    kind is one of: connect, timeout, rate_limit, overloaded, server, context_overflow,
    auth, bad_request, protocol, cancelled, privacy_blocked (the egress guard), privacy (privacy mode
    stopped a cloud request in flight), upstream_invalid (the upstream answered, but not in the
    shape its API promises: see `UpstreamInvalid`).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int = 502,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        provider: str = "",
    ) -> None:
        super().__init__(message, status=status)
        self.kind = kind
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.provider = provider

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


class UpstreamInvalid(UpstreamError):
    """The upstream answered with a body that is not its API's shape (HTML, `[1,2]`, cut-off JSON).

    Raised at the provider edge by the validators of each wire format; 502 before the first
    byte (so the next candidate may serve), an error event after it.
    """

    def __init__(self, provider: str, detail: str, *, upstream_status: int | None = None) -> None:
        super().__init__(
            f"upstream {provider or 'server'} returned an invalid answer: {detail}",
            kind="upstream_invalid",
            status=502,
            upstream_status=upstream_status,
            provider=provider,
        )
        self.detail = detail


# "upstream_invalid": a broken answer from one upstream says nothing about the next one.
# "privacy_blocked": the egress guard refused a cloud candidate; the next (local) one may serve.
RETRYABLE_KINDS = frozenset(
    {
        "connect",
        "timeout",
        "rate_limit",
        "overloaded",
        "server",
        "context_overflow",
        "privacy_blocked",
        "upstream_invalid",
    }
)
