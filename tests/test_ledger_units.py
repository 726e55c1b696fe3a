"""The ledger's parts without a server: prices, costing, energy sharing, budgets, live
figures, the schema and its migrations."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from router_core.errors import SettingsError
from router_core.ledger import schema, store
from router_core.ledger.budget import BudgetAlerts, budget_state
from router_core.ledger.energy import EnergyMeter
from router_core.ledger.entry import make_entry
from router_core.ledger.live import LiveStats, PeriodFigures
from router_core.ledger.periods import PeriodTotals, day_bounds, month_bounds
from router_core.ledger.prices import PriceTable, baseline_ref, load_price_table, normalize, shipped_prices
from router_core.ledger.reports import parse_since
from router_core.records import LiveStreams, RequestRecord
from router_core.settings import BudgetSettings
from router_core.types import Usage
from tests.support.servers import make_settings


def record(**kw: object) -> RequestRecord:
    base: dict[str, object] = {
        "request_id": "req_1",
        "started_at": time.time(),
        "client": "test",
        "session": None,
        "requested_model": "auto",
        "api": "openai",
        "route": "cloud",
        "reason": "r",
        "provider": "openai",
        "model": "gpt-4.1",
        "streamed": True,
        "outcome": "ok",
        "usage": Usage(),
        "ttft_s": 0.1,
        "duration_s": 1.0,
    }
    base.update(kw)
    return RequestRecord(**base)  # type: ignore[arg-type]


class FixedPower:
    """A GPU's power reading (no GPU here): constant watts."""

    def __init__(self, watts: float) -> None:
        self.watts = watts

    def read_watts(self) -> float | None:
        return self.watts

    def close(self) -> None:
        pass


# -- prices ----------------------------------------------------------------------------


def test_every_shipped_price_is_dated_sourced_and_sane() -> None:
    prices = shipped_prices()
    assert len(prices) >= 30
    for key, price in prices.items():
        assert "/" in key, key
        assert price.as_of is not None and price.source, key
        r = price.rates
        assert 0 < r.input <= r.output, key
        assert r.cache_read <= r.input <= r.cache_write, key


@pytest.mark.parametrize(
    ("provider", "model", "key"),
    [
        ("anthropic", "claude-sonnet-4-6", "anthropic/claude-sonnet-4-6"),
        ("anthropic", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),  # dated id
        ("work-claude", "claude-opus-4-7", "anthropic/claude-opus-4-7"),  # any provider name: bare name
        ("openrouter", "anthropic/claude-sonnet-4.5", "anthropic/claude-sonnet-4-5"),  # OpenRouter spelling
        ("openrouter", "moonshotai/kimi-k2", "moonshotai/kimi-k2"),
        ("openai", "gpt-4o-2024-08-06", "openai/gpt-4o"),
        ("oai", "gpt-5.4", "openai/gpt-5.4"),
        ("anthropic", "claude-sonnet-4-0", "anthropic/claude-sonnet-4"),  # alias
        ("gemini", "gemini-3-pro-preview", "google/gemini-3-pro"),
        ("deepseek", "deepseek-v4-flash", "deepseek/deepseek-v4-flash"),
    ],
)
def test_lookup_finds_the_models_the_seeds_and_providers_name(provider: str, model: str, key: str) -> None:
    price = PriceTable(shipped_prices()).lookup(provider, model)
    assert price is not None and price.key == key


def test_unknown_models_are_unpriced_not_free() -> None:
    table = PriceTable(shipped_prices())
    assert table.lookup("groq", "llama-3.3-70b-versatile") is None
    entry = make_entry(record(provider="groq", model="llama-3.3-70b-versatile", usage=Usage(10, 10)), table,
                       "anthropic/claude-sonnet-4-6")  # fmt: skip
    assert entry.costing.cost_usd is None and entry.costing.savings_usd is None
    assert entry.costing.baseline_cost_usd == pytest.approx((10 * 3 + 10 * 15) / 1e6)


def test_normalize() -> None:
    assert normalize("GPT-4.1-2025-04-14") == "gpt-4-1"
    assert normalize("claude-3-5-haiku-latest") == "claude-3-5-haiku"


