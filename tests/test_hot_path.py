"""The hot path's bookkeeping (issue 21): live figures sampled from stream counters, ledger
rows written a batch per transaction (the loop only queues them), OpenAI-dialect streams
passed through as bytes, translated streams writing what already arrived in one send, the
request log written off the loop, and in-flight requests stoppable without anyio."""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from router_core import collector, request_log
from router_core.events import RouterEvents
from router_core.inflight import InFlight
from router_core.inventory import prompt_tokens
from router_core.inventory.prompt_tokens import SessionTokens
from router_core.ledger import recorder, schema, store
from router_core.ledger.entry import make_entry
from router_core.ledger.metrics import DURATION_BUCKETS, TOKEN_KINDS, TTFT_BUCKETS, Counters
from router_core.ledger.periods import PeriodTotals, day_bounds, day_key, figures_between
from router_core.ledger.prices import PriceTable, shipped_prices
from router_core.ledger.recorder import Ledger
from router_core.routing.tokens import estimate_prompt_tokens
from router_core.runtime import Runtime
from router_core.server.helpers import new_request_id
from router_core.server.openai_request import parse_chat_request
from router_core.server.ready import Thrown, step
from router_core.service import RouterService
from router_core.types import Usage
from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud, Reply
from tests.support.clouds import Records, cloud_settings, fake_openai_cloud, reset
from tests.support.garbage import Rig, garbage_rig, sse_events
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import make_settings, run_hybridge
from tests.test_ledger_units import Collect, FixedPower, record

# -- live figures: counters, sampled --------------------------------------------------------


def test_live_figures_come_from_the_stream_counters_and_count_each_chunk_once(tmp_path: Path) -> None:
    events = RouterEvents()
    snapshots = Collect()
    ledger = Ledger(make_settings({}), events, path=tmp_path / "l.sqlite3", power=FixedPower(200.0),
                    publish_interval_s=0.05)  # fmt: skip
    ledger.signals.live_stats.connect(snapshots.add)
    ledger.start()
    start = time.time()
    stream = events.streams.open("req_c", "local", "ollama/m")
    for _ in range(30):
        stream.add(1)  # what routed.py does per write: no event, two attribute updates
    deadline = time.monotonic() + 5
    while not any(getattr(s, "active_streams", 0) for s in snapshots.items) and time.monotonic() < deadline:
        time.sleep(0.01)
    running = next(s for s in snapshots.items if getattr(s, "active_streams", 0))
    # 30 chunks over the 10 s window: 3 tokens/s, and the stream is listed with its 30.
    assert running.local_tokens_per_second == pytest.approx(3.0)
    assert [(s.request_id, s.tokens) for s in running.streams] == [("req_c", 30)]
    stream.add(10)  # the last write, then the stream ends before the sampler looks again
    events.streams.close(stream)
    events.request_finished.emit(
        record(request_id="req_c", route="local", provider="ollama", model="m", started_at=start,
               duration_s=time.time() - start, usage=Usage(input_tokens=5, output_tokens=40))
    )  # fmt: skip
    assert ledger.wait_written(1) and ledger.flush()
    after = ledger.snapshot()
    # Its last 10 count once (40 in the window, 4/s), and it is no longer listed.
    assert after.active_streams == 0 and after.local_tokens_per_second == pytest.approx(4.0)
    assert ledger.snapshot().local_tokens_per_second == pytest.approx(4.0)
    ledger.close()


# -- ledger: a batch per transaction ----------------------------------------------------------


def test_a_burst_of_records_is_written_in_batches_and_every_row_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    insert = store.insert_entries

    def counted(conn: Any, entries: Any, now: float | None = None) -> Any:
        batches.append(len(entries))
        return insert(conn, entries, now)

    monkeypatch.setattr(store, "insert_entries", counted)
    events = RouterEvents()
    ledger = Ledger(make_settings({}), events, path=tmp_path / "l.sqlite3", power=None).start()
    for i in range(2000):
        events.request_finished.emit(record(request_id=f"req-{i}", tags=frozenset({"a", "b"})))
    assert ledger.wait_written(2000, timeout=60) and ledger.flush()
    ledger.close()
    # Emitted faster than one transaction per row: rows shared transactions.
    assert sum(batches) == 2000 and len(batches) < 2000 and max(batches) > 1
    conn = schema.connect(tmp_path / "l.sqlite3")
    assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 2000
    assert conn.execute("SELECT COUNT(*) FROM request_tags").fetchone()[0] == 4000
    conn.close()
    # The running figures count every row once, whatever the batches.
    assert ledger.snapshot().today.requests == 2000
    assert sum(ledger.counters.requests.values()) == 2000


