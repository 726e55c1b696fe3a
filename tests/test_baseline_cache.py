"""The baseline's prompt-cache rule (ledger/baseline.py), case by case, computed by hand."""

from __future__ import annotations

from router_core.ledger.baseline import BaselineCache
from router_core.records import RequestRecord
from router_core.types import Usage

SYSTEM = {"role": "system", "content": "rules"}


def record(at: float, messages: list[dict[str, str]], prompt: int, session: str = "s") -> RequestRecord:
    return RequestRecord(
        request_id=f"r{at}", started_at=at, client="opencode", session=session, requested_model="auto",
        api="openai", route="local", reason="", provider="ollama", model="m", streamed=False, outcome="ok",
        usage=Usage(input_tokens=prompt, output_tokens=10), ttft_s=0.1, duration_s=1.0, messages=messages,
    )  # fmt: skip


def test_growing_prefix_reads_the_previous_prompt_and_writes_the_rest() -> None:
    cache = BaselineCache("anthropic/claude-sonnet-4-6")
    first = [SYSTEM, {"role": "user", "content": "a"}]
    second = [*first, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert cache.usage(record(0, first, 2000)) == Usage(0, 10, 0, 2000)
    assert cache.usage(record(10, second, 2500)) == Usage(0, 10, 2000, 500)


def test_no_read_after_the_cache_lifetime_or_an_edited_history() -> None:
    cache = BaselineCache("anthropic/claude-sonnet-4-6")
    first = [SYSTEM, {"role": "user", "content": "a"}]
    later = [*first, {"role": "user", "content": "c"}]
    cache.usage(record(0, first, 2000))
    assert cache.usage(record(301, later, 2100)) == Usage(0, 10, 0, 2100)  # 5 minutes passed
    compacted = [SYSTEM, {"role": "user", "content": "summary"}, {"role": "user", "content": "d"}]
    assert cache.usage(record(302, compacted, 2200)) == Usage(0, 10, 0, 2200)  # prefix differs
    other = cache.usage(record(303, [*compacted, {"role": "user", "content": "e"}], 2300, session="t"))
    assert other == Usage(0, 10, 0, 2300)  # another session has its own cache


def test_short_prompts_are_plain_input_and_unknown_vendors_uncached() -> None:
    cache = BaselineCache("anthropic/claude-sonnet-4-6")
    assert cache.usage(record(0, [SYSTEM], 500)) == Usage(500, 10)
    plain = BaselineCache("mistral/devstral")
    assert plain.usage(record(0, [SYSTEM], 5000)) == Usage(5000, 10)
