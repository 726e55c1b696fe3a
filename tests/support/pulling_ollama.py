"""The Ollama-API test server (tests/support/fake_ollama.py) plus `POST /api/pull`, as Ollama
documents it (github.com/ollama/ollama docs/api.md, "Pull a Model"; server/routes.go
PullHandler): NDJSON `{"status": "pulling manifest"}`, per layer `{"status": "pulling
<digest>", "digest", "total", "completed"}`, `verifying sha256 digest`, `writing manifest`,
`{"status": "success"}`; the model is listed by /api/tags only once the pull succeeded; an
unknown model is `{"error": "pull model manifest: file does not exist"}` with HTTP 500.
Like a real download it takes time (`delay_s` per event), so a cancel can land mid-pull."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.support.fake_ollama import FakeModel, FakeOllama


class PullingOllama(FakeOllama):
    LAYERS = (("sha256:aaaa", 3_000_000), ("sha256:bbbb", 1_000_000))

    def __init__(self, llama_url: str, models: list[FakeModel] | None = None, delay_s: float = 0.02) -> None:
        super().__init__(llama_url, models)
        self.delay_s = delay_s
        self.pulls: list[str] = []
        self.app.router.routes.append(Route("/api/pull", self.pull, methods=["POST"]))

    async def pull(self, request: Request) -> StreamingResponse:
        body = orjson.loads(await request.body())
        name = str(body.get("model") or body.get("name") or "")
        self.pulls.append(name)

        async def lines() -> AsyncIterator[bytes]:
            yield orjson.dumps({"status": "pulling manifest"}) + b"\n"
            for digest, total in self.LAYERS:
                for done in (0, total // 2, total):
                    await asyncio.sleep(self.delay_s)
                    event = {"status": f"pulling {digest[7:]}", "digest": digest, "total": total, "completed": done}
                    yield orjson.dumps(event) + b"\n"
            for status in ("verifying sha256 digest", "writing manifest"):
                yield orjson.dumps({"status": status}) + b"\n"
            self.state.models[name] = FakeModel(name)
            yield orjson.dumps({"status": "success"}) + b"\n"

        if name.startswith("missing"):
            error = orjson.dumps({"error": "pull model manifest: file does not exist"})
            return StreamingResponse(iter([error]), status_code=500, media_type="application/json")
        return StreamingResponse(lines(), media_type="application/x-ndjson")
