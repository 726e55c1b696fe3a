"""Run a RoutePlan: try candidates in order, falling back only before the first byte."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from router_core.errors import HybridgeError, NoRoute, UpstreamError
from router_core.providers.base import Provider
from router_core.providers.pool import BackendPools
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
    # Ends a pooled backend's in-flight count (idempotent): the reader calls it when the
    # stream is over, however it ended (read to the end, failed, or never read).
    release: Callable[[], None] = field(default=lambda: None)

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
    A candidate that is a pool member (routing.pools) is served by the pool's backends in the
    order `pools.choose` gives at that moment, each tried in turn until one starts answering;
    a backend known down is not tried at all.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider],
        cooldowns: Cooldowns | None = None,
        *,
        max_retry_wait_s: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        pools: BackendPools | None = None,
    ) -> None:
        self.providers = providers
        self.cooldowns = cooldowns or Cooldowns()
        # None or empty: no pools configured, and every candidate runs as it always has.
        self.pools = pools if pools else None
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
        self, plan: RoutePlan, request: ChatRequest, call: Callable[[Candidate, Provider], Awaitable[T]]
    ) -> tuple[Candidate, T, list[str]]:
        fallbacks: list[str] = []
        candidates = plan.candidates
        for i, candidate in enumerate(candidates):
            last = i == len(candidates) - 1
            # A member asked for by name (`box2/qwen3`) is that backend; otherwise its pool serves.
            pool = self.pools.pool_of(candidate.id) if self.pools is not None and plan.rule != "named" else None
            if pool is not None:
                try:
                    served, result = await self._run_pool(pool, candidate, plan, request, last, call, fallbacks)
                except UpstreamError as exc:
                    if not exc.retryable or last:
                        raise PlanFailed(exc, fallbacks, candidate) from None
                    fallbacks.append(self._note(candidate, exc))
                    continue
                return served, result, fallbacks
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

    async def _run_pool(
        self,
        pool: str,
        planned: Candidate,
        plan: RoutePlan,
        request: ChatRequest,
        last: bool,
        call: Callable[[Candidate, Provider], Awaitable[T]],
        fallbacks: list[str],
    ) -> tuple[Candidate, T]:
        """The pool's backends in turn; the one that answers is counted in flight (the caller
        ends it). Chosen and counted with no await between, so concurrent requests see each
        other's choices."""
        assert self.pools is not None
        ranking = self.pools.choose(pool, request, plan.prompt_tokens)
        if not ranking.order:
            skipped = "; ".join(f"{ref}: {why}" for ref, why in ranking.skipped)
            raise UpstreamError(f"pool '{pool}': no backend can serve it now ({skipped})", kind="connect", status=503)
        error: UpstreamError | None = None
        for j, ranked in enumerate(ranking.order):
            view = ranked.view
            backend = Candidate(
                view.provider, view.model, "local", f"{planned.reason}; pool {pool}: {view.provider} {ranked.why}", pool
            )
            provider = self.providers.get(backend.provider)
            if provider is None:
                continue
            self.pools.begin(backend.provider)
            try:
                result = await self._attempt(
                    backend, last and j == len(ranking.order) - 1, functools.partial(call, backend, provider)
                )
            except UpstreamError as exc:
                self.pools.end(backend.provider)
                self.pools.failed(backend.provider, exc)
                if not exc.retryable:
                    raise
                fallbacks.append(self._note(backend, exc))
                error = exc
                continue
            except BaseException:
                self.pools.end(backend.provider)
                raise
            self.pools.served(pool, backend.provider, request)
            return backend, result
        raise error or NoRoute(f"pool '{pool}': none of its providers is configured")

    def _releaser(self, provider: str) -> Callable[[], None]:
        """Ends `provider`'s in-flight count once, however often it is called."""
        pools = self.pools
        done = False

        def release() -> None:
            nonlocal done
            if not done and pools is not None:
                done = True
                pools.end(provider)

        return release

    async def complete(self, plan: RoutePlan, request: ChatRequest) -> tuple[Candidate, Completion, list[str]]:
        async def call(candidate: Candidate, provider: Provider) -> Completion:
            return await provider.complete(request, candidate.model)

        candidate, completion, fallbacks = await self._run(plan, request, call)
        if candidate.pool and self.pools is not None:
            self.pools.end(candidate.provider)
        return candidate, completion, fallbacks

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

        candidate, (first, rest), fallbacks = await self._run(plan, request, call)
        if candidate.pool and self.pools is not None:
            return OpenStream(candidate, first, rest, fallbacks, self._releaser(candidate.provider))
        return OpenStream(candidate, first, rest, fallbacks)
