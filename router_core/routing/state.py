"""What the router knows right now that a routing decision depends on, besides settings.

`decide` stays free of I/O and clocks: everything that changes while the router runs (the
privacy switch, budget state, cooldowns, what the machine can hold, who wrote a session's
code) comes in through one frozen `RoutingState` built per request by `Runtime.routing_state()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from router_core.types import EscalationAction

_NO_WRITERS: Mapping[str, str] = MappingProxyType({})
_NO_FACTS: Mapping[str, bool] = MappingProxyType({})
_NO_KEYLESS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RoutingState:
    # Privacy mode: plans hold only local candidates; flagged work is kept local or refused.
    privacy: bool = False
    privacy_escalation: EscalationAction = "keep-local"
    # Cloud spend cap reached: cloud candidates drop out (keep-local) or flagged work is refused.
    budget_exhausted: bool = False
    budget_action: EscalationAction = "keep-local"
    # `<provider>/<model>` ids in cooldown after failures; they go to the back of a plan.
    cooling: frozenset[str] = frozenset()
    # Tokens the local model can hold on this machine now (None: unknown, use settings).
    local_context_limit: int | None = None
    # Session id -> `<provider>/<model>` that served the session's last code-writing turn.
    recent_writer: Mapping[str, str] = field(default_factory=lambda: _NO_WRITERS, hash=False)
    # `<provider>/<model>` -> Ollama capabilities from /api/show (tools, vision, thinking...);
    # a model not listed is unknown and not filtered.
    capabilities: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    # `<provider>/<model:tag>` -> whether Ollama says it is a cloud model (privacy/ollama_models.py).
    ollama_remote: Mapping[str, bool] = field(default_factory=lambda: _NO_FACTS, hash=False)
    # Cloud providers with no API key now -> the command that gives them one. Work Hybridge
    # would escalate there on its own stays local; a request that asks for the cloud itself
    # (model `cloud`, `#cloud`, a named cloud model) still goes, and fails naming the fix.
    keyless: Mapping[str, str] = field(default_factory=lambda: _NO_KEYLESS, hash=False)
