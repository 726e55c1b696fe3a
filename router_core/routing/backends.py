"""Which backend of a pool serves a request (pure: what is known of each backend in, an order out).

A pool (`routing.pools`) is one model served by several local backends. For each request:

1. skipped outright, each with its reason: a backend known to be down (a failed connect or
   poll; only the background poll brings it back), one whose host privacy mode does not
   trust, one that does not have the model installed;
2. the session's own backend first (sticky), unless it is cooling down: its KV prefix
   cache holds the session's prompt;
3. the rest by: not cooling down; has the model loaded with enough context for this
   request (no load, no reload) and a free slot (a backend running as many requests as it
   has slots makes this one wait, as a load would); least busy by the engine's own figures;
   best fit (the most context it can give the model); the pool's own order.

Nothing here reads a clock or the network: `BackendView`s are built from the last
background poll and the router's own in-flight counts (router_core/providers/pool.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackendView:
    """One pool member as known now."""

    provider: str
    model: str
    # Known down (connect or poll failed; cleared only by a successful background poll).
    down: str | None = None
    # Why privacy mode keeps requests off this backend (None: allowed).
    untrusted: str | None = None
    installed: bool | None = None  # None: unknown (the engine does not list models)
    # The model is loaded now: True/False, None unknown; with its context (None: unknown).
    loaded: bool | None = None
    loaded_context: int | None = None
    # Requests it is working on or has queued: ours in flight plus what the engine reported
    # beyond ours at the last poll (llama.cpp requests_processing + requests_deferred, vLLM
    # num_requests_running + num_requests_waiting).
    busy: int = 0
    slots: int | None = None  # how many it runs at once (None: no limit known)
    fit_context: int | None = None  # the most context it can give the model (None: unknown)
    cooling: bool = False

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"

    def loaded_for(self, need: int | None) -> bool:
        """The model is loaded with room for `need` tokens (unknown context or need: yes)."""
        if not self.loaded:
            return False
        return need is None or self.loaded_context is None or need <= self.loaded_context

    @property
    def saturated(self) -> bool:
        return self.slots is not None and self.busy >= self.slots


@dataclass(frozen=True, slots=True)
class RankedBackend:
    view: BackendView
    why: str  # why it is where it is, for explain and the x-hybridge-reason header


@dataclass(frozen=True, slots=True)
class Ranking:
    pool: str
    order: tuple[RankedBackend, ...]
    skipped: tuple[tuple[str, str], ...]  # (backend id, why)


def _skip_reason(view: BackendView) -> str | None:
    if view.untrusted:
        return view.untrusted
    if view.down:
        return f"down ({view.down}); waits for the background poll to see it up"
    if view.installed is False:
        return f"does not have {view.model}"
    return None


def _describe(view: BackendView, need: int | None) -> str:
    parts = []
    if view.loaded_for(need):
        ctx = f" (context {view.loaded_context:,})" if view.loaded_context else ""
        parts.append(f"has it loaded{ctx}")
    elif view.loaded:
        parts.append(f"loaded with too little context ({view.loaded_context:,} < {need:,})")
    elif view.loaded is False:
        parts.append("would load it")
    slots = f" of {view.slots} slot{'s' if view.slots != 1 else ''}" if view.slots is not None else ""
    parts.append(f"{view.busy} busy{slots}")
    if view.cooling:
        parts.append("cooling down")
    return ", ".join(parts)


def rank(
    pool: str,
    members: Sequence[BackendView],
    *,
    need_tokens: int | None,
    sticky: str | None = None,
) -> Ranking:
    """`members` (in the pool's order) ranked for a request needing `need_tokens` of context.

    `sticky`: the provider that served this session last.
    """
    skipped: list[tuple[str, str]] = []
    eligible: list[tuple[int, BackendView]] = []
    for i, view in enumerate(members):
        why = _skip_reason(view)
        if why is None:
            eligible.append((i, view))
        else:
            skipped.append((view.id, why))

    def key(item: tuple[int, BackendView]) -> tuple[bool, bool, int, int, int]:
        i, v = item
        ready = v.loaded_for(need_tokens) and not v.saturated
        return (v.cooling, not ready, v.busy, -(v.fit_context or 0), i)

    ordered = [v for _, v in sorted(eligible, key=key)]
    ranked: list[RankedBackend] = []
    first = next((v for v in ordered if v.provider == sticky and not v.cooling), None)
    if first is not None:
        ordered.remove(first)
        ranked.append(RankedBackend(first, f"this session's backend: {_describe(first, need_tokens)}"))
    for v in ordered:
        ranked.append(RankedBackend(v, _describe(v, need_tokens)))
    return Ranking(pool, tuple(ranked), tuple(skipped))
