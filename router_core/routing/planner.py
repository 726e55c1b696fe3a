"""The one planning function: what the router runs, `POST /hybridge/explain` and `hybridge
explain` show. Pure: the request, the settings and one RoutingState snapshot in, a plan out.

decide() chooses; Ollama's cloud models are then labelled `cloud`; privacy mode has the
last word. Runtime.plan builds the snapshot (and, before it, learns what unseen Ollama
model names are), so a dry run and a real run of the same request see the same inputs.
"""

from __future__ import annotations

from router_core.privacy.plans import label_ollama_cloud, restrict_plan
from router_core.routing.decide import decide
from router_core.routing.plan import RoutePlan
from router_core.routing.rules import rules_for
from router_core.routing.state import RoutingState
from router_core.settings import Settings
from router_core.types import ChatRequest


def finish_plan(decided: RoutePlan, settings: Settings, state: RoutingState) -> RoutePlan:
    """A decided plan with Ollama cloud labels and the privacy restriction applied."""
    return restrict_plan(label_ollama_cloud(decided, settings, state), settings, state)


def plan_request(request: ChatRequest, settings: Settings, state: RoutingState) -> RoutePlan:
    """The plan for `request`; raises the HybridgeError the client would get."""
    return finish_plan(decide(request, settings, state), settings, state)


def ollama_refs(plan: RoutePlan, settings: Settings) -> list[tuple[str, str]]:
    """Every (provider, model) the plan (or privacy's local fallback) could send to Ollama."""
    refs = [(c.provider, c.model) for c in plan.candidates]
    provider, _, model = settings.routing.local_model.partition("/")
    if model:
        refs.append((provider, model))
    if settings.routing.pools:
        # A pool member may be served by any member: each is asked about.
        members = rules_for(settings).pool_members
        refs += [(m.partition("/")[0], m.partition("/")[2]) for p, n in list(refs) for m in members.get(f"{p}/{n}", ())]
    return refs