def test_cost_by_hand_with_cache_reads_writes_and_long_context() -> None:
    table = PriceTable(shipped_prices())
    sonnet = table.lookup("anthropic", "claude-sonnet-4-6")
    assert sonnet is not None
    # $3 input, $15 output, $0.30 cache read, $3.75 cache write per million.
    usage = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=20000, cache_write_tokens=4000)
    assert sonnet.cost(usage) == pytest.approx((1000 * 3 + 500 * 15 + 20000 * 0.30 + 4000 * 3.75) / 1e6)
    haiku55 = table.lookup("anthropic", "claude-haiku-5-5")
    assert haiku55 is not None
    short = Usage(input_tokens=100_000, output_tokens=10)
    long = Usage(input_tokens=100_001, output_tokens=10)
    assert haiku55.cost(short) == pytest.approx((100_000 * 0.10 + 10 * 0.50) / 1e6)
    assert haiku55.cost(long) == pytest.approx((100_001 * 0.50 + 10 * 2.50) / 1e6)


def test_user_prices_win_and_missing_cache_prices_bill_as_input() -> None:
    settings = make_settings(
        {"pricing": {"models": {"groq/llama-3.3-70b": {"input": 0.59, "output": 0.79}, "gpt-4.1": {
            "input": 1.0, "output": 2.0, "cache_read": 0.1}}}}
    )  # fmt: skip
    table = load_price_table(settings)
    llama = table.lookup("groq", "llama-3.3-70b")
    assert llama is not None and llama.rates.cache_read == 0.59 and llama.rates.cache_write == 0.59
    gpt = table.lookup("openai", "gpt-4.1")
    assert gpt is not None and gpt.rates.input == 1.0 and gpt.source == "settings"


def test_baseline_defaults_to_the_cloud_model_then_sonnet() -> None:
    assert baseline_ref(make_settings({})) == "anthropic/claude-sonnet-4-6"
    cloud = make_settings(
        {"routing": {"cloud_model": "oai/gpt-5.4"}, "providers": {"oai": {"kind": "openai", "base_url": "http://x"}}}
    )
    assert baseline_ref(cloud) == "oai/gpt-5.4"
    assert baseline_ref(make_settings({"pricing": {"baseline_model": "openai/gpt-5.5"}})) == "openai/gpt-5.5"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"pricing": {"baseline_model": "sonnet"}}, "pricing.baseline_model"),
        ({"pricing": {"electricity_price_per_kwh": -1}}, "pricing.electricity_price_per_kwh"),
        ({"budget": {"action": "explode"}}, "budget.action"),
        ({"budget": {"daily_usd": -5}}, "budget.daily_usd"),
        ({"pricing": {"models": {"x/y": {"input": 1}}}}, "pricing.models.x/y.output"),
    ],
)
def test_bad_ledger_settings_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(SettingsError) as info:
        make_settings(data)
    assert key in info.value.message


# -- energy ----------------------------------------------------------------------------


def test_energy_is_power_over_the_interval_shared_with_concurrent_local_requests() -> None:
    meter = EnergyMeter(FixedPower(300.0))
    for i in range(0, 41):  # a sample every 0.25 s over 10 s: 300 W, then 100 W from t=5
        meter.add_sample(1000.0 + i * 0.25, 300.0 if i < 20 else 100.0)
    # Alone over [1001, 1004]: 3 s at 300 W = 900 J = 0.25 Wh.
    assert meter.energy_wh(1001.0, 1004.0) == pytest.approx(0.25)
    # Across the step: 1 s at 300 W + 1 s at 100 W = 400 J.
    assert meter.energy_wh(1004.0, 1006.0) == pytest.approx(400 / 3600)
    # Another local request over [1002, 1003]: that second is shared in two.
    assert meter.energy_wh(1001.0, 1004.0, [(1002.0, 1003.0)]) == pytest.approx((900 - 150) / 3600)


def test_no_power_source_means_not_measured() -> None:
    meter = EnergyMeter(None)
    assert not meter.measured and meter.energy_wh(0.0, 10.0) is None


def test_local_entry_costs_electricity_and_savings_subtract_it() -> None:
    table = PriceTable(shipped_prices())
    usage = Usage(input_tokens=2000, output_tokens=1000)
    entry = make_entry(record(route="local", provider="ollama", model="qwen3", usage=usage), table,
                       "anthropic/claude-sonnet-4-6", energy_wh=2.0, price_per_kwh=0.30)  # fmt: skip
    baseline = (2000 * 3 + 1000 * 15) / 1e6
    assert entry.costing.cost_usd == 0.0
    assert entry.costing.energy_cost_usd == pytest.approx(0.0006)
    assert entry.costing.savings_usd == pytest.approx(baseline - 0.0006)


# -- budgets ---------------------------------------------------------------------------


