"""What `hybridge privacy status` and the tray show: the switch, and whether Ollama leaks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from router_core.errors import UpstreamError
from router_core.privacy.ollama_cloud import OllamaCloudCheck, describe_switch, server_json_disables_cloud
from router_core.providers.base import Provider

if TYPE_CHECKING:
    from router_core.runtime import Runtime

OLLAMA_CHECK_TIMEOUT_S = 3.0


async def ollama_cloud_check(provider: Provider) -> OllamaCloudCheck | None:
    """Cloud models the running Ollama offers; None when it cannot be asked (down, slow)."""
    try:
        models = await asyncio.wait_for(provider.list_models(), OLLAMA_CHECK_TIMEOUT_S)
    except (UpstreamError, TimeoutError):
        return None
    return OllamaCloudCheck(tuple(m.name for m in models if m.remote), server_json_disables_cloud())


async def privacy_report(runtime: Runtime) -> dict[str, Any]:
    status = runtime.privacy.status()
    # The Ollama servers: their model lists say which models are Ollama's cloud.
    ollamas = [runtime.providers[name] for name in runtime.ollama_facts.servers if name in runtime.providers]
    checks = await asyncio.gather(*(ollama_cloud_check(p) for p in ollamas))
    switches = await asyncio.gather(*(runtime.ollama_facts.read_switch(p.name) for p in ollamas))
    ollama: dict[str, Any] = {}
    warnings = []
    for provider, check, switch in zip(ollamas, checks, switches, strict=True):
        if check is None:
            ollama[provider.name] = {"reachable": False, "cloud_models": [], "warning": None, "cloud_switch": None}
            continue
        runtime.privacy.note_remote_models(check.cloud_models)
        ollama[provider.name] = {
            "reachable": True,
            "cloud_models": list(check.cloud_models),
            "warning": check.warning,
            # Ollama's own switch (GET /api/status, recent versions); None where not reported.
            "cloud_disabled": switch.disabled if switch else None,
            "cloud_switch": describe_switch(switch),
        }
        if check.warning:
            warnings.append(f"{provider.name}: {check.warning}")
    return {
        "enabled": status.enabled,
        "escalation": status.escalation,
        "trusted_hosts": list(status.trusted_hosts),
        "cloud_requests_in_flight": runtime.in_flight.count("cloud"),
        "ollama": ollama,
        "warnings": warnings,
    }
