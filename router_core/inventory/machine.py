"""The inventory: this machine's hardware and every Ollama server's models, with fit verdicts.

Refreshed on a timer (`run_periodic`) and on demand (`refresh`); each refresh publishes an
`InventorySnapshot` through `updated`, from which the runtime sizes local contexts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from router_core.inventory.context import usable_context
from router_core.inventory.fit import FitBudget, ModelFit, fit_all
from router_core.inventory.hardware import HardwareInfo, probe_hardware
from router_core.inventory.ollama_inventory import OllamaInventory, OllamaStatus
from router_core.inventory.shown_models import ShownModels
from router_core.providers.http import TransportFactory, default_transport
from router_core.settings import ContextSettings, Settings, ollama_base_url
from router_core.signals import Signal

log = logging.getLogger(__name__)
MIB = 1024 * 1024
HardwareProbe = Callable[[], HardwareInfo]


@dataclass(frozen=True, slots=True)
class InventorySnapshot:
    hardware: HardwareInfo
    ollama: dict[str, OllamaStatus]  # provider name -> what its server has
    fits: dict[str, dict[str, ModelFit]]  # provider name -> model -> fit
    taken_at: float = field(default_factory=time.time)

    def fit(self, provider: str, model: str) -> ModelFit | None:
        status = self.ollama.get(provider)
        found = status.model(model) if status else None
        return self.fits.get(provider, {}).get(found.name) if found else None

    def usable_context(self, provider: str, model: str, context: ContextSettings | None = None) -> int | None:
        """Tokens the model can hold here (inventory/context.py usable_context; None: unknown).
        `context`: the [context] settings in force (default: the shipped ones)."""
        status = self.ollama.get(provider)
        found = status.model(model) if status else None
        if found is None:
            return None
        return usable_context(context or ContextSettings(), found.max_context, self.fit(provider, model))

    @property
    def ollama_gpu_bytes(self) -> int:
        """Bytes of loaded models Ollama reports on a GPU now (`/api/ps` size_vram), all servers."""
        return sum(m.vram_bytes for status in self.ollama.values() if status.up for m in status.loaded)

    def no_gpu_text(self) -> str:
        """What to say where the probes found no GPU, agreeing with what Ollama reports: a GPU
        Ollama uses (its own drivers, or another machine) is never called "no GPU"."""
        why = self.hardware.why_no_gpu()
        if self.ollama_gpu_bytes:
            gib = f"{self.ollama_gpu_bytes / 2**30:.1f} GiB"
            return (
                f"none that Hybridge can read ({why}), but Ollama reports {gib} of models on a GPU; "
                "fit verdicts here assume the CPU"
            )
        return f"none found ({why}): local models run on the CPU"


def fit_budget(settings: Settings) -> FitBudget:
    return FitBudget(
        vram_reserve_bytes=settings.inventory.vram_reserve_mb * MIB,
        ram_reserve_bytes=settings.inventory.ram_reserve_mb * MIB,
        min_context=settings.context.minimum,
        step=settings.context.step,
        max_context=settings.context.max_context_tokens,
    )


class Inventory:
    def __init__(
        self,
        settings: Settings,
        *,
        transport_factory: TransportFactory = default_transport,
        hardware_probe: HardwareProbe | None = None,
        shown: Mapping[str, ShownModels] | None = None,
    ) -> None:
        """`shown`: per Ollama provider, the /api/show answers its reader shares with the provider."""
        self.settings = settings
        conf = settings.inventory
        self._probe = hardware_probe or (lambda: probe_hardware(conf.probe_timeout_s))
        self._servers = {
            name: OllamaInventory(
                ollama_base_url(p.base_url),
                transport=transport_factory(),
                timeout_s=conf.ollama_timeout_s,
                kv_cache_type=conf.kv_cache_type,
                shown=(shown or {}).get(name),
            )
            for name, p in settings.providers.items()
            if p.kind == "ollama"
        }
        self.snapshot: InventorySnapshot | None = None
        self.updated: Signal[InventorySnapshot] = Signal()
        self._lock = asyncio.Lock()

    async def refresh(self) -> InventorySnapshot:
        """Read hardware and every Ollama server now (concurrent refreshes share one read)."""
        async with self._lock:
            hardware_task = asyncio.create_task(asyncio.to_thread(self._probe))
            names = list(self._servers)
            statuses = await asyncio.gather(*(self._servers[n].refresh() for n in names))
            hardware = await hardware_task
            budget = fit_budget(self.settings)
            ollama = dict(zip(names, statuses, strict=True))
            fits = {name: fit_all(status, hardware, budget) for name, status in ollama.items()}
            self.snapshot = InventorySnapshot(hardware, ollama, fits)
        self.updated.emit(self.snapshot)
        return self.snapshot

    def fit_contexts(self, provider: str) -> dict[str, int]:
        """model -> largest context that fits, for OllamaProvider.fit_context."""
        if self.snapshot is None:
            return {}
        fits = self.snapshot.fits.get(provider, {})
        return {name: f.max_context for name, f in fits.items() if f.runs_locally and f.max_context}

    def capabilities(self) -> dict[str, tuple[str, ...]]:
        """`<provider>/<model>` -> capabilities from /api/show, for the models shown so far."""
        if self.snapshot is None:
            return {}
        out: dict[str, tuple[str, ...]] = {}
        for provider, status in self.snapshot.ollama.items():
            for m in status.models:
                if m.details is not None:
                    out[f"{provider}/{m.name}"] = m.capabilities
                    if m.name.endswith(":latest"):
                        out[f"{provider}/{m.name.removesuffix(':latest')}"] = m.capabilities
        return out

    def local_context_limit(self) -> int | None:
        """Usable context of routing.local_model here now; None until known."""
        ref = self.settings.routing.local_model
        if self.snapshot is None or not ref:
            return None
        provider, _, model = ref.partition("/")
        return self.snapshot.usable_context(provider, model, self.settings.context)

    async def run_periodic(self) -> None:
        """Refresh every `inventory.refresh_s` until cancelled; a failed round is logged, not fatal."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("inventory refresh failed")
            await asyncio.sleep(self.settings.inventory.refresh_s)

    async def aclose(self) -> None:
        for server in self._servers.values():
            await server.aclose()
