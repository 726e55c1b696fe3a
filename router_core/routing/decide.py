"""Decide a RoutePlan for a request: no I/O and no clocks, so the same request, settings and
state give the same plan. Not pure in the strict sense: `classify` writes what it found onto
the request (its tags, small task, and the forwarded body without markers), which is why a
request is classified once per plan and classifying it again changes nothing.

The first candidate comes from the first rule that applies:

1. small-model work (title/summary/compaction, Claude Code's background model): local, even
   with `#cloud`; one that cannot fit locally goes to long_context_model (else cloud_model);
2. local: model `local` (small-model work too), or tag `local` (`#local`, header, body);
3. a concrete `<provider>/<model>`: that model, no fallbacks;
4. cloud: model `cloud`, or tag `cloud`;
5. a heavy tag -> heavy_model; 6. a UI tag -> ui_model;
7. `review` with review_strategy "alternate" -> a reviewer other than the session's writer;
8. long context: a request fits locally when prompt estimate + min(max_tokens,
   context.output_reserve) <= the usable local context; otherwise long_context_model;
9. the local default.

Then the fallback chain (local entries only for 1-2). A review is never served by the
model that wrote the code it reviews, whichever rule chose it (3 aside). State narrows the
plan last: privacy mode and a spent budget drop cloud candidates, work escalated to a
cloud provider with no API key stays local (unless the request asked for the cloud itself),
and models in cooldown move to the back. In "refuse" mode (privacy or budget) only flagged
work (a cloud model asked for, cloud/heavy/ui tags, reviews) is refused; an ordinary turn
that would escalate for its size alone is kept local.
"""

from __future__ import annotations

from dataclasses import dataclass

from router_core.errors import EscalationRefused, ModelNotFound, NoRoute
from router_core.routing.classify import Classification, classify, virtual_model
from router_core.routing.plan import Candidate, RoutePlan
from router_core.routing.rules import RoutingRules, rules_for
from router_core.routing.state import RoutingState
from router_core.routing.tokens import body_size_tokens, estimate_prompt_tokens
from router_core.settings import Settings
from router_core.types import ChatRequest

REVIEW_TAG = "review"
# Rules that escalate an ordinary (unflagged) request: for its size alone.
UNFLAGGED_RULES = frozenset({"long-context"})
# Rules under which the request itself asked for the cloud (model `cloud`, `#cloud`, a named
# model): without a key it fails naming the fix instead of quietly running locally.
ASKED_FOR_CLOUD_RULES = frozenset({"named", "cloud"})
NO_CLOUD = "no cloud model configured, so local"
_DEFAULT_STATE = RoutingState()
# The body-size ceiling decides alone only below this share of the limit (images by URL
# count more in the estimate than in the body).
SIZE_MARGIN = 0.9


@dataclass(slots=True)
class _Choice:
    ref: str
    rule: str
    reason: str
    local_only: bool = False  # rules 1-2: the whole plan stays local
    named: bool = False  # rule 3: no fallbacks


def _first_tag(tags: frozenset[str], wanted: tuple[str, ...]) -> str | None:
    """The first of `wanted` (settings order) that `tags` holds."""
    if tags.isdisjoint(wanted):
        return None
    return next(t for t in wanted if t in tags)


def _escalate(ref: str, rule: str, why: str, rules: RoutingRules) -> _Choice:
    if not ref:
        return _Choice(rules.local_model, rule, f"{why}; {NO_CLOUD}")
    return _Choice(ref, rule, why)


def _too_long(request: ChatRequest, rules: RoutingRules, state: RoutingState) -> tuple[str | None, int | None]:
    """(why it cannot fit locally or None, prompt estimate if computed)."""
    output = rules.settings.context.output_room(request.max_tokens)
    limit = state.local_context_limit or rules.local_context_tokens
    size = request.headers.get("content-length")
    if size and size.isdigit() and body_size_tokens(int(size)) + output <= limit * SIZE_MARGIN:
        # Clearly fits: skip walking the whole history (tens of microseconds on long sessions).
        return None, None
    prompt = estimate_prompt_tokens(request.messages, request.tools)
    if prompt + output <= limit:
        return None, prompt
    return f"~{prompt:,} prompt + {output:,} output tokens > {limit:,} local", prompt


def _long_context(request: ChatRequest, rules: RoutingRules, state: RoutingState) -> tuple[_Choice | None, int | None]:
    target = rules.long_context_model
    if not target or target == rules.local_model:
        return None, None
    why, prompt = _too_long(request, rules, state)
    if why is None:
        return None, prompt
    return _Choice(target, "long-context", f"long context: {why}"), prompt