def test_budget_warns_at_80_percent_once_and_exhausts_at_the_cap() -> None:
    settings = BudgetSettings(daily_usd=1.0, monthly_usd=10.0, action="refuse")
    alerts = BudgetAlerts()
    day = PeriodFigures("2026-11-22", spend_usd=0.79)
    month = PeriodFigures("2026-11", spend_usd=0.79)
    assert alerts.new_alerts(settings, day, month) == []
    assert not budget_state(settings, day, month).warning
    day = PeriodFigures("2026-11-22", spend_usd=0.85)
    [warning] = alerts.new_alerts(settings, day, month)
    assert (warning.level, warning.period) == ("warning", "day") and "85%" in warning.message
    assert alerts.new_alerts(settings, day, month) == []  # said once
    day = PeriodFigures("2026-11-22", spend_usd=1.02)
    [stop] = alerts.new_alerts(settings, day, month)
    assert stop.level == "exhausted" and "refused" in stop.message
    state = budget_state(settings, day, month)
    assert state.exhausted and state.action == "refuse" and state.period == "day"
    # A new day: the daily cap no longer binds, and may warn again.
    fresh = PeriodFigures("2026-11-23", spend_usd=0.9)
    assert not budget_state(settings, fresh, month).exhausted
    assert [a.level for a in alerts.new_alerts(settings, fresh, month)] == ["warning"]


def test_no_caps_never_exhaust() -> None:
    state = budget_state(BudgetSettings(), PeriodFigures("d", spend_usd=1e6), PeriodFigures("m", spend_usd=1e6))
    assert not state.exhausted and not state.warning


# -- live figures ----------------------------------------------------------------------


def test_live_tokens_per_second_window_and_per_stream() -> None:
    now = [102.0]
    streams = LiveStreams()
    live = LiveStats(clock=lambda: now[0], streams=streams)
    stream = streams.open("req_a", "local", "ollama/m")
    # 20 chunks from 100.1 s to 102.0 s, as the stream's own counters hold them.
    stream.chunks, stream.first_at, stream.last_at = 20, 100.1, 102.0
    snap = live.snapshot(PeriodFigures("d"), PeriodFigures("m"), False)
    assert snap.active_streams == 1
    assert snap.local_tokens_per_second == pytest.approx(20 / 10)
    [rate] = snap.streams
    assert rate.tokens == 20 and rate.tokens_per_second == pytest.approx(19 / 1.9)
    streams.close(stream)
    live.on_finished(record(request_id="req_b", route="cloud", streamed=False, usage=Usage(output_tokens=30)))
    now[0] += 5
    snap = live.snapshot(PeriodFigures("d"), PeriodFigures("m"), False)
    assert snap.active_streams == 0 and snap.cloud_tokens_per_second == pytest.approx(3.0)
    # The closed stream's 20 chunks counted once, still inside the window.
    assert snap.local_tokens_per_second == pytest.approx(20 / 10)
    now[0] += 10
    assert live.snapshot(PeriodFigures("d"), PeriodFigures("m"), False).tokens_per_second == 0


# -- periods ---------------------------------------------------------------------------


def test_period_bounds_are_local_midnights() -> None:
    at = time.mktime((2026, 12, 31, 15, 0, 0, 0, 0, -1))
    start, end = day_bounds(at)
    assert time.localtime(start)[:4] == (2026, 12, 31, 0) and time.localtime(end)[:3] == (2027, 1, 1)
    start, end = month_bounds(at)
    assert time.localtime(start)[:3] == (2026, 12, 1) and time.localtime(end)[:3] == (2027, 1, 1)


def test_totals_roll_over_at_midnight(tmp_path: Path) -> None:
    now = [time.mktime((2026, 11, 22, 23, 59, 0, 0, 0, -1))]
    totals = PeriodTotals(clock=lambda: now[0])
    table = PriceTable(shipped_prices())
    entry = make_entry(record(started_at=now[0], usage=Usage(1000, 100)), table, "openai/gpt-4.1")
    conn = schema.connect(tmp_path / "l.sqlite3")
    sums = store.insert_entries(conn, [entry], now=now[0])
    assert sums is not None
    totals.add(sums.today, sums.month)
    day, month = totals.current()
    assert day.requests == 1 and day.spend_usd == pytest.approx((1000 * 2 + 100 * 8) / 1e6)
    now[0] += 120  # 00:01 the next day
    day, month = totals.current()
    assert day.requests == 0 and day.period == "2026-11-23" and month.requests == 1


