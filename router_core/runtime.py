"""Everything one running router holds: settings, providers, executor, events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from router_core.errors import EscalationRefused, Forbidden, HybridgeError, ModelNotFound, NoRoute, UpstreamError
from router_core.events import KeptLocal, RequestRecord, RouterEvents
from router_core.executor import Executor
from router_core.inflight import InFlight
from router_core.inventory.machine import HardwareProbe, Inventory, InventorySnapshot
from router_core.ledger.budget import BudgetState
from router_core.ledger.recorder import Ledger
from router_core.privacy.egress import guarded
from router_core.privacy.ollama_models import OllamaModelFacts
from router_core.privacy.state import PrivacyState, PrivacyStatus
from router_core.providers.base import Provider
from router_core.providers.http import TransportFactory, default_transport
from router_core.providers.ollama import OllamaProvider
from router_core.providers.registry import build_providers
from router_core.routing.cooldowns import Cooldowns, CooldownStatus
from router_core.routing.decide import decide
from router_core.routing.explain import Explanation, explain
from router_core.routing.plan import RoutePlan
from router_core.routing.planner import finish_plan, ollama_refs
from router_core.routing.state import RoutingState
from router_core.routing.writers import SessionWriters
from router_core.settings import Settings, ollama_base_url
from router_core.types import VIRTUAL_MODELS, ChatRequest, ModelInfo, Usage

log = logging.getLogger(__name__)
PRIVACY_STOP_REASON = "privacy mode was switched on; the cloud answer was stopped"


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        transport_factory: TransportFactory = default_transport,
        events: RouterEvents | None = None,
        hardware_probe: HardwareProbe | None = None,
    ) -> None:
        self.settings = settings
        self.events = events or RouterEvents()
        # The live privacy switch. Every transport made from here on is wrapped in the egress
        # guard bound to it, so toggling needs no rebuild and nothing can bypass it.
        self.privacy = PrivacyState.from_settings(settings.privacy)
        self.privacy.changed.connect(self._privacy_changed)
        self.in_flight = InFlight()
        # The user's settings file, where live switches (privacy) are saved; None: the default.
        self.config_path: Path | None = None
        transport_factory = guarded(transport_factory, self.privacy)
        self.transport_factory = transport_factory
        self.providers: dict[str, Provider] = build_providers(settings, transport_factory)
        routing = settings.routing
        cooldowns = Cooldowns(
            after_failures=routing.cooldown_after_failures,
            cooldown_s=routing.cooldown_s,
            max_cooldown_s=routing.max_cooldown_s,
        )
        self.executor = Executor(self.providers, cooldowns, max_retry_wait_s=routing.max_retry_wait_s)
        # Who wrote each session's code (review_strategy = "alternate").
        self.writers = SessionWriters(routing.write_tools)
        self.events.request_finished.connect(self._note_served)
        # The ledger (router_core/ledger/): opened by the service with `open_ledger()`.
        self.ledger: Ledger | None = None
        # What this machine and its Ollama servers can hold; sizes every local num_ctx.
        self.inventory = Inventory(settings, transport_factory=transport_factory, hardware_probe=hardware_probe)
        self.inventory.updated.connect(self._apply_inventory)
        self._switch_reads: set[asyncio.Task[None]] = set()
        # What Ollama says of each model name: cloud (remote) or here; asked before first use.
        self.ollama_facts = OllamaModelFacts(
            {n: ollama_base_url(c.base_url) for n, c in settings.providers.items() if c.kind == "ollama"},
            transport_factory,
        )
        for provider in self.providers.values():
            if isinstance(provider, OllamaProvider):
                provider.on_truncation = self.events.truncation_warning.emit

    def _apply_inventory(self, snapshot: InventorySnapshot) -> None:
        with contextlib.suppress(RuntimeError):  # no loop: nothing to schedule (a sync caller)
            # Ollama's own cloud switch (GET /api/status), read again with every inventory round.
            self._switch_reads.add(task := asyncio.get_running_loop().create_task(self._read_switches()))
            task.add_done_callback(self._switch_reads.discard)
        for name, status in snapshot.ollama.items():
            if status.up:
                self.ollama_facts.note(name, ((m.name, m.cloud) for m in status.models))
        self.privacy.note_remote_models(self.ollama_facts.remote_names())
        if self.ledger is not None:
            self.ledger.learn_gpus([gpu.name for gpu in snapshot.hardware.gpus])
        for name, provider in self.providers.items():
            if isinstance(provider, OllamaProvider):
                provider.use_inventory(snapshot.ollama.get(name), self.inventory.fit_contexts(name))

    async def _read_switches(self) -> None:
        await asyncio.gather(*(self.ollama_facts.read_switch(name) for name in self.ollama_facts.servers))

    async def refresh_inventory(self) -> InventorySnapshot:
        """Re-read hardware and Ollama now (the service also does this on a timer)."""
        return await self.inventory.refresh()

    def local_context_limit(self) -> int | None:
        """Tokens routing.local_model can hold on this machine now (for RoutingState); None: unknown."""
        return self.inventory.local_context_limit()

    def routing_state(
        self, request: ChatRequest | None = None, overrides: Mapping[str, Any] | None = None
    ) -> RoutingState:
        """What routing needs to know now besides settings (privacy, budget, cooldowns...).

        With `request`: the session writers as that request will see them (its own
        writer note included, made or not), so a dry run and a real run see the same.
        """
        budget = self.budget_state()
        state = RoutingState(
            privacy=self.privacy.enabled,
            privacy_escalation=self.privacy.escalation,
            budget_exhausted=budget.exhausted,
            budget_action=budget.action,
            cooling=self.executor.cooldowns.cooling(),
            local_context_limit=self.local_context_limit(),
            capabilities=self.inventory.capabilities(),
            recent_writer=self.writers.view() if request is None else self.writers.preview(request),
            ollama_remote=self.ollama_facts.view(),
        )
        # `hybridge explain --privacy/--cooling/...` without a router: "as if" this state.
        return dataclasses.replace(state, **overrides) if overrides else state

    def cooldown_status(self) -> list[CooldownStatus]:
        """Upstream models with recent failures, cooling ones first (for status views)."""
        return self.executor.cooldowns.status()

    def _note_served(self, record: RequestRecord) -> None:
        if record.outcome == "ok" and record.provider:
            self.writers.served(record.session, f"{record.provider}/{record.model}")

    async def plan(
        self, request: ChatRequest, *, dry_run: bool = False, overrides: Mapping[str, Any] | None = None
    ) -> RoutePlan:
        """The plan for `request` (raises the error the client gets): the one planning path.

        Ollama model names never seen are asked about first (`/api/show`), so an Ollama
        cloud model under any name is known before its first request. `dry_run` changes
        nothing (no writer note, no events); asking Ollama is only learning a fact.
        """
        if dry_run:
            state = self.routing_state(request, overrides)
        else:
            # The note first, then its view: what preview() would show, without walking twice.
            self.writers.note_request(request)
            state = self.routing_state(None, overrides)
        # decide() does not read the Ollama facts, so its errors stand whatever they say.
        decided = decide(request, self.settings, state)
        if self.ollama_facts.servers:
            unknown = self.ollama_facts.unknown(ollama_refs(decided, self.settings))
            if unknown:
                await self.ollama_facts.learn(unknown)
                self.privacy.note_remote_models(self.ollama_facts.remote_names())
        plan = finish_plan(decided, self.settings, state)
        if plan.prompt_tokens is not None:
            request.prompt_tokens = plan.prompt_tokens  # computed once; the provider reads it
        if not dry_run and plan.kept_local:
            self.events.privacy_kept_local.emit(KeptLocal(request.model, plan.reason, plan.tags))
        return plan

    async def explain(self, request: ChatRequest, overrides: Mapping[str, Any] | None = None) -> Explanation:
        """`request`'s plan (or error) from the live path in dry-run mode, with its reasons."""
        try:
            outcome: RoutePlan | HybridgeError = await self.plan(request, dry_run=True, overrides=overrides)
        except HybridgeError as exc:
            outcome = exc
        return explain(request, self.settings, self.routing_state(request, overrides), outcome)

    def record_refusal(
        self,
        request_id: str,
        started_at: float,
        exc: HybridgeError,
        *,
        api: str,
        request: ChatRequest | None,
        requested_model: str | None = None,
        duration_s: float = 0.0,
    ) -> None:
        """A request answered with an error before any model ran, into the ledger.

        Refused by policy (privacy, budget, unknown model, no route): outcome `refused`;
        a request that could not be read: `error`. The reason is the message the client got.
        """
        refused = isinstance(exc, Forbidden | ModelNotFound | NoRoute)
        kind = exc.kind
        if isinstance(exc, EscalationRefused):
            kind = f"{exc.cause}_refused"  # privacy_refused | budget_refused
        elif isinstance(exc, Forbidden) and exc.message.startswith("privacy mode"):
            kind = "privacy_refused"
        record = RequestRecord(
            request_id=request_id,
            started_at=started_at,
            client=request.user_agent if request else "",
            session=request.session_id if request else None,
            requested_model=requested_model or (request.model if request else ""),
            api="anthropic" if api == "anthropic" else "openai",
            route="",
            reason=exc.message,
            provider="",
            model="",
            streamed=bool(request and request.stream),
            outcome="refused" if refused and request is not None else "error",
            usage=Usage(),
            ttft_s=None,
            duration_s=duration_s,
            error_kind=kind,
            tags=request.tags if request else frozenset(),
        )
        self.events.request_finished.emit(record)

    def set_privacy(self, enabled: bool) -> PrivacyStatus:
        """Switch privacy mode live (persisting it is privacy/switch.py's job)."""
        return self.privacy.update(enabled=enabled)

    def _privacy_changed(self, status: PrivacyStatus) -> None:
        if status.enabled:
            stopped = self.in_flight.stop_route("cloud", PRIVACY_STOP_REASON)
            if stopped:
                log.warning("privacy mode on: stopped %d cloud request(s) in flight", stopped)
        self.events.privacy_changed.emit(status)

    async def list_models(self) -> list[str]:
        """Virtual models first, then every concrete model each provider reports now."""

        async def one(provider: Provider) -> list[ModelInfo]:
            try:
                return await provider.list_models()
            except UpstreamError as exc:
                log.warning("cannot list models of %s: %s", provider.name, exc.message)
                return []

        # In privacy mode cloud providers are not even asked (the egress guard would refuse).
        asked = [p for p in self.providers.values() if p.is_local or not self.privacy.enabled]
        listed = await asyncio.gather(*(one(p) for p in asked))
        models = [m for found in listed for m in found]
        for provider in asked:
            if provider.name in self.ollama_facts.servers:
                mine = ((m.name, m.remote) for m in models if m.provider == provider.name)
                self.ollama_facts.note(provider.name, mine)
        self.privacy.note_remote_models(m.name for m in models if m.remote)
        if self.privacy.enabled:
            # Nothing that would leave the machine is offered (Ollama's cloud models included).
            models = [m for m in models if m.is_local and not m.remote]
        return [*VIRTUAL_MODELS, *(m.id for m in models)]

    def open_ledger(self, **kwargs: Any) -> Ledger:
        """Start recording every request (kwargs go to Ledger: path, power, clock)."""
        if self.ledger is None:
            self.ledger = Ledger(self.settings, self.events, **kwargs).start()
        return self.ledger

    def budget_state(self) -> BudgetState:
        """Cloud budget now (for RoutingState.budget_exhausted / budget_action); no caps without a ledger."""
        if self.ledger is None:
            return BudgetState(action=self.settings.budget.action)
        return self.ledger.budget_state()

    async def aclose(self) -> None:
        if self.ledger is not None:
            # Writes what is still queued; a thread, so the loop keeps serving meanwhile.
            await asyncio.to_thread(self.ledger.close)
        for provider in self.providers.values():
            await provider.aclose()
        await self.inventory.aclose()
        await self.ollama_facts.aclose()