def _writer(request: ChatRequest, rules: RoutingRules, state: RoutingState) -> tuple[str, bool]:
    """(model that wrote this session's code, known?) - unknown: the local default wrote it."""
    session = request.session_id
    writer = state.recent_writer.get(session) if session else None
    return (writer, True) if writer else (rules.local_model, False)


def _allowed(ref: str, rules: RoutingRules, state: RoutingState) -> bool:
    return rules.is_local(ref) or not (state.privacy or state.budget_exhausted)


def _reviewer(writer: str, rules: RoutingRules, state: RoutingState) -> str | None:
    return next((r for r in rules.review_pool if not rules.same(r, writer) and _allowed(r, rules, state)), None)


def _choose(
    request: ChatRequest, c: Classification, rules: RoutingRules, state: RoutingState
) -> tuple[_Choice, int | None]:
    tags = c.tags
    base = virtual_model(request.model)[0] if ":" in request.model else request.model
    named = "/" in base
    if named:
        provider = base.partition("/")[0]
        if provider not in rules.settings.providers or base.endswith("/"):
            raise ModelNotFound(request.model)
    if c.small_task:
        if named and rules.is_local(base):
            return _Choice(base, "small-model", f"small-model work ({c.small_task}), model asked for", True), None
        target = rules.long_context_model
        if target and target != rules.local_model:
            why, prompt = _too_long(request, rules, state)
            if why is not None:
                # Kept local it would fail (context_length_exceeded): escalate for its size.
                return _Choice(target, "long-context", f"small-model work ({c.small_task}) too long: {why}"), prompt
        return _Choice(rules.local_model, "small-model", f"small-model work ({c.small_task}) stays local", True), None
    if base == "local":
        return _Choice(rules.local_model, "local", "asked for model 'local' (stays local)", local_only=True), None
    if "local" in tags:
        return _Choice(rules.local_model, "local", f"local: {c.sources['local']}", local_only=True), None
    if named:
        return _Choice(base, "named", "model asked for by name", named=True), None
    if base not in ("auto", "cloud"):
        raise ModelNotFound(request.model)

    if base == "cloud" or "cloud" in tags:
        if not rules.cloud_model and not state.privacy:
            if base == "cloud":
                raise NoRoute("no cloud provider configured (set routing.cloud_model)")
            return _escalate("", "cloud", f"cloud: {c.sources['cloud']}", rules), None
        why = "asked for model 'cloud'" if base == "cloud" else f"cloud: {c.sources['cloud']}"
        return _escalate(rules.cloud_model, "cloud", why, rules), None
    heavy = _first_tag(tags, rules.heavy_tags)
    if heavy:
        return _escalate(rules.heavy_model, "heavy", f"heavy tag '{heavy}' ({c.sources[heavy]})", rules), None
    ui = _first_tag(tags, rules.ui_tags)
    if ui:
        return _escalate(rules.ui_model, "ui", f"ui tag '{ui}' ({c.sources[ui]})", rules), None
    if REVIEW_TAG in tags and rules.review_alternate:
        writer, known = _writer(request, rules, state)
        reviewer = _reviewer(writer, rules, state)
        if reviewer:
            wrote = "wrote this session's code" if known else "is the default writer"
            return _Choice(reviewer, "review", f"review ({c.sources[REVIEW_TAG]}): {writer} {wrote}"), None
    long_choice, prompt = _long_context(request, rules, state)
    if long_choice:
        return long_choice, prompt
    return _Choice(rules.local_model, "default", "local default"), prompt


def _apply_review(
    choice: _Choice, request: ChatRequest, c: Classification, rules: RoutingRules, state: RoutingState
) -> _Choice:
    """A review never goes to the model that wrote the code under review."""
    if REVIEW_TAG not in c.tags or not rules.review_alternate or choice.named or choice.rule == "review":
        return choice
    writer, _ = _writer(request, rules, state)
    if not rules.same(choice.ref, writer):
        return choice
    pool = rules.review_pool
    if choice.local_only:
        pool = tuple(r for r in pool if rules.is_local(r))
    reviewer = next((r for r in pool if not rules.same(r, writer) and _allowed(r, rules, state)), None)
    if reviewer is None:
        return choice
    return _Choice(reviewer, choice.rule, f"{choice.reason}; review: {writer} wrote the code", choice.local_only)