def test_the_loop_only_queues_a_finished_request(tmp_path: Path) -> None:
    # The listener on the router's loop puts the record on the queue and returns: live
    # figures, pricing and the write all happen in the writer's thread.
    events = RouterEvents()
    ledger = Ledger(make_settings({}), events, path=tmp_path / "l.sqlite3", power=None).start()
    seen: list[str] = []
    on_finished_all = ledger.live.on_finished_all

    def counted(records: Any) -> None:
        seen.append(threading.current_thread().name)
        on_finished_all(records)

    ledger.live.on_finished_all = counted  # type: ignore[method-assign]
    events.request_finished.emit(record(request_id="req-q", streamed=False, usage=Usage(output_tokens=7)))
    assert ledger.wait_written(1) and ledger.flush()
    ledger.close()
    assert seen == ["hybridge-ledger"]


def test_totals_of_a_batch_match_the_sql_sums(tmp_path: Path) -> None:
    # The running figures (summed by SQLite per batch) and `hybridge stats`' SQL agree, row
    # kinds mixed; a row already in the ledger (its request id seen before) is not counted twice.
    conn = schema.connect(tmp_path / "l.sqlite3")
    table = PriceTable(shipped_prices())
    now = time.time()
    records = [
        record(request_id="a", usage=Usage(1000, 100)),  # priced cloud
        record(request_id="b", route="local", provider="ollama", model="m", usage=Usage(500, 50)),
        record(request_id="c", provider="nowhere", model="unknown-model", usage=Usage(10, 1)),  # unpriced
        record(request_id="d", route="", provider="", model="", outcome="refused", error_kind="privacy_refused"),
        record(request_id="e", route="", provider="", model="", outcome="refused", error_kind="budget_refused"),
    ]
    entries = [make_entry(r, table, "openai/gpt-4.1", energy_wh=2.0 if r.route == "local" else None,
                          price_per_kwh=0.3) for r in records]  # fmt: skip
    entries.append(make_entry(record(request_id="f", provider="ollama", model="glm"), table, "openai/gpt-4.1",
                              ollama_cloud=True))  # fmt: skip
    totals = PeriodTotals()
    for batch in (entries[:2], entries[2:], entries[1:3]):  # the last: rows already written
        sums = store.insert_entries(conn, batch, now=now)
        assert sums is not None
        totals.add(sums.today, sums.month)
    day, month = totals.current()
    sql = dataclasses.asdict(figures_between(conn, day_key(now), *day_bounds(now)))
    assert sql.pop("period") == day.period
    assert {k: v for k, v in dataclasses.asdict(day).items() if k != "period"} == pytest.approx(sql)
    assert day.requests == month.requests == 6 and day.refused_requests == 2 and day.privacy_refused == 1
    assert day.subscription_requests == 1 and day.unpriced_requests >= 1 and day.energy_wh == pytest.approx(2.0)
    conn.close()


