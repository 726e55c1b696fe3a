"""What the HTTP edge may ask of the running router: narrow services, not the whole Runtime.

`Runtime` (router_core/runtime.py) provides all of them; a chat endpoint is typed against
`ChatServices` only, so mypy keeps the edge from reaching into the runtime's other parts
(its providers, ledger internals, inventory). A test can hand an endpoint any object with
these members.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from router_core.errors import HybridgeError
from router_core.events import RouterEvents
from router_core.executor import Executor
from router_core.inflight import InFlight
from router_core.ledger.recorder import Ledger
from router_core.providers.pool import BackendState
from router_core.records import Api
from router_core.routing.cooldowns import CooldownStatus
from router_core.routing.explain import Explanation
from router_core.routing.plan import Candidate, RoutePlan
from router_core.settings import Settings
from router_core.types import ChatRequest


class Planner(Protocol):
    """The one planning path, and the ledger row of a request refused before any model ran."""

    async def plan(
        self, request: ChatRequest, *, dry_run: bool = False, overrides: Mapping[str, Any] | None = None
    ) -> RoutePlan: ...

    async def explain(self, request: ChatRequest, overrides: Mapping[str, Any] | None = None) -> Explanation: ...

    def record_refusal(
        self,
        request_id: str,
        started_at: float,
        exc: HybridgeError,
        *,
        api: Api,
        request: ChatRequest | None,
        requested_model: str | None = None,
        duration_s: float = 0.0,
    ) -> None: ...


class Catalog(Protocol):
    """The models a client may name, and what the local model can hold."""

    async def list_models(self) -> list[str]: ...

    def local_context_limit(self) -> int | None: ...

    async def upstream_token_count(self, request: ChatRequest, candidate: Candidate) -> int | None:
        """The candidate's upstream's own prompt count (Anthropic's count_tokens); None: it has none."""
        ...


class ChatServices(Planner, Catalog, Protocol):
    """What a chat endpoint and the routed response need: settings, the planner, the
    executor, the requests in flight and the event bus (records, stream counters)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def executor(self) -> Executor: ...

    @property
    def in_flight(self) -> InFlight: ...

    @property
    def events(self) -> RouterEvents: ...

    @property
    def backend_addresses(self) -> Mapping[str, str]:
        """Each local engine's `host:port`, named in the ledger row it serves."""
        ...


class ExplainServices(Protocol):
    """`POST /hybridge/explain` and `GET /hybridge/cooldowns`: the planner's dry run and the
    cooldowns it reads."""

    @property
    def settings(self) -> Settings: ...

    async def explain(self, request: ChatRequest, overrides: Mapping[str, Any] | None = None) -> Explanation: ...

    def cooldown_status(self) -> list[CooldownStatus]: ...


class BackendServices(Protocol):
    """`GET /hybridge/backends`: the pooled backends' state, read from memory."""

    @property
    def settings(self) -> Settings: ...

    def backends(self) -> list[BackendState]: ...


class LedgerReader(Protocol):
    """The stats endpoints: the ledger (None while it is off), for its read side."""

    @property
    def ledger(self) -> Ledger | None: ...
