"""Fit verdicts: does a model run fully on the GPU, partly offloaded, on the CPU, or not at all,
and how much context fits in memory beside its weights (pure functions, no I/O).

The weights take about the model file's size; the KV cache takes `kv_bytes_per_token` per
token of context; a reserve stays free for the compute graph and everything else on the
machine. Memory a loaded model holds now counts as free for that model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from router_core.inventory.hardware.info import HardwareInfo
from router_core.inventory.ollama_inventory import LoadedModel, OllamaModel, OllamaStatus

Verdict = Literal["gpu", "partial", "cpu", "too_big", "cloud"]
VERDICT_TEXT: dict[Verdict, str] = {
    "gpu": "fully on GPU",
    "partial": "partly offloaded to CPU",
    "cpu": "CPU only",
    "too_big": "too big",
    "cloud": "cloud (runs on Ollama's servers)",
}


@dataclass(frozen=True, slots=True)
class FitBudget:
    vram_reserve_bytes: int
    ram_reserve_bytes: int
    min_context: int  # the least context any request gets (settings.context.minimum)
    step: int  # contexts are whole multiples of this (settings.context.step)
    # The most context any model is given (settings.context.max_context_tokens): the figure
    # doctor shows, client configs get, and the Ollama provider sends (planned_context).
    max_context: int | None = None


@dataclass(frozen=True, slots=True)
class ModelFit:
    model: str
    verdict: Verdict
    # Largest context that fits beside the weights (within the model's maximum); None: no
    # limit known (a cloud model, or no KV-cache size in the model's details).
    max_context: int | None
    weights_bytes: int
    kv_bytes_per_token: int | None
    note: str = ""

    @property
    def runs_locally(self) -> bool:
        return self.verdict in ("gpu", "partial", "cpu")


@dataclass(frozen=True, slots=True)
class _Room:
    gpu: int  # bytes the GPU can give this model
    total: int  # bytes GPU and RAM together can give it


def _room(hardware: HardwareInfo, loaded: LoadedModel | None, budget: FitBudget) -> _Room:
    held_vram = loaded.vram_bytes if loaded else 0
    held_ram = (loaded.size_bytes - loaded.vram_bytes) if loaded else 0
    ram = hardware.ram_available_bytes + max(held_ram, 0) - budget.ram_reserve_bytes
    if not hardware.has_gpu:
        return _Room(gpu=0, total=max(ram, 0))
    if hardware.unified_memory:
        # One pool: the GPU's share of it, or what is free now if that is less.
        gpu = min(hardware.vram_total_bytes, hardware.ram_available_bytes + held_vram) - budget.vram_reserve_bytes
        return _Room(gpu=max(gpu, 0), total=max(ram + held_vram, 0))
    gpu = hardware.vram_free_bytes + held_vram - budget.vram_reserve_bytes
    return _Room(gpu=max(gpu, 0), total=max(gpu, 0) + max(ram, 0))


def _stable_room(hardware: HardwareInfo, budget: FitBudget) -> _Room:
    """Room from total memory minus the reserves: the same figure every time it is read.

    The context a model is given must not drift with what happens to be free this minute
    (free RAM moved it 30,720 → 24,576 within minutes, and each change reloads the model).
    """
    ram = max(hardware.ram_total_bytes - budget.ram_reserve_bytes, 0)
    if not hardware.has_gpu:
        return _Room(gpu=0, total=ram)
    if hardware.unified_memory:
        gpu = max(min(hardware.vram_total_bytes, hardware.ram_total_bytes) - budget.vram_reserve_bytes, 0)
        return _Room(gpu=gpu, total=max(gpu, ram))
    gpu = max(hardware.vram_total_bytes - budget.vram_reserve_bytes, 0)
    return _Room(gpu=gpu, total=gpu + ram)


def _context_in(room: int, weights: int, kv: int, cap: int | None, step: int) -> int:
    tokens = max(room - weights, 0) // kv
    if tokens >= step:
        tokens -= tokens % step
    return min(tokens, cap) if cap else tokens


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def fit_model(
    model: OllamaModel, hardware: HardwareInfo, budget: FitBudget, loaded: LoadedModel | None = None
) -> ModelFit:
    weights = model.size_bytes
    kv = model.kv_bytes_per_token
    if model.cloud:
        return ModelFit(model.name, "cloud", None, weights, kv, "not local: prompts leave this machine")
    room = _room(hardware, loaded, budget)
    cap = model.max_context
    least = min(budget.min_context, cap) if cap else budget.min_context
    need = weights + (kv or 0) * least
    where: Verdict = "partial" if hardware.has_gpu else "cpu"
    if hardware.has_gpu and need <= room.gpu:
        verdict: Verdict = "gpu"
        usable = room.gpu
    elif need <= room.total:
        verdict, usable = where, room.total
    else:
        return ModelFit(
            model.name, "too_big", 0, weights, kv, f"needs {_gib(need)}, {_gib(room.total)} free with GPU and RAM"
        )
    if kv is None:
        return ModelFit(model.name, verdict, None, weights, None, "context size unknown: no KV-cache figures")
    # The verdict says where it runs now; the context comes from total memory alone (stable):
    # GPU room when the model fits the card with nothing else on it, else GPU and RAM. So the
    # figure moves only when the machine's memory does, never with what is free this minute.
    stable = _stable_room(hardware, budget)
    usable = stable.gpu if hardware.has_gpu and need <= stable.gpu else stable.total
    limit = min(v for v in (cap, budget.max_context) if v) if (cap or budget.max_context) else None
    context = _context_in(usable, weights, kv, limit, budget.step)
    note = f"{_gib(weights)} weights + {_gib(kv * context)} KV cache in {_gib(usable)} (total less reserves)"
    return ModelFit(model.name, verdict, context, weights, kv, note)


def fit_all(status: OllamaStatus, hardware: HardwareInfo, budget: FitBudget) -> dict[str, ModelFit]:
    """A fit for every model the server lists."""
    return {m.name: fit_model(m, hardware, budget, status.loaded_model(m.name)) for m in status.models}
