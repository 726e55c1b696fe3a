"""A ledger row: one finished request with its cost, baseline cost, energy and savings."""

from __future__ import annotations

from dataclasses import dataclass

from router_core.ledger.prices import PriceTable
from router_core.records import RequestRecord
from router_core.types import Usage

WH_PER_KWH = 1000.0
OLLAMA_CLOUD_KEY = "ollama-cloud"
OLLAMA_CLOUD_NOTE = "Ollama cloud (subscription)"


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, three
# times slower, and the ledger's writer makes one Costing and one LedgerEntry per request
# while holding the GIL the event loop needs. Nothing changes them after they are made.
@dataclass(slots=True)
class Costing:
    """What one request cost; None wherever a price or a measurement is missing."""

    cost_usd: float | None  # None: the model is unpriced
    price_key: str | None
    baseline_model: str
    baseline_cost_usd: float | None  # None: the baseline model is unpriced
    energy_wh: float | None  # None: not measured (always None for cloud requests)
    energy_cost_usd: float | None
    # Why a route has no per-token cost (OLLAMA_CLOUD_NOTE); None otherwise.
    price_note: str | None = None
    # The usage the baseline was priced on (its cache split: ledger/baseline.py).
    baseline_usage: Usage | None = None
    energy_estimated: bool = False

    @property
    def savings_usd(self) -> float | None:
        """Baseline − actual − local electricity (electricity counts only where measured)."""
        if self.cost_usd is None or self.baseline_cost_usd is None:
            return None
        return self.baseline_cost_usd - self.cost_usd - (self.energy_cost_usd or 0.0)


@dataclass(slots=True)
class LedgerEntry:
    record: RequestRecord
    costing: Costing
    decode_tps: float | None

    @property
    def is_local(self) -> bool:
        return self.record.route == "local"

    @property
    def is_cloud(self) -> bool:
        return self.record.route == "cloud"


# A decode rate is shown only for answers long enough to measure one. Below 16 tokens an
# engine's own figure is dominated by its first-token and scheduling overheads; a rate from
# our clock also needs 0.25 s of decoding, because a cloud answer arrives in network-sized
# bursts (dozens of tokens per read) and a sub-second window then reads as thousands of
# tokens/sec. A non-streamed answer arrives whole: our clock cannot time its decoding at all.
MIN_RATE_TOKENS = 16
MIN_RATE_SECONDS = 0.25


def decode_rate(record: RequestRecord) -> float | None:
    """Decode tokens/sec: the engine's own figure, else output over the time after the first
    token of a stream; None for an answer too short to measure (MIN_RATE_TOKENS, MIN_RATE_SECONDS)."""
    if record.usage.output_tokens < MIN_RATE_TOKENS:
        return None
    if record.usage.decode_tokens_per_second:
        return record.usage.decode_tokens_per_second
    if record.ttft_s is None or not record.streamed:
        return None
    decode_s = record.duration_s - record.ttft_s
    # The first token arrives at TTFT; the rest are decoded after it.
    return (record.usage.output_tokens - 1) / decode_s if decode_s >= MIN_RATE_SECONDS else None


class Pricer:
    """Costs finished requests. Local tokens cost nothing; their electricity is counted apart.

    An Ollama cloud request is paid by the user's Ollama subscription: no per-token cost,
    no baseline, never savings. Made once per batch of rows: the baseline's price and the
    settings every row shares are looked up once, not per row (the ledger's writer prices
    rows while holding the GIL the event loop needs)."""

    __slots__ = ("baseline", "baseline_model", "energy_estimated", "price_per_kwh", "prices")

    def __init__(
        self, prices: PriceTable, baseline_model: str, price_per_kwh: float = 0.0, *, energy_estimated: bool = False
    ) -> None:
        self.prices = prices
        self.baseline_model = baseline_model
        self.baseline = prices.lookup_ref(baseline_model)
        self.price_per_kwh = price_per_kwh
        self.energy_estimated = energy_estimated

    def costing(
        self,
        record: RequestRecord,
        energy_wh: float | None = None,
        baseline_usage: Usage | None = None,
        ollama_cloud: bool = False,
    ) -> Costing:
        """`baseline_usage`: the usage to price the baseline on (with its prompt-cache split);
        default the request's own."""
        usage = record.usage
        if record.route == "cloud":
            if ollama_cloud:
                return Costing(
                    None, OLLAMA_CLOUD_KEY, self.baseline_model, None, None, None, price_note=OLLAMA_CLOUD_NOTE
                )
            price = self.prices.lookup(record.provider, record.model)
            cost = price.cost(usage) if price else None
            key = price.key if price else None
            energy_wh = None
        else:
            # Local (and requests no candidate ran): no token price.
            cost, key = 0.0, None
        priced_on = baseline_usage or usage
        return Costing(
            cost,
            key,
            self.baseline_model,
            self.baseline.cost(priced_on) if self.baseline else None,
            energy_wh,
            energy_wh / WH_PER_KWH * self.price_per_kwh if energy_wh is not None else None,
            None,
            priced_on,
            self.energy_estimated and energy_wh is not None,
        )

    def entry(
        self,
        record: RequestRecord,
        energy_wh: float | None = None,
        baseline_usage: Usage | None = None,
        ollama_cloud: bool = False,
    ) -> LedgerEntry:
        return LedgerEntry(record, self.costing(record, energy_wh, baseline_usage, ollama_cloud), decode_rate(record))


def price_record(
    record: RequestRecord,
    prices: PriceTable,
    baseline_model: str,
    energy_wh: float | None,
    price_per_kwh: float,
    *,
    baseline_usage: Usage | None = None,
    ollama_cloud: bool = False,
    energy_estimated: bool = False,
) -> Costing:
    """Cost one finished request (Pricer.costing)."""
    pricer = Pricer(prices, baseline_model, price_per_kwh, energy_estimated=energy_estimated)
    return pricer.costing(record, energy_wh, baseline_usage, ollama_cloud)


def make_entry(
    record: RequestRecord,
    prices: PriceTable,
    baseline_model: str,
    energy_wh: float | None = None,
    price_per_kwh: float = 0.0,
    *,
    baseline_usage: Usage | None = None,
    ollama_cloud: bool = False,
    energy_estimated: bool = False,
) -> LedgerEntry:
    pricer = Pricer(prices, baseline_model, price_per_kwh, energy_estimated=energy_estimated)
    return pricer.entry(record, energy_wh, baseline_usage, ollama_cloud)
