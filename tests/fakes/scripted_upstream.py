"""An upstream that answers exactly the bytes a test scripts: for garbage-in tests and fuzzing.

It stands where Ollama (docs/api.md: `/api/chat` NDJSON with `application/x-ndjson`, `/api/show`,
`/api/tags`), an OpenAI-compatible server (`/v1/chat/completions` JSON or `text/event-stream`
`data:` lines) or Anthropic's Messages API (`/v1/messages`, SSE `event:`/`data:` pairs) would,
and sends what `answers[path]` says, byte for byte: the point is to see what Hybridge does when
an upstream answers 200 with the wrong shape. Real servers answer the model's metadata
with `/api/show`; here a default well-formed one is sent unless scripted, and `hang[path]`
holds a route's answer for that many seconds (a hung upstream), or until `release()`
(at teardown, so stopping the server does not wait for the hang).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

SHOW = orjson.dumps(
    {"model_info": {"general.architecture": "llama", "llama.context_length": 8192}, "capabilities": ["completion"]}
)
TAGS = orjson.dumps({"models": [{"name": "m:latest", "model": "m:latest"}]})


@dataclass
class Answer:
    body: list[bytes]  # sent as separate pieces (a stream), or one piece
    status: int = 200
    content_type: str = "application/json"
    pause_s: float = 0.0  # between pieces: each its own socket read on the other side


@dataclass
class ScriptedUpstream:
    answers: dict[str, Answer] = field(default_factory=dict)
    hang: dict[str, float] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    _released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """End every hang now."""
        self._released.set()

    def script(
        self, path: str, body: bytes | list[bytes], *, content_type: str = "application/json", pause_s: float = 0.0
    ) -> None:
        self.answers[path] = Answer(
            body if isinstance(body, list) else [body], content_type=content_type, pause_s=pause_s
        )

    async def _answer(self, request: Request) -> Response:
        path = request.url.path
        await request.body()
        self.hits[path] = self.hits.get(path, 0) + 1
        if path in self.hang:
            await asyncio.to_thread(self._released.wait, self.hang[path])
        answer = self.answers.get(path)
        if answer is None:
            if path == "/api/show":
                return Response(SHOW, media_type="application/json")
            if path == "/api/tags":
                return Response(TAGS, media_type="application/json")
            return Response(b'{"error":"not scripted"}', status_code=404, media_type="application/json")
        if len(answer.body) == 1:
            return Response(answer.body[0], status_code=answer.status, media_type=answer.content_type)

        async def pieces() -> AsyncIterator[bytes]:
            for piece in answer.body:
                yield piece
                await asyncio.sleep(answer.pause_s)

        return StreamingResponse(pieces(), status_code=answer.status, media_type=answer.content_type)

    @property
    def app(self) -> Starlette:
        paths = ["/api/chat", "/api/show", "/api/tags", "/v1/chat/completions", "/v1/messages", "/v1/models"]
        return Starlette(routes=[Route(p, self._answer, methods=["GET", "POST"]) for p in paths])