def test_metrics_summed_by_sqlite_match_the_rows_one_by_one(tmp_path: Path) -> None:
    # /metrics' counters and histograms from batch_sums' groups equal what adding each row in
    # Python gives (bisect_left buckets: a value on a bound falls in that bound's bucket).
    conn = schema.connect(tmp_path / "l.sqlite3")
    table = PriceTable(shipped_prices())
    ttfts = [None, 0.05, 0.0501, 0.3, 31.0, 0.05, 2.0]
    durations = [0.05, 0.1, 0.7, 400.0, 0.1, 3.0, 2.0]
    records = [
        record(request_id=f"r{i}", started_at=time.time(), ttft_s=ttft, duration_s=duration,
               route="local" if i % 2 else "cloud", provider="ollama" if i % 2 else "openai",
               model="m" if i % 2 else "gpt-4.1", outcome="error" if i == 5 else "ok",
               usage=Usage(100 * i, 10 * i, cache_read_tokens=i % 3))
        for i, (ttft, duration) in enumerate(zip(ttfts, durations, strict=True))
    ]  # fmt: skip
    records.append(record(request_id="u", provider="nowhere", model="unknown", usage=Usage(5, 5)))
    entries = [make_entry(r, table, "openai/gpt-4.1", energy_wh=1.5 if r.route == "local" else None,
                          price_per_kwh=0.3) for r in records]  # fmt: skip
    counters = Counters()
    for batch in (entries[:3], entries[3:]):
        sums = store.insert_entries(conn, batch, now=time.time())
        assert sums is not None
        counters.add_groups(sums.groups)
    conn.close()

    requests: dict[tuple[str, str, str], int] = {}
    tokens: dict[tuple[str, str, str], int] = {}
    ttft_hits: dict[str, list[int]] = {}
    duration_hits: dict[str, list[int]] = {}
    for e in entries:
        r = e.record
        model = f"{r.provider}/{r.model}"
        requests[(r.route, model, r.outcome)] = requests.get((r.route, model, r.outcome), 0) + 1
        for kind in TOKEN_KINDS:
            n = getattr(r.usage, f"{kind}_tokens")
            if n:
                tokens[(r.route, model, kind)] = tokens.get((r.route, model, kind), 0) + n
        if r.ttft_s is not None and r.outcome == "ok":
            ttft_hits.setdefault(r.route, []).append(bisect.bisect_left(TTFT_BUCKETS, r.ttft_s))
        duration_hits.setdefault(r.route, []).append(bisect.bisect_left(DURATION_BUCKETS, r.duration_s))
    got_requests = {(dict(k)["route"], dict(k)["model"], dict(k)["outcome"]): v for k, v in counters.requests.items()}
    assert got_requests == requests
    assert {(dict(k)["route"], dict(k)["model"], dict(k)["kind"]): v for k, v in counters.tokens.items()} == tokens
    for kept, hits, bounds in ((counters.ttft, ttft_hits, TTFT_BUCKETS), (counters.duration, duration_hits,
                                                                          DURATION_BUCKETS)):  # fmt: skip
        assert {dict(k)["route"] for k in kept} == set(hits)
        for labels, histogram in kept.items():
            mine = hits[dict(labels)["route"]]
            assert histogram.total == len(mine)
            assert histogram.counts == [sum(1 for i in mine if i <= b) for b in range(len(bounds))]
    cloud = [e for e in entries if e.is_cloud and e.costing.cost_usd is not None]
    assert sum(counters.cost.values()) == pytest.approx(sum(e.costing.cost_usd or 0.0 for e in cloud))
    assert sum(counters.unpriced.values()) == sum(1 for e in entries if e.costing.cost_usd is None) == 1
    priced = [e.costing for e in entries if e.costing.savings_usd is not None]
    assert counters.savings == pytest.approx(sum(c.savings_usd or 0.0 for c in priced))
    assert counters.baseline == pytest.approx(sum(c.baseline_cost_usd or 0.0 for c in priced))
    assert counters.energy_wh == pytest.approx(1.5 * sum(1 for e in entries if e.is_local))


def test_a_writer_behind_by_a_whole_batch_does_not_wait_to_gather_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gathering window is for a trickle of rows. With a full batch already queued the
    # writer takes it at once: sleeping a window per batch capped it at MAX_BATCH / 0.2 s =
    # 2,560 rows a second, below what the router serves at full load, so its queue grew.
    slept: list[float] = []
    monkeypatch.setattr(recorder.time, "sleep", slept.append)
    ledger = Ledger(make_settings({}), RouterEvents(), path=tmp_path / "l.sqlite3", power=None)
    for i in range(2 * recorder.MAX_BATCH + 10):
        ledger._queue.put(record(request_id=f"req-{i}"))
    first, second, rest = ledger._take(1.0), ledger._take(1.0), ledger._take(1.0)
    assert len(first) == len(second) == recorder.MAX_BATCH and len(rest) == 10
    assert slept == [recorder.BUSY_WINDOW_S]  # only before the last 10, gathering again


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    events = RouterEvents()
    ledger = Ledger(make_settings({}), events, path=tmp_path / "l.sqlite3", power=None).start()
    for i in range(300):
        events.request_finished.emit(record(request_id=f"req-{i}"))
    ledger.close()
    conn = schema.connect(tmp_path / "l.sqlite3")
    assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 300
    conn.close()


