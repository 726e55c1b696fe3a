"""What a routing decision produces: ordered candidates, each with its reason."""

from __future__ import annotations

from dataclasses import dataclass

from router_core.routing.conventions import ConventionMatch
from router_core.types import Route


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    model: str
    route: Route
    reason: str
    # The pool (routing.pools) this backend was chosen from at run time; "" when none.
    pool: str = ""

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(slots=True)
class RoutePlan:
    """Candidates in the order to try them; the first one's reason is the plan's reason.

    The other fields explain the decision (`hybridge explain`, headers, the ledger). Treat
    a plan as immutable (derive a new one with `dataclasses.replace`); it is not frozen
    because one is built per request, and a frozen dataclass pays a setattr per field.
    """

    candidates: tuple[Candidate, ...]
    # The rule that chose the first candidate: local, small-model, named, cloud, heavy, ui,
    # review, long-context, default.
    rule: str = ""
    tags: frozenset[str] = frozenset()
    tag_sources: tuple[tuple[str, str], ...] = ()
    small_task: str | None = None
    matches: tuple[ConventionMatch, ...] = ()
    markers: tuple[str, ...] = ()
    # Prompt estimate when the long-context rule needed one (None: not computed).
    prompt_tokens: int | None = None
    # Privacy mode kept flagged work local (the server adds `x-hybridge-privacy: kept-local`).
    kept_local: bool = False
    # The cloud budget is spent and kept flagged work local.
    budget_kept_local: bool = False
    # The cloud provider this work would have gone to has no API key, so it stayed local
    # ("" when not): the reason names the provider and the fix.
    key_kept_local: str = ""

    @property
    def reason(self) -> str:
        return self.candidates[0].reason if self.candidates else ""
