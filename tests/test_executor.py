"""The executor on its own: candidates in order, fallback only before the first byte, one
wait on a short Retry-After, cooldowns kept.

The providers are the real OpenAICompatProvider; what stands in for the network is an
injected transport: `httpx.ASGITransport` over tests/fakes/faulty_openai.py (an OpenAI-
compatible server that fails on cue, in OpenAI's and llama.cpp's wire formats), or a
transport that refuses the connection as a closed port does (httpx raises ConnectError).
No socket, no model: these run in milliseconds.
"""

from __future__ import annotations

import httpx
import pytest

from router_core.errors import NoRoute, UpstreamError
from router_core.executor import Executor, PlanFailed
from router_core.providers.base import Provider
from router_core.providers.openai_compat import OpenAICompatProvider
from router_core.routing.cooldowns import Cooldowns
from router_core.routing.plan import Candidate, RoutePlan
from router_core.server.openai_request import parse_chat_request
from router_core.types import ChatRequest, Completion, Usage
from tests.fakes.faulty_openai import (
    BreakAfter,
    FaultyOpenAI,
    HttpError,
    bad_key,
    openai_error,
    openai_overflow,
    overloaded,
    rate_limited,
    server_error,
)


def refuse_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def provider(name: str, upstream: FaultyOpenAI | None) -> OpenAICompatProvider:
    transport: httpx.AsyncBaseTransport = (
        httpx.ASGITransport(app=upstream.app) if upstream is not None else httpx.MockTransport(refuse_connection)
    )
    return OpenAICompatProvider(name, f"http://{name}.test/v1", is_local=True, transport=transport)


def plan(*names: str) -> RoutePlan:
    return RoutePlan(tuple(Candidate(name, "m", "local", f"try {name}") for name in names))


def chat(stream: bool = False) -> ChatRequest:
    return parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": stream}, {})


class Sleeps:
    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


def executor(
    providers: dict[str, Provider], *, cooldowns: Cooldowns | None = None, max_retry_wait_s: float = 5.0
) -> tuple[Executor, Sleeps]:
    sleeps = Sleeps()
    return Executor(providers, cooldowns, max_retry_wait_s=max_retry_wait_s, sleep=sleeps), sleeps


def text(completion: Completion) -> str:
    return str(completion.body["choices"][0]["message"]["content"])


@pytest.fixture
def upstreams() -> dict[str, FaultyOpenAI]:
    return {name: FaultyOpenAI(name) for name in ("a", "b")}


def failing_first(upstreams: dict[str, FaultyOpenAI], fault: HttpError) -> tuple[Executor, Sleeps]:
    """An executor over `a` (which answers `fault` once) and `b`."""
    upstreams["a"].script.append(fault)
    return executor({n: provider(n, u) for n, u in upstreams.items()})


@pytest.mark.parametrize(
    ("fault", "kind"),
    [(server_error(), "server"), (overloaded(), "overloaded"), (openai_overflow(), "context_overflow"),
     (rate_limited(retry_after="1"), "rate_limit")],
)  # fmt: skip
async def test_a_retryable_failure_falls_back_to_the_next_candidate(
    upstreams: dict[str, FaultyOpenAI], fault: HttpError, kind: str
) -> None:
    run, sleeps = failing_first(upstreams, fault)
    candidate, completion, fallbacks = await run.complete(plan("a", "b"), chat())
    assert candidate.provider == "b" and text(completion) == "answer from b"
    assert fallbacks == [f"a/m: {kind}"]
    # A Retry-After is waited out only on the last candidate; here b was still there.
    assert sleeps.waited == [] and len(upstreams["a"].requests) == 1


async def test_a_refused_connection_falls_back(upstreams: dict[str, FaultyOpenAI]) -> None:
    run, _ = executor({"a": provider("a", None), "b": provider("b", upstreams["b"])})
    candidate, _, fallbacks = await run.complete(plan("a", "b"), chat())
    assert candidate.provider == "b" and fallbacks == ["a/m: connect"]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [(bad_key(), "auth"), (HttpError(400, openai_error(400, "bad 'temperature'", "invalid_request_error", None)),
                          "bad_request")],
)  # fmt: skip
async def test_a_failure_the_next_candidate_cannot_mend_stops_the_plan(
    upstreams: dict[str, FaultyOpenAI], fault: HttpError, kind: str
) -> None:
    run, _ = failing_first(upstreams, fault)
    with pytest.raises(PlanFailed) as failed:
        await run.complete(plan("a", "b"), chat())
    assert failed.value.kind == kind and failed.value.candidate is not None
    assert failed.value.candidate.provider == "a" and failed.value.fallbacks == []
    assert upstreams["b"].requests == []


async def test_every_candidate_failing_keeps_the_last_error_and_the_fallbacks_tried(
    upstreams: dict[str, FaultyOpenAI],
) -> None:
    upstreams["a"].script.append(server_error())
    upstreams["b"].script.append(overloaded())
    run, _ = executor({n: provider(n, u) for n, u in upstreams.items()})
    with pytest.raises(PlanFailed) as failed:
        await run.complete(plan("a", "b"), chat())
    assert failed.value.kind == "overloaded" and failed.value.status == 503
    assert failed.value.fallbacks == ["a/m: server"]


