"""Which Ollama models are cloud models, as Ollama itself says, learned before they are used.

A model is an Ollama cloud model when Ollama says so: `remote_host`/`remote_model` in its
`/api/tags` entry or its `/api/show` answer, whatever it is called (`ollama cp
gpt-oss:120b-cloud mybig`). The inventory's reads of `/api/tags` fill this in; a name not
seen yet is asked with `/api/show` before the first request that would use it. A name that
cannot be asked stays unknown, and privacy mode refuses unknown names rather than guess.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import httpx
import orjson

from router_core.privacy.ollama_cloud import CloudSwitch, model_key, parse_status, show_says_remote
from router_core.providers.http import TransportFactory, make_client

log = logging.getLogger(__name__)
SHOW_TIMEOUT_S = 3.0


class OllamaModelFacts:
    """`<provider>/<model:tag>` -> remote? for every Ollama provider, with their cloud switches."""

    def __init__(self, servers: Mapping[str, str], transport_factory: TransportFactory) -> None:
        self.servers = dict(servers)  # provider name -> base URL
        self._factory = transport_factory
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._lock = threading.Lock()
        self._remote: dict[str, bool] = {}
        self._view: Mapping[str, bool] = MappingProxyType(self._remote)
        self.switches: dict[str, CloudSwitch | None] = {}

    @staticmethod
    def key(provider: str, model: str) -> str:
        return f"{provider}/{model_key(model)}"

    def view(self) -> Mapping[str, bool]:
        """A read-only live view for RoutingState.ollama_remote."""
        return self._view

    def note(self, provider: str, facts: Iterable[tuple[str, bool]]) -> None:
        with self._lock:
            for name, remote in facts:
                self._remote[self.key(provider, name)] = remote

    def remote_names(self) -> list[str]:
        return [k.partition("/")[2] for k, remote in self._remote.items() if remote]

    def unknown(self, refs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """(provider, model) pairs of Ollama providers whose model was never seen."""
        return [(p, m) for p, m in dict.fromkeys(refs) if p in self.servers and self.key(p, m) not in self._remote]

    def _client(self, provider: str) -> httpx.AsyncClient:
        client = self._clients.get(provider)
        if client is None:
            client = make_client(
                self.servers[provider],
                connect_timeout_s=SHOW_TIMEOUT_S,
                read_timeout_s=SHOW_TIMEOUT_S,
                transport=self._factory(),
            )
            self._clients[provider] = client
        return client

    async def _show(self, provider: str, model: str) -> None:
        try:
            response = await self._client(provider).post("/api/show", content=orjson.dumps({"model": model}))
            body = orjson.loads(response.content) if response.content else None
        except (httpx.HTTPError, orjson.JSONDecodeError, RuntimeError) as exc:  # RuntimeError: closed at shutdown
            log.warning("cannot ask %s whether %s is a cloud model: %s", provider, model, exc)
            return
        remote = show_says_remote(response.status_code, body)
        if remote is not None:
            self.note(provider, [(model, remote)])

    async def learn(self, refs: Iterable[tuple[str, str]]) -> None:
        """Ask Ollama (`/api/show`) about each model never seen; failures leave it unknown."""
        await asyncio.gather(*(self._show(p, m) for p, m in self.unknown(refs)))

    async def read_switch(self, provider: str) -> CloudSwitch | None:
        """`GET /api/status`: Ollama's cloud switch, or None where it is not reported."""
        try:
            response = await self._client(provider).get("/api/status")
            body = orjson.loads(response.content) if response.content else None
        except (httpx.HTTPError, orjson.JSONDecodeError, RuntimeError):  # RuntimeError: closed at shutdown
            body, response = None, None
        switch = parse_status(response.status_code, body) if response is not None else None
        self.switches[provider] = switch
        return switch

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
