"""`hybridge doctor`: what this machine can run, Ollama's state, fit verdicts, and advice.

Exits 0 unless something is broken: 1 when Hybridge cannot answer locally (Ollama down, the
configured local model missing). Warnings (no GPU, Ollama cloud on) alone leave it at 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from datetime import datetime
from typing import Any, TextIO

import orjson

from router_core import __version__
from router_core.commands.common import load_settings
from router_core.first_run import FirstRun, run_checks
from router_core.first_run import as_json as first_run_json
from router_core.first_run import render as render_first_run
from router_core.inventory.advice import Suggestion, suggest_models, warnings
from router_core.inventory.backends import BackendPoller
from router_core.inventory.context import usable_context
from router_core.inventory.fit import VERDICT_TEXT, ModelFit
from router_core.inventory.hardware.info import GIB, GpuInfo, HardwareInfo
from router_core.inventory.machine import Inventory, InventorySnapshot
from router_core.inventory.ollama_inventory import OllamaStatus
from router_core.privacy.ollama_cloud import CloudSwitch, describe_switch
from router_core.privacy.ollama_models import OllamaModelFacts
from router_core.privacy.state import PrivacyState
from router_core.providers.http import default_transport
from router_core.providers.pool import BackendPools, BackendState
from router_core.routing.cooldowns import Cooldowns
from router_core.settings import ContextSettings, Settings, ollama_base_url


def _gib(n: int | None) -> str:
    return f"{n / GIB:.1f} GiB" if n is not None else "?"


def _gpu_line(gpu: GpuInfo) -> str:
    parts = [f"#{gpu.index} {gpu.name}"]
    memory = "unified, GPU may use" if gpu.unified else "VRAM"
    parts.append(f"{memory} {_gib(gpu.total_bytes)}, {_gib(gpu.free_bytes)} free")
    if gpu.utilization_pct is not None:
        parts.append(f"{gpu.utilization_pct:.0f}% busy")
    if gpu.power_w is not None:
        parts.append(f"{gpu.power_w:.1f} W")
    parts.append(f"via {gpu.source}" + (f", driver {gpu.driver}" if gpu.driver else ""))
    return " · ".join(parts)


def render_hardware(hw: HardwareInfo, out: TextIO, no_gpu: str = "") -> None:
    """`no_gpu`: InventorySnapshot.no_gpu_text, which agrees with what Ollama reports."""
    print("Hardware", file=out)
    threads = f"{hw.cpu_cores or '?'} cores, {hw.cpu_threads or '?'} threads"
    print(f"  CPU  {hw.cpu_name} · {threads}", file=out)
    print(f"  RAM  {_gib(hw.ram_total_bytes)}, {_gib(hw.ram_available_bytes)} available", file=out)
    if not hw.gpus:
        print(f"  GPU  {no_gpu or f'none found ({hw.why_no_gpu()})'}", file=out)
    for gpu in hw.gpus:
        print(f"  GPU  {_gpu_line(gpu)}", file=out)


def _context_cell(fit: ModelFit | None, model_max: int | None, context: ContextSettings) -> str:
    """The usable context here (the one figure the Models tab and `hybridge setup` give too),
    then the model's own maximum."""
    if fit is None or not fit.runs_locally:
        return "-"
    usable = usable_context(context, model_max, fit)
    return (f"{usable:,}" if usable else "?") + (f" (model max {model_max:,})" if model_max else "")