def _held_back(choice: _Choice, rules: RoutingRules, state: RoutingState) -> tuple[str, str] | None:
    """(cause, reason) when privacy, the budget or a missing key keeps this cloud choice from running."""
    if rules.is_local(choice.ref):
        return None
    if state.privacy:
        if state.privacy_escalation == "refuse" and choice.rule not in UNFLAGGED_RULES:
            raise EscalationRefused(
                f"privacy mode is on and this request would go to the cloud ({choice.reason}); "
                'refused because privacy escalation is "refuse"',
                cause="privacy",
            )
        return "privacy", f"kept local (privacy mode): {choice.reason}"
    if state.budget_exhausted:
        if state.budget_action == "refuse" and choice.rule not in UNFLAGGED_RULES:
            raise EscalationRefused(
                f"the cloud budget is spent and this request would go to the cloud ({choice.reason}); "
                'refused because the budget action is "refuse"',
                cause="budget",
            )
        return "budget", f"kept local (cloud budget reached): {choice.reason}"
    provider = choice.ref.partition("/")[0]
    fix = state.keyless.get(provider)
    if fix is not None and choice.rule not in ASKED_FOR_CLOUD_RULES:
        return "key", f"kept local ({provider} has no API key; {fix}): {choice.reason}"
    return None


def _by_cooldown(candidates: list[Candidate], cooling: frozenset[str]) -> list[Candidate]:
    """Models in cooldown go to the back, in their order; the first reason says why."""
    if not cooling or len(candidates) < 2:
        return candidates
    ready = [x for x in candidates if x.id not in cooling]
    if not ready or ready[0] is candidates[0]:
        return ready + [x for x in candidates if x.id in cooling]
    first = candidates[0]
    lead = Candidate(
        ready[0].provider,
        ready[0].model,
        ready[0].route,
        f"{first.reason}; {first.id} is cooling down, so {ready[0].reason}",
    )
    return [lead, *ready[1:], *(x for x in candidates if x.id in cooling)]


def _needs(request: ChatRequest) -> tuple[str, ...]:
    """Ollama capabilities a request needs: `tools` for tools, `vision` for images."""
    needs = ("tools",) if request.tools else ()
    for message in request.messages:
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "image", "input_image") for p in content
        ):
            return (*needs, "vision")
    return needs


def _capable(candidates: list[Candidate], request: ChatRequest, state: RoutingState) -> list[Candidate]:
    """Local models whose known capabilities lack what the request needs drop out (Ollama answers 400)."""
    if not state.capabilities:
        return candidates
    needs = _needs(request)
    if not needs:
        return candidates
    kept = [c for c in candidates if all(n in state.capabilities.get(c.id, needs) for n in needs)]
    if not kept:
        missing = ", ".join(needs)
        raise NoRoute(f"no configured model can serve this request: {candidates[0].id} lacks {missing}")
    if kept[0] is not candidates[0]:
        first = kept[0]
        why = f"{candidates[0].id} lacks {', '.join(needs)}, so {first.reason}"
        kept[0] = Candidate(first.provider, first.model, first.route, why)
    return kept


def decide(request: ChatRequest, settings: Settings, state: RoutingState = _DEFAULT_STATE) -> RoutePlan:
    rules = rules_for(settings)
    c = classify(request, rules)
    choice, prompt = _choose(request, c, rules, state)
    choice = _apply_review(choice, request, c, rules, state)

    held = _held_back(choice, rules, state)
    kept_by = keyless = ""
    if held:
        kept_by, reason = held
        if kept_by == "key":
            keyless = choice.ref.partition("/")[0]
        choice = _Choice(rules.local_model, choice.rule, reason, local_only=True)

    no_cloud = choice.local_only or state.privacy or state.budget_exhausted
    candidates = [rules.candidate(choice.ref, choice.reason)] if choice.ref else []
    if not choice.named:
        seen = {choice.ref}
        for ident, fallback in rules.fallback_candidates:
            if ident not in seen and not (no_cloud and fallback.route == "cloud"):
                seen.add(ident)
                candidates.append(fallback)
    if not candidates:
        raise NoRoute("no model can serve this request (set routing.local_model)")
    candidates = _capable(candidates, request, state)
    candidates = _by_cooldown(candidates, state.cooling)

    return RoutePlan(
        tuple(candidates),
        rule=choice.rule,
        tags=c.tags,
        tag_sources=tuple(sorted(c.sources.items())),
        small_task=c.small_task,
        matches=c.matches,
        markers=c.markers,
        prompt_tokens=prompt,
        kept_local=kept_by == "privacy",
        budget_kept_local=kept_by == "budget",
        key_kept_local=keyless,
    )