async def test_the_last_candidate_waits_out_a_short_retry_after_once(upstreams: dict[str, FaultyOpenAI]) -> None:
    upstreams["a"].script.append(rate_limited(retry_after="2"))
    run, sleeps = executor({"a": provider("a", upstreams["a"])}, max_retry_wait_s=5.0)
    _, completion, fallbacks = await run.complete(plan("a"), chat())
    assert sleeps.waited == [2.0] and len(upstreams["a"].requests) == 2
    assert text(completion) == "answer from a" and fallbacks == []
    # Only once: a second 429 after the wait is the answer.
    upstreams["a"].script += [rate_limited(retry_after="2"), rate_limited(retry_after="2")]
    with pytest.raises(PlanFailed) as failed:
        await run.complete(plan("a"), chat())
    assert failed.value.kind == "rate_limit" and sleeps.waited == [2.0, 2.0]


async def test_a_long_retry_after_is_not_waited_for(upstreams: dict[str, FaultyOpenAI]) -> None:
    upstreams["a"].script.append(rate_limited(retry_after="30"))
    run, sleeps = executor({"a": provider("a", upstreams["a"])}, max_retry_wait_s=5.0)
    with pytest.raises(PlanFailed) as failed:
        await run.complete(plan("a"), chat())
    assert failed.value.retry_after == 30.0 and sleeps.waited == [] and len(upstreams["a"].requests) == 1


async def test_failures_cool_an_upstream_down_and_a_success_clears_it(upstreams: dict[str, FaultyOpenAI]) -> None:
    now = [1000.0]
    cooldowns = Cooldowns(after_failures=2, cooldown_s=30.0, clock=lambda: now[0])
    run, _ = executor({n: provider(n, u) for n, u in upstreams.items()}, cooldowns=cooldowns)
    upstreams["a"].script += [server_error(), server_error()]
    await run.complete(plan("a", "b"), chat())
    assert cooldowns.cooling() == frozenset()  # one failure in a row: not yet
    await run.complete(plan("a", "b"), chat())
    assert cooldowns.cooling() == {"a/m"}
    [status] = cooldowns.status()
    assert (status.model, status.failures, status.last_error, status.remaining_s) == ("a/m", 2, "server", 30.0)
    # A context overflow says nothing about the upstream's health.
    upstreams["b"].script.append(openai_overflow())
    with pytest.raises(PlanFailed):
        await run.complete(plan("b"), chat())
    assert "b/m" not in {s.model for s in cooldowns.status()}
    await run.complete(plan("a"), chat())
    assert cooldowns.cooling() == frozenset() and cooldowns.status() == []


async def test_a_candidate_whose_provider_is_gone_is_skipped_and_alone_is_no_route(
    upstreams: dict[str, FaultyOpenAI],
) -> None:
    run, _ = executor({"b": provider("b", upstreams["b"])})
    candidate, _, fallbacks = await run.complete(plan("gone", "b"), chat())
    assert candidate.provider == "b" and fallbacks == ["gone/m: no_route"]
    with pytest.raises(NoRoute):
        await run.complete(plan("gone"), chat())
    with pytest.raises(NoRoute):
        await run.complete(RoutePlan(()), chat())


async def test_a_stream_opens_on_its_first_part_after_falling_back(upstreams: dict[str, FaultyOpenAI]) -> None:
    upstreams["a"].script.append(overloaded())
    run, _ = executor({n: provider(n, u) for n, u in upstreams.items()})
    opened = await run.open_stream(plan("a", "b"), chat(stream=True))
    assert opened.candidate.provider == "b" and opened.fallbacks == ["a/m: overloaded"] and not opened.raw
    assert isinstance(opened.first, dict) and opened.first["object"] == "chat.completion.chunk"
    rest = [part async for part in opened.rest]
    words = "".join(
        p["choices"][0]["delta"].get("content") or ""
        for p in [opened.first, *rest]
        if isinstance(p, dict) and p["choices"]
    )
    assert words == "answer from b" and isinstance(rest[-1], Usage)


async def test_a_raw_stream_passes_the_upstream_bytes(upstreams: dict[str, FaultyOpenAI]) -> None:
    run, _ = executor({"a": provider("a", upstreams["a"])})
    opened = await run.open_stream(plan("a"), chat(stream=True), raw=True)
    assert opened.raw and isinstance(opened.first, tuple)
    data, events = opened.first
    assert data.startswith(b"data: {") and events >= 1
    await opened.rest.aclose()


async def test_no_fallback_once_the_first_byte_is_out(upstreams: dict[str, FaultyOpenAI]) -> None:
    upstreams["a"].script.append(BreakAfter(chunks=1, how="error_event"))
    run, _ = executor({n: provider(n, u) for n, u in upstreams.items()})
    opened = await run.open_stream(plan("a", "b"), chat(stream=True))
    assert opened.candidate.provider == "a"
    with pytest.raises(UpstreamError) as failed:
        async for _ in opened.rest:
            pass
    assert failed.value.kind == "server"
    assert upstreams["b"].requests == []