def test_since_parsing() -> None:
    now = time.mktime((2026, 11, 22, 12, 0, 0, 0, 0, -1))
    assert parse_since("24h", now) == now - 86400
    assert parse_since("today", now) == day_bounds(now)[0]
    assert parse_since("2026-11-01", now) == time.mktime((2026, 11, 1, 0, 0, 0, 0, 0, -1))
    with pytest.raises(Exception, match="--since"):
        parse_since("yesterday-ish", now)


# -- schema ----------------------------------------------------------------------------


def test_schema_is_versioned_wal_and_reopens_without_migrating_twice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = schema.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION
    entry = make_entry(record(tags=frozenset({"auth"})), PriceTable(shipped_prices()), "openai/gpt-4.1")
    store.insert_entry(conn, entry)
    conn.close()
    conn = schema.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert conn.execute("SELECT tag FROM request_tags").fetchall()[0][0] == "auth"
    conn.close()


def test_what_a_record_lacks_is_stored_as_null_and_the_rest_with_its_own_type(tmp_path: Path) -> None:
    # store.py registers an adapter for None (binding it without sqlite3's failed adapter
    # lookups); a None must still land as SQL NULL, not as text or 0.
    conn = schema.connect(tmp_path / "ledger.sqlite3")
    entry = make_entry(record(route="local", session=None, ttft_s=None), PriceTable(shipped_prices()), "nope/none")
    store.insert_entry(conn, entry)
    types = conn.execute(
        "SELECT typeof(session), typeof(ttft_s), typeof(error_kind), typeof(baseline_cost_usd), typeof(energy_wh), "
        "typeof(error), typeof(cost_usd), typeof(duration_s), typeof(client), typeof(streamed) FROM requests"
    ).fetchone()
    assert tuple(types) == ("null", "null", "null", "null", "null", "null", "real", "real", "text", "integer")
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
    conn.close()


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    schema.connect(path).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_version (version) VALUES (99)")
    raw.commit()
    raw.close()
    with pytest.raises(schema.LedgerError, match="newer"):
        schema.connect(path)


def test_a_file_that_is_not_a_ledger_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(schema.LedgerError, match="cannot open the ledger"):
        schema.connect(path)


# -- the Ledger's events (what the tray listens to) -----------------------------------


class Collect:
    def __init__(self) -> None:
        self.items: list[object] = []

    def add(self, item: object) -> None:
        self.items.append(item)


def test_ledger_publishes_entries_live_figures_and_closes_cleanly(tmp_path: Path) -> None:
    from router_core.events import RouterEvents
    from router_core.ledger.recorder import Ledger

    events = RouterEvents()
    entries, snapshots = Collect(), Collect()
    ledger = Ledger(make_settings({}), events, path=tmp_path / "l.sqlite3", power=FixedPower(200.0),
                    publish_interval_s=0.05)  # fmt: skip
    ledger.signals.entry_written.connect(entries.add)
    ledger.signals.live_stats.connect(snapshots.add)
    ledger.start()
    start = time.time()
    stream = events.streams.open("req_live", "local", "ollama/m")
    stream.add(30)
    # While the stream runs, live figures go out with it in them.
    deadline = time.monotonic() + 5
    while not any(getattr(s, "active_streams", 0) for s in snapshots.items) and time.monotonic() < deadline:
        time.sleep(0.01)
    running = next(s for s in snapshots.items if getattr(s, "active_streams", 0))
    assert running.local_tokens_per_second == pytest.approx(3.0) and running.electricity_measured
    events.request_finished.emit(
        record(request_id="req_live", route="local", provider="ollama", model="m", started_at=start,
               duration_s=time.time() - start, usage=Usage(input_tokens=50, output_tokens=30))
    )  # fmt: skip
    events.streams.close(stream)
    assert ledger.wait_written(1) and ledger.flush()
    [entry] = entries.items
    assert entry.record.request_id == "req_live" and entry.costing.energy_wh is not None  # type: ignore[attr-defined]
    today = ledger.snapshot().today
    assert today.requests == 1 and today.local_requests == 1 and today.electricity_unmeasured == 0
    ledger.close()
    # After close a late record is dropped (logged), never raised into the router.
    events.request_finished.emit(record(request_id="req_late"))
    conn = schema.connect(tmp_path / "l.sqlite3")
    assert [r[0] for r in conn.execute("SELECT request_id FROM requests")] == ["req_live"]
    conn.close()
