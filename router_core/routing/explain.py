"""Why a request would go where it goes: the plan and everything behind it, as plain data.

Used by `hybridge explain` and `POST /hybridge/explain`; nothing is sent anywhere. The
plan comes from Runtime.plan(dry_run=True), the same path the router runs requests on.
"""

from __future__ import annotations

from typing import Any

from router_core.errors import HybridgeError
from router_core.routing.plan import RoutePlan
from router_core.routing.planner import plan_request
from router_core.routing.rules import rules_for
from router_core.routing.state import RoutingState
from router_core.routing.tokens import estimate_prompt_tokens
from router_core.settings import Settings
from router_core.types import ChatRequest

Explanation = dict[str, Any]


def explain(
    request: ChatRequest,
    settings: Settings,
    state: RoutingState,
    outcome: RoutePlan | HybridgeError | None = None,
) -> Explanation:
    """The plan for `request` (or the error it would get), with tags, matches and sizes.

    `outcome`: the plan (or error) Runtime.plan(dry_run=True) gave for this state; None
    plans here with the same `decide` (no I/O, no clocks).
    """
    rules = rules_for(settings)
    prompt = estimate_prompt_tokens(request.messages, request.tools)
    output = settings.context.output_room(request.max_tokens)
    sizes = {
        "prompt_tokens": prompt,
        "output_tokens": output,
        "local_context_tokens": state.local_context_limit or rules.local_context_tokens,
    }
    context = {
        "privacy": state.privacy,
        "privacy_escalation": state.privacy_escalation,
        "budget_exhausted": state.budget_exhausted,
        "budget_action": state.budget_action,
        "cooling": sorted(state.cooling),
        "keyless": sorted(state.keyless),
        "session": request.session_id,
        "session_writer": state.recent_writer.get(request.session_id or "", None),
    }
    if outcome is None:
        try:
            outcome = plan_request(request, settings, state)
        except HybridgeError as refused:
            outcome = refused
    if isinstance(outcome, HybridgeError):
        return {
            "model_asked": request.model,
            "error": {"message": outcome.message, "kind": outcome.kind, "status": outcome.status},
            "tags": sorted(request.tags),
            **sizes,
            "state": context,
        }
    plan = outcome
    first = plan.candidates[0]
    return {
        "model_asked": request.model,
        "route": first.route,
        "model": first.id,
        "rule": plan.rule,
        "reason": first.reason,
        "candidates": [{"model": c.id, "route": c.route, "reason": c.reason} for c in plan.candidates],
        "tags": sorted(plan.tags),
        "tag_sources": dict(plan.tag_sources),
        "small_task": plan.small_task,
        "conventions": [{"glob": m.glob, "tag": m.tag, "path": m.path, "where": m.where} for m in plan.matches],
        "markers_stripped": list(plan.markers),
        "kept_local": plan.kept_local,
        "budget_kept_local": plan.budget_kept_local,
        "key_kept_local": plan.key_kept_local,
        **sizes,
        "state": context,
    }


def render_text(data: Explanation) -> str:
    """The explanation for a terminal."""
    lines = [f"model asked  {data['model_asked']}"]
    if "error" in data:
        err = data["error"]
        lines.append(f"outcome      refused with HTTP {err['status']} ({err['kind']}): {err['message']}")
    else:
        lines += [
            f"route        {data['route']} -> {data['model']}",
            f"rule         {data['rule']}",
            f"reason       {data['reason']}",
        ]
        if data["small_task"]:
            lines.append(f"small task   {data['small_task']} (small-model work stays local)")
        if data["kept_local"]:
            lines.append("privacy      flagged work kept local (x-hybridge-privacy: kept-local)")
        if data["budget_kept_local"]:
            lines.append("budget       cloud budget spent: flagged work kept local")
        if data.get("key_kept_local"):
            lines.append(f"keys         {data['key_kept_local']} has no API key: the work was kept local")
    sources = data.get("tag_sources", {})
    for i, tag in enumerate(data["tags"]):
        label = "tags" if i == 0 else ""
        source = f"  ({sources[tag]})" if tag in sources else ""
        lines.append(f"{label:12} {tag}{source}")
    for i, match in enumerate(data.get("conventions", [])):
        label = "conventions" if i == 0 else ""
        where = f" (in the {match['where']})" if match.get("where") else ""
        lines.append(f"{label:12} {match['glob']} -> {match['tag']}: {match['path']}{where}")
    if data.get("markers_stripped"):
        lines.append(f"markers      {' '.join(data['markers_stripped'])} (stripped before forwarding)")
    lines.append(
        f"size         ~{data['prompt_tokens']:,} prompt + {data['output_tokens']:,} output tokens"
        f" (local context {data['local_context_tokens']:,})"
    )
    state = data["state"]
    flags = [
        f"privacy on ({state['privacy_escalation']})" if state["privacy"] else "privacy off",
        f"budget spent ({state['budget_action']})" if state["budget_exhausted"] else "budget ok",
        f"cooling: {', '.join(state['cooling'])}" if state["cooling"] else "nothing cooling down",
    ]
    lines.append(f"state        {'; '.join(flags)}")
    for i, cand in enumerate(data.get("candidates", []), 1):
        label = "plan" if i == 1 else ""
        lines.append(f"{label:12} {i}. {cand['route']:5} {cand['model']}  - {cand['reason']}")
    for pool in data.get("backends", []):
        lines.append(f"{'pool':12} {pool['pool']} serves {pool['candidate']}; its backends, as chosen now:")
        for i, backend in enumerate(pool["order"], 1):
            lines.append(f"{'':12}   {i}. {backend['backend']}  - {backend['why']}")
        for skipped in pool["skipped"]:
            lines.append(f"{'':12}   skipped {skipped['backend']}  - {skipped['why']}")
    return "\n".join(lines) + "\n"
