"""Run a RoutePlan: try candidates in order, falling back only before the first byte."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from router_core.errors import HybridgeError, NoRoute, UpstreamError
from router_core.providers.base import Provider
from router_core.routing.cooldowns import Cooldowns
from router_core.routing.plan import Candidate, RoutePlan
from router_core.types import ChatRequest, Completion, StreamPart

T = TypeVar("T")


@dataclass(slots=True)
class OpenStream:
    """A stream whose first part has arrived: from here on there is no fallback."""

    candidate: Candidate
    # An OpenAI chunk dict or a Usage; for a pass-through stream, (bytes, events) or a Usage.
    first: StreamPart | tuple[bytes, int]
    rest: AsyncGenerator[Any, None]
    fallbacks: list[str] = field(default_factory=list)

    @property
    def raw(self) -> bool:
        """The upstream's bytes pass through (see OpenAICompatProvider.stream_raw)."""
        return isinstance(self.first, tuple)


class PlanFailed(UpstreamError):
    """Every candidate failed; carries the last error's kind and the fallbacks tried."""

    def __init__(self, last: UpstreamError, fallbacks: list[str], candidate: Candidate | None) -> None:
        super().__init__(
            last.message,
            kind=last.kind,
            status=last.status,
            upstream_status=last.upstream_status,
            retry_after=last.retry_after,
            provider=last.provider,
        )
        self.fallbacks = fallbacks
        self.candidate = candidate


class Executor:
    """Tries a plan's candidates in order; records each upstream's health in `cooldowns`.

    Falls back on retryable failures (connect, timeout, 429, 5xx/529, context overflow)
    until the first byte. When the last candidate asks to retry after a short while
    (Retry-After, at most `max_retry_wait_s`), it waits and tries that candidate once more.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider],
        cooldowns: Cooldowns | None = None,
        *,
        max_retry_wait_s: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.providers = providers
        self.cooldowns = cooldowns or Cooldowns()
        self.max_retry_wait_s = max_retry_wait_s
        self._sleep = sleep

    def _provider(self, candidate: Candidate) -> Provider:
        provider = self.providers.get(candidate.provider)
        if provider is None:
            raise NoRoute(f"provider '{candidate.provider}' is not available")
        return provider

    @staticmethod
    def _note(candidate: Candidate, exc: HybridgeError) -> str:
        return f"{candidate.id}: {exc.kind}"

    def _wait_for(self, exc: UpstreamError, last: bool) -> float | None:
        """Seconds to wait before retrying the last candidate, or None to give up on it."""
        if not last or exc.kind not in ("rate_limit", "overloaded") or exc.retry_after is None:
            return None
        return exc.retry_after if exc.retry_after <= self.max_retry_wait_s else None

    async def _attempt(self, candidate: Candidate, last: bool, call: Callable[[], Awaitable[T]]) -> T:
        """One candidate: the call, and once more after a short Retry-After on the last one."""
        try:
            result = await call()
        except UpstreamError as exc:
            self.cooldowns.failure(candidate.id, exc)
            wait = self._wait_for(exc, last)
            if wait is None:
                raise
            await self._sleep(wait)
            try:
                result = await call()
            except UpstreamError as again:
                self.cooldowns.failure(candidate.id, again)
                raise
        self.cooldowns.success(candidate.id)
        return result

    async def _run(
        self, plan: RoutePlan, call: Callable[[Candidate, Provider], Awaitable[T]]
    ) -> tuple[Candidate, T, list[str]]:
        fallbacks: list[str] = []
        candidates = plan.candidates
        for i, candidate in enumerate(candidates):
            last = i == len(candidates) - 1
            try:
                provider = self._provider(candidate)
            except NoRoute as exc:
                if last:
                    raise
                fallbacks.append(self._note(candidate, exc))
                continue
            try:
                result = await self._attempt(candidate, last, functools.partial(call, candidate, provider))
            except UpstreamError as exc:
                if not exc.retryable or last:
                    raise PlanFailed(exc, fallbacks, candidate) from None
                fallbacks.append(self._note(candidate, exc))
                continue
            return candidate, result, fallbacks
        raise NoRoute("no candidate can serve this request")

    async def complete(self, plan: RoutePlan, request: ChatRequest) -> tuple[Candidate, Completion, list[str]]:
        async def call(candidate: Candidate, provider: Provider) -> Completion:
            return await provider.complete(request, candidate.model)

        return await self._run(plan, call)

    async def open_stream(self, plan: RoutePlan, request: ChatRequest, *, raw: bool = False) -> OpenStream:
        """The first candidate whose stream starts. `raw`: the client reads OpenAI's own
        dialect, so a provider that can (`stream_raw`) passes its upstream's bytes through."""

        async def call(candidate: Candidate, provider: Provider) -> tuple[Any, AsyncGenerator[Any, None]]:
            passthrough = getattr(provider, "stream_raw", None) if raw else None
            parts: AsyncGenerator[Any, None] = (
                passthrough(request, candidate.model) if passthrough else provider.stream(request, candidate.model)
            )
            try:
                return await anext(parts), parts
            except BaseException:
                await parts.aclose()
                raise

        candidate, (first, rest), fallbacks = await self._run(plan, call)
        return OpenStream(candidate, first, rest, fallbacks)
