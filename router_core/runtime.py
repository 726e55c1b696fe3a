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
from router_core.events import KeptLocal, RouterEvents
from router_core.executor import Executor
from router_core.inflight import InFlight
from router_core.inventory.backends import BackendPoller, address_of, backend_url
from router_core.inventory.machine import HardwareProbe, Inventory, InventorySnapshot
from router_core.inventory.shown_models import ShownModels
from router_core.keys import KeySource
from router_core.ledger.budget import BudgetState
from router_core.ledger.recorder import Ledger
from router_core.ledger.signals import LedgerSignals
from router_core.presets import preset_env
from router_core.privacy.egress import guarded
from router_core.privacy.ollama_models import OllamaModelFacts
from router_core.privacy.state import PrivacyState, PrivacyStatus
from router_core.providers.base import Provider
from router_core.providers.http import TransportFactory, default_transport
from router_core.providers.pool import BackendPools, BackendState
from router_core.providers.registry import build_providers
from router_core.records import Api, RequestRecord
from router_core.redact import redact
from router_core.routing.cooldowns import Cooldowns, CooldownStatus
from router_core.routing.decide import decide
from router_core.routing.explain import Explanation, explain
from router_core.routing.plan import Candidate, RoutePlan
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
        ledger_signals: LedgerSignals | None = None,
        hardware_probe: HardwareProbe | None = None,
    ) -> None:
        self.settings = settings
        self.events = events or RouterEvents()
        # What the ledger publishes (rows, live figures, budget alerts), once it is opened.
        self.ledger_signals = ledger_signals or LedgerSignals()
        # The live privacy switch. Every transport made from here on is wrapped in the egress
        # guard bound to it, so toggling needs no rebuild and nothing can bypass it.
        self.privacy = PrivacyState.from_settings(settings.privacy)
        self.privacy.changed.connect(self._privacy_changed)
        self.in_flight = InFlight()
        # The user's settings file, where live switches (privacy) are saved; None: the default.
        self.config_path: Path | None = None
        transport_factory = guarded(transport_factory, self.privacy)
        self.transport_factory = transport_factory
        # Each Ollama server's /api/show answers, read once for its provider and inventory alike.
        shown = {name: ShownModels() for name, conf in settings.providers.items() if conf.kind == "ollama"}
        self.providers: dict[str, Provider] = build_providers(settings, transport_factory, shown)
        routing = settings.routing
        cooldowns = Cooldowns(
            after_failures=routing.cooldown_after_failures,
            cooldown_s=routing.cooldown_s,
            max_cooldown_s=routing.max_cooldown_s,
        )
        # Backend pools (routing.pools): empty without them, and then nothing changes.
        self.pools = BackendPools(settings, self.privacy, cooldowns)
        self.executor = Executor(self.providers, cooldowns, max_retry_wait_s=routing.max_retry_wait_s, pools=self.pools)
        # The pooled backends' state, read in the background (RouterService runs the loop).
        self.backend_poller = BackendPoller(settings, transport_factory=transport_factory)
        self.backend_poller.updated.connect(self.pools.apply)
        # Every local engine's `host:port`, named in each ledger row it serves.
        self.backend_addresses = {
            name: address_of(backend_url(name, conf)) for name, conf in settings.providers.items() if conf.is_local
        }
        # Each cloud provider's key as routing sees it: work escalated to one with no key stays local.
        self.key_sources = {
            name: KeySource(name, conf.api_key, preset_env(conf.preset))
            for name, conf in settings.providers.items()
            if not conf.is_local
        }
        # Who wrote each session's code (review_strategy = "alternate").
        self.writers = SessionWriters(routing.write_tools)
        self.events.request_finished.connect(self._note_served)
        # The ledger (router_core/ledger/): opened by the service with `open_ledger()`.
        self.ledger: Ledger | None = None
        # What this machine and its Ollama servers can hold; sizes every local num_ctx.
        self.inventory = Inventory(
            settings, transport_factory=transport_factory, hardware_probe=hardware_probe, shown=shown
        )
        self.inventory.updated.connect(self._apply_inventory)
        self._switch_reads: set[asyncio.Task[None]] = set()
        # What Ollama says of each model name: cloud (remote) or here; asked before first use.
        self.ollama_facts = OllamaModelFacts(
            {n: ollama_base_url(c.base_url) for n, c in settings.providers.items() if c.kind == "ollama"},
            transport_factory,
        )
        for provider in self.providers.values():
            provider.watch_truncation(self.events.truncation_warning.emit)

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
            fits = self.inventory.fit_contexts(name)
            provider.use_inventory(snapshot.ollama.get(name), fits)
            if name in snapshot.ollama:
                self.pools.note_fits(name, fits)

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
            cooling=self.pools.plan_cooling(self.executor.cooldowns.cooling()),
            local_context_limit=self.local_context_limit(),
            capabilities=self.inventory.capabilities(),
            recent_writer=self.writers.view() if request is None else self.writers.preview(request),
            ollama_remote=self.ollama_facts.view(),
            keyless=self.keyless(),
        )
        # `hybridge explain --privacy/--cooling/...` without a router: "as if" this state.
        return dataclasses.replace(state, **overrides) if overrides else state

    def keyless(self) -> dict[str, str]:
        """Cloud providers with no API key now -> the fix (none asked in privacy mode: no cloud runs)."""
        if not self.key_sources or self.privacy.enabled:
            return {}
        return {name: fix for name, source in self.key_sources.items() if (fix := source.missing()) is not None}

    def cooldown_status(self) -> list[CooldownStatus]:
        """Upstream models with recent failures, cooling ones first (for status views)."""
        return self.executor.cooldowns.status()

    def backends(self) -> list[BackendState]:
        """Every pooled backend's state now (doctor, /hybridge/backends, the dashboard)."""
        return self.pools.states()

    def _note_served(self, record: RequestRecord) -> None:
        if record.outcome == "ok" and record.provider:
            # A pooled backend is its pool's model: routing treats members as one (rules.same).
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
        data = explain(request, self.settings, self.routing_state(request, overrides), outcome)
        if isinstance(outcome, RoutePlan) and self.pools:
            pools = pool_choices(self.pools, outcome, request)
            if pools:
                data["backends"] = pools
        return data

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
            api=api,
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
            error=redact(exc.message),
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

    async def upstream_token_count(self, request: ChatRequest, candidate: Candidate) -> int | None:
        """The candidate's upstream's own prompt count; None where it has none (may raise
        UpstreamError)."""
        provider = self.providers.get(candidate.provider)
        return None if provider is None else await provider.count_tokens(request, candidate.model)

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
            self.ledger = Ledger(self.settings, self.events, signals=self.ledger_signals, **kwargs).start()
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
        await self.backend_poller.aclose()
        await self.ollama_facts.aclose()


def pool_choices(pools: BackendPools, plan: RoutePlan, request: ChatRequest) -> list[dict[str, Any]]:
    """For each pooled candidate: the backends in the order a request would try them now,
    and the ones skipped with why (privacy, down, not installed). Computed as the executor
    computes it, from the same memory; the executor chooses again when it runs."""
    out = []
    for candidate in plan.candidates:
        pool = pools.pool_of(candidate.id) if plan.rule != "named" else None
        if pool is None:
            continue
        ranking = pools.choose(pool, request, plan.prompt_tokens)
        out.append(
            {
                "candidate": candidate.id,
                "pool": pool,
                "order": [{"backend": r.view.id, "why": r.why} for r in ranking.order],
                "skipped": [{"backend": ref, "why": why} for ref, why in ranking.skipped],
            }
        )
    return out
