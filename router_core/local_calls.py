"""Embeddings and plain completions, always on a local backend (never the cloud).

Continue's indexing (`/v1/embeddings`, Ollama's `/api/embed`) and autocomplete
(`/v1/completions`) need no routing decision: the text stays on this machine, so privacy
mode needs no special case. The body goes to the local provider's OpenAI-compatible root
(llama.cpp's llama-server, LM Studio, vLLM, or Ollama's own `/v1`) through the same
egress-guarded transport as every other call, and each call is a ledger row.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from router_core.errors import BadRequest
from router_core.providers.http import answer_error, upstream_errors
from router_core.records import Outcome, RequestRecord
from router_core.redact import redact
from router_core.runtime import Runtime
from router_core.settings import ollama_base_url
from router_core.types import VIRTUAL_MODELS, Usage


@dataclass(frozen=True, slots=True)
class LocalTarget:
    provider: str
    model: str
    root: str  # the OpenAI-compatible root, ending in /v1


def local_target(runtime: Runtime, requested: str) -> LocalTarget:
    """The local provider and model for `requested` (`auto`/`local`/`cloud` → routing.local_model)."""
    ref = runtime.settings.routing.local_model if requested in VIRTUAL_MODELS else requested
    provider, _, model = ref.partition("/")
    conf = runtime.settings.providers.get(provider)
    if conf is None or not model:
        raise BadRequest(
            f"model '{requested}' is not a local model ('<provider>/<model>' or auto)", param="model", status=404
        )
    if not conf.is_local:
        raise BadRequest(
            f"'{requested}' is a cloud model: embeddings and completions stay on this machine", param="model"
        )
    root = ollama_base_url(conf.base_url) + "/v1" if conf.kind == "ollama" else conf.base_url.rstrip("/")
    return LocalTarget(provider, model, root)


class LocalCall:
    """One POST to the local backend; `record` makes its ledger row."""

    def __init__(self, runtime: Runtime, target: LocalTarget, requested: str, request_id: str, client: str) -> None:
        self.runtime = runtime
        self.target = target
        self.requested = requested
        self.request_id = request_id
        self.client = client
        self.started = time.time()
        self.t0 = time.perf_counter()
        conf = runtime.settings.providers[target.provider]
        self.http = httpx.AsyncClient(
            transport=runtime.transport_factory(),
            timeout=httpx.Timeout(connect=conf.connect_timeout_s, read=conf.read_timeout_s, write=30.0, pool=30.0),
        )

    async def post(self, path: str, body: dict[str, object]) -> httpx.Response:
        body = {**body, "model": self.target.model}
        with upstream_errors(self.target.provider):
            request = self.http.build_request("POST", self.target.root + path, json=body)
            response = await self.http.send(request, stream=True)
            if response.status_code >= 300:
                try:
                    raise await answer_error(self.target.provider, response)
                finally:
                    await response.aclose()
            return response

    async def relay(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            with upstream_errors(self.target.provider):
                async for piece in response.aiter_raw():
                    yield piece
        finally:
            await response.aclose()

    def record(
        self,
        usage: Usage,
        *,
        outcome: Outcome,
        streamed: bool,
        error_kind: str | None = None,
        error: str = "",
    ) -> None:
        self.runtime.events.request_finished.emit(
            RequestRecord(
                request_id=self.request_id,
                started_at=self.started,
                client=self.client,
                session=None,
                requested_model=self.requested,
                api="openai",
                route="local",
                reason="embeddings/completions stay local",
                provider=self.target.provider,
                model=self.target.model,
                streamed=streamed,
                outcome=outcome,
                usage=usage,
                ttft_s=None,
                duration_s=time.perf_counter() - self.t0,
                error_kind=error_kind,
                error=redact(error),
                backend=self.runtime.backend_addresses.get(self.target.provider, ""),
            )
        )

    async def aclose(self) -> None:
        await self.http.aclose()
