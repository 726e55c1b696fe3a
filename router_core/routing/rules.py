"""Routing settings compiled once per Settings object for the hot path.

Globs become regexes, tag lists become sets, model refs are checked for locality once;
`rules_for(settings)` memoizes by the settings object's identity (settings are frozen,
and a reload makes a new object).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from router_core.routing.conventions import CompiledConvention, compile_conventions
from router_core.routing.plan import Candidate
from router_core.settings import Settings

FALLBACK_REASON = "fallback chain"
_MADE_MAX = 512


@dataclass(frozen=True, slots=True)
class RoutingRules:
    settings: Settings
    local_model: str
    cloud_model: str
    heavy_tags: tuple[str, ...]
    heavy_model: str
    ui_tags: tuple[str, ...]
    ui_model: str
    long_context_model: str
    fallback_chain: tuple[str, ...]
    review_alternate: bool
    review_pool: tuple[str, ...]
    write_tools: frozenset[str]
    inline_markers: bool
    conventions: tuple[CompiledConvention, ...]
    scan_tool_result_chars: int
    small_task_prefixes: tuple[str, ...]
    small_tasks: tuple[tuple[str, str], ...]  # (prefix, task), longest prefix first
    small_models: tuple[str, ...]  # lower-case parts of client model names
    # All review signals as one alternation (one pass over the text), or None: off.
    review_signal: re.Pattern[str] | None
    review_literal: str  # lower-case text every signal needs ("" none): a cheap pre-check
    local_context_tokens: int
    local_providers: frozenset[str]
    # (id, candidate) for each fallback-chain entry: the same every time, so made once.
    fallback_candidates: tuple[tuple[str, Candidate], ...]
    # Pool member -> the pool's first member: one model, whichever backend serves it.
    pool_canonical: dict[str, str] = field(default_factory=dict, compare=False)
    # Pool member -> every member of its pool (routing.pools).
    pool_members: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    # Candidates by (model, reason) as decided before: most reasons repeat ("local default").
    made: dict[tuple[str, str], Candidate] = field(default_factory=dict, compare=False)

    def is_local(self, ref: str) -> bool:
        return ref.partition("/")[0] in self.local_providers

    def same(self, a: str, b: str) -> bool:
        """`a` and `b` are the same model (equal, or members of one pool)."""
        return a == b or (bool(self.pool_canonical) and self.pool_canonical.get(a, a) == self.pool_canonical.get(b, b))

    def candidate(self, ref: str, reason: str) -> Candidate:
        key = (ref, reason)
        made = self.made.get(key)
        if made is None:
            provider, _, model = ref.partition("/")
            made = Candidate(provider, model, "local" if provider in self.local_providers else "cloud", reason)
            if len(self.made) >= _MADE_MAX:
                self.made.clear()
            self.made[key] = made
        return made


def _dedup(refs: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r for r in refs if r))


def compile_rules(settings: Settings) -> RoutingRules:
    r = settings.routing
    pool = list(r.review_models) or [r.cloud_model, r.heavy_model, r.local_model, *r.fallback_chain]
    local_providers = frozenset(name for name, conf in settings.providers.items() if conf.is_local)
    chain = _dedup(list(r.fallback_chain))
    small = sorted(((p, t) for p, t in r.small_tasks.items() if p and t), key=lambda pt: -len(pt[0]))
    return RoutingRules(
        settings=settings,
        local_model=r.local_model,
        cloud_model=r.cloud_model,
        heavy_tags=tuple(r.heavy_tags),
        heavy_model=r.heavy_model or r.cloud_model,
        ui_tags=tuple(r.ui_tags),
        ui_model=r.ui_model or r.cloud_model,
        long_context_model=r.long_context_model or r.cloud_model,
        fallback_chain=chain,
        review_alternate=r.review_strategy == "alternate",
        review_pool=_dedup(pool),
        write_tools=frozenset(t.lower() for t in r.write_tools),
        inline_markers=r.inline_markers,
        conventions=compile_conventions(r.conventions),
        scan_tool_result_chars=r.scan_tool_result_chars,
        small_task_prefixes=tuple(p for p, _ in small),
        small_tasks=tuple(small),
        small_models=tuple(m.lower() for m in r.small_models if m),
        review_signal=(
            re.compile("|".join(f"(?:{p})" for p in r.review_signals), re.IGNORECASE) if r.review_signals else None
        ),
        review_literal="review" if r.review_signals and all("review" in p.lower() for p in r.review_signals) else "",
        local_context_tokens=r.local_context_tokens,
        local_providers=local_providers,
        fallback_candidates=tuple(
            (f"{p}/{m}", Candidate(p, m, "local" if p in local_providers else "cloud", FALLBACK_REASON))
            for p, _, m in (ref.partition("/") for ref in chain)
        ),
        pool_canonical={ref: members[0] for members in r.pools.values() for ref in members},
        pool_members={ref: tuple(members) for members in r.pools.values() for ref in members},
    )


_cache: dict[int, RoutingRules] = {}
_lock = threading.Lock()
_CACHE_SIZE = 8


def rules_for(settings: Settings) -> RoutingRules:
    rules = _cache.get(id(settings))
    # The entry holds the settings object, so its id cannot be reused while cached.
    if rules is not None and rules.settings is settings:
        return rules
    rules = compile_rules(settings)
    with _lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[id(settings)] = rules
    return rules
