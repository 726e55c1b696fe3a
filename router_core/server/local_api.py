"""`POST /v1/embeddings`, `/v1/completions` and Ollama's `/api/embed`, on the local
backend only (router_core/local_calls.py): OpenAI's shapes
(platform.openai.com/docs/api-reference/embeddings, /completions) pass through as the
local server answers; `/api/embed` follows ollama/ollama docs/api.md (`input` a string or
an array, answer `{"model", "embeddings", "prompt_eval_count"}`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from router_core.errors import BadRequest, HybridgeError
from router_core.local_calls import LocalCall, local_target
from router_core.records import Outcome
from router_core.runtime import Runtime
from router_core.server.errors import openai_error_response
from router_core.server.helpers import json_response, new_request_id, read_json
from router_core.server.ollama_api import ollama_error
from router_core.types import Usage


def _usage(data: object) -> Usage:
    usage = data.get("usage") if isinstance(data, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0), output_tokens=int(usage.get("completion_tokens") or 0)
    )


def routes(runtime: Runtime) -> list[BaseRoute]:
    async def forward(request: Request, path: str, ollama: bool = False) -> Response:
        request_id = new_request_id()
        fail = ollama_error if ollama else openai_error_response
        call: LocalCall | None = None
        try:
            body = await read_json(request, runtime.settings.server.max_body_bytes)
            if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                raise BadRequest("'model' is required and must be a string", param="model")
            requested = body["model"].removesuffix(":latest") if ollama else body["model"]
            if ollama:
                body = {"input": body.get("input")}
            call = LocalCall(
                runtime, local_target(runtime, requested), requested, request_id, request.headers.get("user-agent", "")
            )
            streamed = bool(body.get("stream")) and path == "/completions"
            response = await call.post(path, body)  # an error answer raises its UpstreamError
            if streamed:
                done = call

                async def relay() -> AsyncIterator[bytes]:
                    # A row whatever happens: the client may close its connection once it has
                    # read `data: [DONE]`, before the upstream's own end arrives, and Starlette
                    # then stops this generator at its `yield`.
                    outcome: Outcome = "cancelled"
                    kind, error = None, "the client left before the end of the stream"
                    try:
                        async for piece in done.relay(response):
                            if piece.find(b"data: [DONE]") >= 0:
                                outcome, error = "ok", ""  # the client has had the whole answer
                            yield piece
                        outcome, error = "ok", ""
                    except HybridgeError as exc:
                        outcome, kind, error = "error", exc.kind, exc.message
                        raise
                    finally:
                        done.record(Usage(), outcome=outcome, streamed=True, error_kind=kind, error=error)
                        await done.aclose()

                call = None  # closed by the relay
                return StreamingResponse(
                    relay(),
                    media_type="text/event-stream",
                    headers={"x-request-id": request_id, "x-hybridge-route": "local"},
                )
            data = orjson.loads(await response.aread())
            call.record(_usage(data), outcome="ok", streamed=False)
            if ollama:
                embeddings = [item.get("embedding") for item in data.get("data") or []]
                return json_response(
                    {"model": requested, "embeddings": embeddings, "prompt_eval_count": _usage(data).input_tokens}
                )
            out = json_response(data)
            out.headers["x-hybridge-route"] = "local"
            out.headers["x-request-id"] = request_id
            return out
        except HybridgeError as exc:
            if call is not None:
                call.record(Usage(), outcome="error", streamed=False, error_kind=exc.kind, error=exc.message)
            return fail(exc, request_id)
        except orjson.JSONDecodeError:
            return fail(HybridgeError("the local backend sent invalid JSON", status=502), request_id)
        finally:
            if call is not None:
                await call.aclose()

    async def embeddings(request: Request) -> Response:
        return await forward(request, "/embeddings")

    async def completions(request: Request) -> Response:
        return await forward(request, "/completions")

    async def embed(request: Request) -> Response:
        return await forward(request, "/embeddings", ollama=True)

    return [
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/api/embed", embed, methods=["POST"]),
    ]
