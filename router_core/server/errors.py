"""Errors as the client expects them: OpenAI's shape, and Anthropic's under /v1/messages."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from router_core.errors import BadRequest, HybridgeError, UpstreamError
from router_core.redact import redact
from router_core.types import JSON

# Our error kinds as OpenAI `type` values.
_OPENAI_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "rate_limit": "rate_limit_exceeded",
    "overloaded": "server_error",
    "context_overflow": "invalid_request_error",
    "auth": "authentication_error",
    "permission_error": "permission_error",
    "authentication_error": "authentication_error",
}
# HTTP status → Anthropic error type.
_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def openai_error_body(exc: HybridgeError, request_id: str) -> JSON:
    param = exc.param if isinstance(exc, BadRequest) else None
    code: str | None = exc.kind
    if isinstance(exc, UpstreamError) and exc.kind == "context_overflow":
        code = "context_length_exceeded"
    return {
        "error": {
            "message": redact(exc.message),
            "type": _OPENAI_TYPES.get(exc.kind, "api_error" if exc.status >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
            "request_id": request_id,
        }
    }


def error_headers(exc: HybridgeError, request_id: str) -> dict[str, str]:
    headers = {"x-request-id": request_id}
    if isinstance(exc, UpstreamError) and exc.retry_after is not None:
        headers["retry-after"] = str(max(1, round(exc.retry_after)))
    return headers


def openai_error_response(exc: HybridgeError, request_id: str, extra_headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(openai_error_body(exc, request_id)),
        status_code=exc.status,
        media_type="application/json",
        headers={**error_headers(exc, request_id), **(extra_headers or {})},
    )


def error_status_and_type(exc: HybridgeError) -> tuple[int, str]:
    if isinstance(exc, UpstreamError):
        if exc.kind == "overloaded":
            return 529, "overloaded_error"
        if exc.kind == "rate_limit":
            return 429, "rate_limit_error"
        if exc.kind == "context_overflow":
            return 400, "invalid_request_error"
    if isinstance(exc, BadRequest) and exc.status == 404:
        return 404, "not_found_error"
    status = exc.status
    return status, _TYPES_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_message(exc: HybridgeError) -> str:
    # Claude Code compacts its conversation when an error says "prompt is too long".
    if isinstance(exc, UpstreamError) and exc.kind == "context_overflow":
        return f"prompt is too long: {redact(exc.message)}"
    return redact(exc.message)


def anthropic_error_body(exc: HybridgeError, request_id: str) -> JSON:
    _, etype = error_status_and_type(exc)
    return {"type": "error", "error": {"type": etype, "message": error_message(exc)}, "request_id": request_id}


def anthropic_error_response(exc: HybridgeError, request_id: str) -> Response:
    status, _ = error_status_and_type(exc)
    return Response(
        orjson.dumps(anthropic_error_body(exc, request_id)),
        status_code=status,
        media_type="application/json",
        headers={**error_headers(exc, request_id), "request-id": request_id},
    )


def error_for_path(path: str, err: HybridgeError, request_id: str) -> Response:
    """An error in the shape of the API the path belongs to (Anthropic's under /v1/messages)."""
    if path.startswith("/v1/messages"):
        return anthropic_error_response(err, request_id)
    return openai_error_response(err, request_id)