def render_ollama(
    name: str, status: OllamaStatus, fits: dict[str, ModelFit], out: TextIO, context: ContextSettings | None = None
) -> None:
    print(f"\nOllama '{name}' at {status.base_url}", file=out)
    if not status.up:
        print(f"  DOWN: {status.problem}", file=out)
        return
    print(f"  version {status.version or '?'} · {len(status.models)} models, {len(status.loaded)} loaded", file=out)
    if not status.models:
        print("  no models installed (ollama pull NAME)", file=out)
        return
    rows = [("MODEL", "SIZE", "PARAMS", "QUANT", "FIT", "USABLE CONTEXT", "CAPABILITIES")]
    for m in status.models:
        fit = fits.get(m.name)
        rows.append(
            (
                m.name,
                "cloud" if m.cloud else _gib(m.size_bytes),
                m.parameter_size or "?",
                m.quantization or "?",
                VERDICT_TEXT[fit.verdict] if fit else "?",
                _context_cell(fit, m.max_context, context or ContextSettings()),
                ", ".join(c for c in m.capabilities if c != "completion") or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)
    for loaded in status.loaded:
        where = "all on GPU" if loaded.fully_on_gpu else f"{_gib(loaded.vram_bytes)} on GPU"
        held = f" · context {loaded.context_length:,}" if loaded.context_length else ""
        until = f" · until {_when(loaded.expires_at)}" if loaded.expires_at else ""
        print(f"  loaded: {loaded.name} · {_gib(loaded.size_bytes)}, {where}{held}{until}", file=out)


def _when(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return stamp


def render(
    snapshot: InventorySnapshot,
    found: list[str],
    suggestions: list[Suggestion],
    out: TextIO,
    context: ContextSettings | None = None,
) -> None:
    print(f"Hybridge doctor (hybridge {__version__})\n", file=out)
    render_hardware(snapshot.hardware, out, snapshot.no_gpu_text())
    for name, status in snapshot.ollama.items():
        render_ollama(name, status, snapshot.fits.get(name, {}), out, context)
    print("\nWarnings" if found else "\nNo warnings.", file=out)
    for line in found:
        print(f"  ! {line}", file=out)
    if suggestions:
        print("\nCoding models for this machine", file=out)
        for s in suggestions:
            mark = " (installed)" if s.installed else ""
            print(f"  ollama pull {s.model.pull}{mark} — {s.model.label}: {s.model.note}; {s.why}", file=out)


def as_json(snapshot: InventorySnapshot, found: list[str], suggestions: list[Suggestion]) -> dict[str, Any]:
    return {
        "version": __version__,
        "hardware": dataclasses.asdict(snapshot.hardware),
        "ollama": {name: dataclasses.asdict(status) for name, status in snapshot.ollama.items()},
        "fits": {name: {m: dataclasses.asdict(f) for m, f in fits.items()} for name, fits in snapshot.fits.items()},
        "warnings": found,
        "suggestions": [dataclasses.asdict(s) for s in suggestions],
    }


async def take_snapshot(settings: Settings) -> InventorySnapshot:
    inventory = Inventory(settings)
    try:
        return await inventory.refresh()
    finally:
        await inventory.aclose()


async def cloud_switches(settings: Settings) -> dict[str, CloudSwitch | None]:
    """Each Ollama's own cloud switch (`GET /api/status`; None where the version lacks it)."""
    facts = OllamaModelFacts(
        {n: ollama_base_url(c.base_url) for n, c in settings.providers.items() if c.kind == "ollama"},
        default_transport,
    )
    try:
        return {name: await facts.read_switch(name) for name in facts.servers}
    finally:
        await facts.aclose()


async def read_backends(settings: Settings) -> list[BackendState]:
    """Every pooled backend (routing.pools), read once now, as the router's background poll does."""
    if not settings.routing.pools:
        return []
    pools = BackendPools(settings, PrivacyState.from_settings(settings.privacy), Cooldowns())
    poller = BackendPoller(settings, transport_factory=default_transport)
    try:
        for status in await poller.poll():
            pools.apply(status)
    finally:
        await poller.aclose()
    return pools.states()


def _busy_text(state: BackendState) -> str:
    if state.running is None and state.waiting is None:
        return "busy: not reported by the engine"
    slots = f" on {state.slots} slot{'s' if state.slots != 1 else ''}" if state.slots else ""
    return f"{state.running or 0} running, {state.waiting or 0} waiting{slots}"


def render_backends(states: list[BackendState], out: TextIO) -> None:
    print("\nBackend pools", file=out)
    for state in states:
        where = f"{state.provider} ({state.engine}) at {state.address} · pool {', '.join(state.pools)}"
        if not state.up:
            print(f"  DOWN  {where}: {state.last_error or 'not answering'}", file=out)
            continue
        loaded = ", ".join(f"{m} (context {c:,})" if c else m for m, c in state.loaded) or "nothing"
        print(f"  up    {where}", file=out)
        print(f"        loaded: {loaded} · {_busy_text(state)}", file=out)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    snapshot = asyncio.run(take_snapshot(settings))
    backends = asyncio.run(read_backends(settings))
    switches = asyncio.run(cloud_switches(settings))
    found = warnings(snapshot, settings)
    installed = {m.name for status in snapshot.ollama.values() for m in status.models}
    suggestions = suggest_models(snapshot.hardware, installed)
    checks = run_checks(settings, hardware=snapshot.hardware)
    if args.json:
        body = {**as_json(snapshot, found, suggestions), "first_run": first_run_json(checks)}
        body["ollama_cloud"] = {n: dataclasses.asdict(sw) if sw else None for n, sw in switches.items()}
        body["backends"] = [dataclasses.asdict(b) for b in backends]
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        render(snapshot, found, suggestions, sys.stdout, settings.context)
        if backends:
            render_backends(backends, sys.stdout)
        for name, switch in switches.items():
            print(f"\nOllama '{name}' cloud: {describe_switch(switch)}")
        print("\n" + render_first_run(checks), file=sys.stdout)
    return 1 if broken(checks) else 0


def broken(checks: FirstRun) -> bool:
    """Broken: no local answer is possible (Ollama down, or the local model not installed)."""
    return any(checks.check(step).state == "todo" for step in ("running", "model"))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check the GPU, Ollama and which models fit",
        description="Check the GPU, Ollama, which models fit and the first-run steps. Exits 0 unless "
        "something is broken: 1 when no local answer is possible (Ollama down or the configured local "
        "model not installed); warnings alone exit 0.",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file")
    parser.set_defaults(func=run)