# -- pass-through: the upstream's bytes, the model renamed, usage read -------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAICloud, str]]:
    with fake_openai_cloud() as running:
        yield running


@pytest.fixture
def hybridge(upstream: tuple[FakeOpenAICloud, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[RouterService]:
    reset(upstream[0])
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with run_hybridge(cloud_settings("openai", {"base_url": f"{upstream[1]}/v1"}, "openai/gpt-4.1")) as service:
        yield service


def _events(service: RouterService, body: dict[str, Any]) -> tuple[int, list[bytes]]:
    url = f"{service.status().base_url}/chat/completions"
    with httpx.stream("POST", url, json=body, timeout=30) as response:
        raw = response.read()
    if response.status_code == 200 and b"[DONE]" in raw:
        # An event ends at a blank line: a `[DONE]` without one is never read by a client.
        assert raw.endswith(b"data: [DONE]\n\n")
    lines = [line for line in raw.replace(b"\r\n", b"\n").split(b"\n") if line.startswith(b"data:")]
    return response.status_code, lines


def test_an_openai_stream_passes_through_with_the_model_renamed_and_usage_recorded(
    hybridge: RouterService, upstream: tuple[FakeOpenAICloud, str]
) -> None:
    fake = upstream[0]
    fake.state.script = [Reply(text="one two three four five")]
    records = Records(hybridge)
    status, lines = _events(
        hybridge, {"model": "cloud", "messages": [{"role": "user", "content": "count"}], "stream": True}
    )
    assert status == 200 and lines[-1] == b"data: [DONE]"
    chunks = [orjson.loads(line[5:]) for line in lines[:-1]]
    # Every event is the fake's own (its id, `"usage": null` on each, as OpenAI writes them)
    # with only the model name changed to the one Hybridge answers as.
    assert {c["model"] for c in chunks} == {"openai/gpt-4.1"}
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"].startswith("chatcmpl-")
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "one two three four five"
    final = chunks[-1]
    assert final["choices"] == [] and final["usage"]["completion_tokens"] == 5
    rec = records.wait(1)[-1]
    # The ledger read usage from that final chunk (and asked for it, as before).
    assert rec.usage.output_tokens == 5 and rec.usage.input_tokens == final["usage"]["prompt_tokens"]
    assert rec.outcome == "ok" and rec.streamed and rec.ttft_s is not None
    _, sent = fake.state.requests[-1]
    assert sent["model"] == "gpt-4.1" and sent["stream_options"] == {"include_usage": True}


def test_an_error_event_in_a_passed_through_stream_ends_it_with_an_error(
    hybridge: RouterService, upstream: tuple[FakeOpenAICloud, str]
) -> None:
    upstream[0].state.script = [Reply(text="one two three four", error_after_chunks=2)]
    records = Records(hybridge)
    status, lines = _events(
        hybridge, {"model": "cloud", "messages": [{"role": "user", "content": "count"}], "stream": True}
    )
    assert status == 200 and b"data: [DONE]" not in lines
    last = orjson.loads(lines[-1][5:])
    assert last["error"]["type"] == "api_error" and last["error"]["message"]
    rec = records.wait(1)[-1]
    assert rec.outcome == "error" and rec.error_kind == "server"


# -- ready.step: batching what already arrived ------------------------------------------------


async def _collect(items: AsyncIterator[int]) -> list[list[int]]:
    """The items grouped the way the stream loop writes them: one group per suspension."""
    groups: list[list[int]] = [[]]
    while True:
        try:
            item, pending = step(items)
        except StopAsyncIteration:
            return [g for g in groups if g]
        if pending is not None:
            groups.append([])
            try:
                item = await pending
            except StopAsyncIteration:
                return [g for g in groups if g]
        assert item is not None
        groups[-1].append(item)


def test_step_groups_what_is_ready_and_keeps_order() -> None:
    async def source() -> AsyncIterator[int]:
        for burst in ([1, 2, 3], [4], [5, 6]):
            await asyncio.sleep(0.01)  # a socket read
            for item in burst:
                yield item

    assert asyncio.run(_collect(source())) == [[1, 2, 3], [4], [5, 6]]


def test_an_exception_thrown_into_a_pending_step_runs_the_iterators_cleanup() -> None:
    cleaned: list[str] = []

    async def source() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.sleep(10)
            yield 2
        finally:
            await asyncio.sleep(0)  # cleanup that awaits, as a response's aclose() does
            cleaned.append("closed")

    async def main() -> None:
        items = source()
        assert step(items) == (1, None)
        item, pending = step(items)
        assert item is None and pending is not None
        with pytest.raises(ConnectionResetError):
            await Thrown(pending, ConnectionResetError("client gone"))
        await items.aclose()

    asyncio.run(main())
    assert cleaned == ["closed"]


# -- pass-through: reads after the first are checked as the first is ---------------------

CHUNK = b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
USAGE = b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
SSE = "text/event-stream"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with garbage_rig(tmp_path_factory.mktemp("hot"), MemoryKeyring()) as running:
        yield running


def test_reads_after_the_first_pass_through_renamed_and_counted(rig: Rig) -> None:
    # Each piece its own read: every one renamed, usage read from the final chunk.
    pieces = [CHUNK % b"one", CHUNK % b"two", CHUNK % b"three", USAGE, b"data: [DONE]\n\n"]
    rig.upstream.script("/v1/chat/completions", pieces, content_type=SSE, pause_s=0.03)
    rows = rig.ledger_rows()
    response = rig.chat("oai", stream=True)
    assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
    events = sse_events(response.text)
    assert [e["choices"][0]["delta"]["content"] for e in events if e["choices"]] == ["one", "two", "three"]
    assert {e["model"] for e in events} == {"oai/m"}
    assert rig.wait_rows(rows + 1) == rows + 1 and rig.last_error_kind() is None


@pytest.mark.parametrize(
    "bad",
    [
        b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"cu\n\n',
        b"data: {nope\n\n",
        b'data: {"choices":[]}\n\ndata: oops\n\n',
        # Well framed, whole JSON, but not a chat.completion.chunk: type-checked in every read.
        b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":"x"}\n\n',
    ],
    ids=["cut-off", "not-json", "not-an-object", "wrong-shape"],
)
def test_a_broken_event_in_a_later_read_ends_the_stream_with_an_error(rig: Rig, bad: bytes) -> None:
    # Every read is type-checked (one msgspec call per batch): an event that is not a chunk
    # ends the stream with an error event after what came before it, and is never forwarded.
    rig.upstream.script("/v1/chat/completions", [CHUNK % b"one", bad, b"data: [DONE]\n\n"], content_type=SSE,
                        pause_s=0.05)  # fmt: skip
    rows = rig.ledger_rows()
    response = rig.chat("oai", stream=True)
    assert response.status_code == 200 and "[DONE]" not in response.text
    events = sse_events(response.text)
    assert events[0]["choices"][0]["delta"]["content"] == "one"
    assert "error" in events[-1] and "invalid answer" in events[-1]["error"]["message"]
    assert rig.wait_rows(rows + 1) == rows + 1 and rig.last_error_kind() == "upstream_invalid"


# -- the request log: off the loop, a burst per record -----------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, rec: logging.LogRecord) -> None:
        self.messages.append(rec.getMessage())


def test_request_lines_are_written_from_their_own_thread_a_burst_at_a_time() -> None:
    handler = _Lines()
    logger = logging.getLogger("hybridge.requests")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    events = RouterEvents()
    writer = request_log.attach(events)
    try:
        for i in range(20):  # a burst: inside one window
            events.request_finished.emit(record(request_id=f"r{i}", client=f"client-{i}/1.0", route="local"))
        writer.close()  # writes what is still queued
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [line for message in handler.messages for line in message.splitlines()]
    assert len(lines) == 20 and all(f" client-{i}/1.0 local " in lines[i] for i in range(20))
    assert len(handler.messages) < 20  # lines shared records


# -- in-flight requests: stopped from outside, on plain asyncio ---------------------------------


def test_a_stopped_block_absorbs_its_own_cancel_only() -> None:
    async def main() -> None:
        flights = InFlight()

        async def request() -> str | None:
            with flights.track("cloud") as item:
                await asyncio.sleep(10)
            return item.stopped

        task = asyncio.create_task(request())
        await asyncio.sleep(0.01)
        assert flights.count("cloud") == 1
        # From another thread, as the tray's switch does.
        threading.Thread(target=flights.stop_route, args=("cloud", "privacy on")).start()
        assert await asyncio.wait_for(task, 5) == "privacy on"
        assert flights.count() == 0 and task.cancelling() == 0

        # Stopped and cancelled by someone else too (the client left): the cancel propagates.
        task = asyncio.create_task(request())
        await asyncio.sleep(0.01)
        flights.stop_route("cloud", "privacy on")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        # Stopped after its block ended: nothing happens to the task.
        done = asyncio.Event()

        async def quick() -> None:
            with flights.track("cloud") as item:
                pass
            item.stop("late")
            await asyncio.sleep(0.02)
            done.set()

        await asyncio.wait_for(quick(), 5)
        assert done.is_set()

    asyncio.run(main())


# -- the prompt estimate: worked out once, carried on ------------------------------------------


def test_the_prompt_estimate_is_worked_out_once_and_carried_to_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings({
        "routing": {"local_model": "loc/m", "cloud_model": "openai/gpt-4.1"},
        "providers": {"loc": {"kind": "openai-local", "base_url": "http://127.0.0.1:9/v1"},
                      "openai": {"base_url": "http://127.0.0.1:9/v1"}},
    })  # fmt: skip
    runtime = Runtime(settings)
    # No content-length: routing cannot skip the walk, so it estimates (for the fit check).
    chat = parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": "数字 " * 400}]}, {})
    plan = asyncio.run(asyncio.wait_for(runtime.plan(chat), 10))
    assert plan.prompt_tokens is not None and chat.prompt_tokens == plan.prompt_tokens
    # A token per CJK character (characters ÷ 3 would say about 400).
    assert chat.prompt_tokens == estimate_prompt_tokens(chat.messages, chat.tools) > 800

    # The local provider's first turn of a session takes that figure instead of walking again.
    def walked(*_: Any) -> int:
        raise AssertionError("the history was walked a second time")

    monkeypatch.setattr(prompt_tokens, "estimate_prompt_tokens", walked)
    assert SessionTokens().estimate("s", chat.messages, chat.tools, known=chat.prompt_tokens) == chat.prompt_tokens


def test_request_ids_are_unique_and_sort_in_the_order_they_were_made() -> None:
    # The ledger's unique index on the id then grows at its right edge (helpers._RequestIds).
    ids = [new_request_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids) and all(i.startswith("req_") for i in ids)
    # A process started later sorts after this one.
    time.sleep(0.002)
    code = "from router_core.server.helpers import new_request_id; print(new_request_id())"
    later = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert later.stdout.strip() > ids[-1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_process_makes_request_ids_of_its_own() -> None:
    ids = [new_request_id() for _ in range(10)]
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    forked = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    # Without a fresh start the child would make the very id the parent makes next.
    assert forked.startswith("req_") and forked != new_request_id() and forked[:-8] != ids[0][:-8]


def test_serve_freezes_what_startup_made_and_collects_the_young_rarely() -> None:
    # What `hybridge serve` does once it listens (the tray app: the threshold only): startup's
    # objects out of the collector's way, young collections above what requests in flight hold.
    code = (
        "import gc; from router_core.collector import freeze_startup_objects, raise_young_threshold; "
        "before = gc.get_freeze_count(), gc.get_threshold(); freeze_startup_objects(); raise_young_threshold(); "
        "print(before[0], gc.get_freeze_count(), *before[1], *gc.get_threshold())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    before, after, *thresholds = map(int, done.stdout.split())
    assert before == 0 and after > 1000
    assert thresholds == [700, 10, 10, collector.YOUNG_THRESHOLD, 10, 10]


@pytest.mark.skipif(sys.platform != "linux", reason="threads are reniced on Linux only")
def test_the_ledger_writer_and_the_request_log_run_at_the_lowest_cpu_priority(tmp_path: Path) -> None:
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    events = RouterEvents()
    ledger = Ledger(make_settings({}), events, path=tmp_path / "l.sqlite3", power=None).start()
    log_writer = request_log.attach(events)
    events.request_finished.emit(record(request_id="req-nice"))  # starts the log's thread
    assert ledger.wait_written(1)
    try:
        threads = {t.name: t for t in threading.enumerate()}
        for name in ("hybridge-ledger", "hybridge-request-log"):
            native_id = threads[name].native_id
            assert native_id is not None
            assert os.getpriority(os.PRIO_PROCESS, native_id) == 19, name
        # Only they: the caller's thread (the event loop's, in a router) keeps its priority.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    finally:
        log_writer.close()
        ledger.close()
