"""Ollama's cloud models labelled, and privacy mode applied to a RoutePlan (pure).

Routing already leaves cloud candidates out when privacy is on (RoutingState.privacy);
this also catches what routing cannot see as cloud, Ollama's cloud models behind a local
provider (named `-cloud`, or marked remote by Ollama under any name), which are labelled
route `cloud` here whether privacy is on or not, and stands as a backstop for any plan
that still holds a cloud candidate. In privacy mode an Ollama model nobody could ask about
is refused: Hybridge does not guess that it stays here.
"""

from __future__ import annotations

from dataclasses import replace

from router_core.errors import EscalationRefused, Forbidden
from router_core.privacy.ollama_cloud import is_cloud_model_name, model_key
from router_core.routing.plan import Candidate, RoutePlan
from router_core.routing.rules import rules_for
from router_core.routing.state import RoutingState
from router_core.settings import Settings

REFUSE_HINT = 'set privacy.escalation = "keep-local" to serve flagged work locally, or switch privacy mode off'
OLLAMA_CLOUD_REASON = "Ollama cloud model (runs on ollama.com)"


def ollama_fact(provider: str, model: str, settings: Settings, state: RoutingState) -> bool | None:
    """True: an Ollama cloud model; False: runs here; None: an Ollama model nobody could ask about.

    Not an Ollama provider: False. A pool member (routing.pools) stands for its pool, whose
    backends are chosen at run time: it runs here when any member does (the egress guard
    still refuses a cloud model on the way out), and is cloud only when every member is.
    """
    members = rules_for(settings).pool_members.get(f"{provider}/{model}") if settings.routing.pools else None
    if members:
        facts = [_member_fact(*ref.partition("/")[::2], settings, state) for ref in members]
        if False in facts:
            return False
        return True if all(facts) else None
    return _member_fact(provider, model, settings, state)


def _member_fact(provider: str, model: str, settings: Settings, state: RoutingState) -> bool | None:
    conf = settings.providers.get(provider)
    if conf is None or conf.kind != "ollama":
        return False
    if is_cloud_model_name(model):
        return True
    return state.ollama_remote.get(f"{provider}/{model_key(model)}")


def label_ollama_cloud(plan: RoutePlan, settings: Settings, state: RoutingState) -> RoutePlan:
    """Ollama cloud candidates get route `cloud` (headers, ledger, dashboard, stats)."""
    relabelled = []
    changed = False
    for c in plan.candidates:
        if c.route == "local" and ollama_fact(c.provider, c.model, settings, state):
            relabelled.append(replace(c, route="cloud", reason=f"{c.reason}; {OLLAMA_CLOUD_REASON}"))
            changed = True
        else:
            relabelled.append(c)
    return replace(plan, candidates=tuple(relabelled)) if changed else plan


def stays_here(candidate: Candidate, settings: Settings, state: RoutingState) -> bool:
    return candidate.route == "local" and ollama_fact(candidate.provider, candidate.model, settings, state) is False


def local_default(settings: Settings, state: RoutingState) -> Candidate | None:
    provider, _, model = settings.routing.local_model.partition("/")
    conf = settings.providers.get(provider)
    if not model or conf is None or not conf.is_local:
        return None
    candidate = Candidate(provider=provider, model=model, route="local", reason="privacy mode: kept local")
    return candidate if stays_here(candidate, settings, state) else None


def restrict_plan(plan: RoutePlan, settings: Settings, state: RoutingState) -> RoutePlan:
    """`plan` without anything that would leave the machine; raises Forbidden when nothing
    local is left and the user chose to refuse (or asked for an Ollama cloud model)."""
    if not state.privacy:
        return plan
    kept = tuple(c for c in plan.candidates if stays_here(c, settings, state))
    if len(kept) == len(plan.candidates):
        return plan
    if kept:
        return replace(plan, candidates=kept)
    first = plan.candidates[0] if plan.candidates else None
    if first is not None:
        fact = ollama_fact(first.provider, first.model, settings, state)
        if fact is None:
            raise Forbidden(
                f"privacy mode is on: Ollama could not be asked whether `{first.id}` is a cloud model, "
                "so it is refused rather than guessed"
            )
        if fact:
            raise Forbidden(f"privacy mode is on: `{first.id}` is an Ollama cloud model (it runs on ollama.com)")
    if state.privacy_escalation == "refuse":
        raise EscalationRefused(
            f"privacy mode is on and this request would go to the cloud; {REFUSE_HINT}", cause="privacy"
        )
    fallback = local_default(settings, state)
    if fallback is None:
        raise Forbidden("privacy mode is on and no local model is configured (routing.local_model)")
    return kept_local_plan(plan, fallback)


def kept_local_plan(plan: RoutePlan, candidate: Candidate) -> RoutePlan:
    reason = f"kept local (privacy mode): {plan.reason}" if plan.reason else candidate.reason
    return replace(plan, candidates=(replace(candidate, reason=reason),), kept_local=True)
