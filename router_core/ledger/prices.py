"""Model prices: resources/prices.toml, with the user's `[pricing.models]` on top.

A price is USD per million tokens. A model found nowhere has no price: callers show it as
"unpriced", never as $0.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from router_core.errors import SettingsError
from router_core.settings import PriceOverride, Settings
from router_core.types import Usage

DEFAULT_BASELINE = "anthropic/claude-sonnet-4-6"
PER_TOKENS = 1_000_000
_FOUND_KEPT = 1024  # lookups remembered (PriceTable.lookup)
_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def normalize(model_id: str) -> str:
    """The form ids are matched in: lower case, "." read as "-", no date or -latest suffix."""
    name = model_id.strip().lower().replace(".", "-")
    name = name.removesuffix("-latest")
    return _DATE_SUFFIX.sub("", name)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def cost(self, usage: Usage) -> float:
        # Reasoning tokens are part of output_tokens (both OpenAI and Anthropic bill them so).
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
        ) / PER_TOKENS


@dataclass(frozen=True, slots=True)
class Price:
    key: str
    rates: Rates
    as_of: date | None = None
    source: str = ""
    # Prompts above `long_above` tokens pay `long_rates` on every token of the request.
    long_above: int | None = None
    long_rates: Rates | None = None
    aliases: tuple[str, ...] = ()

    def cost(self, usage: Usage) -> float:
        if self.long_rates is not None and self.long_above is not None and usage.prompt_tokens > self.long_above:
            return self.long_rates.cost(usage)
        return self.rates.cost(usage)


def _rates(entry: Mapping[str, Any]) -> Rates:
    base = float(entry["input"])
    read = entry.get("cache_read")
    write = entry.get("cache_write")
    return Rates(
        input=base,
        output=float(entry["output"]),
        cache_read=base if read is None else float(read),
        cache_write=base if write is None else float(write),
    )


def _price(key: str, entry: Mapping[str, Any]) -> Price:
    long = entry.get("long_context")
    as_of = entry.get("as_of")
    return Price(
        key=key,
        rates=_rates(entry),
        as_of=as_of if isinstance(as_of, date) else None,
        source=str(entry.get("source", "")),
        long_above=int(long["above"]) if long else None,
        long_rates=_rates(long) if long else None,
        aliases=tuple(str(a) for a in entry.get("aliases", ())),
    )


def shipped_prices() -> dict[str, Price]:
    """Every entry of resources/prices.toml."""
    source = resources.files("router_core.resources").joinpath("prices.toml")
    try:
        models: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8")).get("models", {})
        return {key: _price(key, entry) for key, entry in models.items()}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise SettingsError([f"{source}: the price list cannot be read ({type(exc).__name__}: {exc})"]) from None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SettingsError([f"{source}: the price list has a bad entry ({type(exc).__name__}: {exc})"]) from None


def override_prices(overrides: Mapping[str, PriceOverride]) -> dict[str, Price]:
    return {key: _price(key, o.model_dump(exclude_none=True) | {"source": "settings"}) for key, o in overrides.items()}


class PriceTable:
    """Looks up the price of `<provider>/<model>`; None means unpriced."""

    def __init__(self, shipped: Mapping[str, Price], overrides: Mapping[str, Price] | None = None) -> None:
        self._overrides = {normalize(k): p for k, p in (overrides or {}).items()}
        self._exact = {normalize(k): p for k, p in shipped.items()}
        bare: dict[str, set[str]] = {}
        by_key = dict(shipped)
        for key, price in shipped.items():
            for name in (key.rpartition("/")[2], *price.aliases):
                bare.setdefault(normalize(name), set()).add(key)
        # A bare name two vendors share is ambiguous: it matches neither.
        self._bare = {name: by_key[next(iter(keys))] for name, keys in bare.items() if len(keys) == 1}
        self._found: dict[tuple[str, str], Price | None] = {}

    def lookup(self, provider: str, model: str) -> Price | None:
        # The table never changes and a router sees few distinct models: remember answers.
        key = (provider, model)
        try:
            return self._found[key]
        except KeyError:
            pass
        price = self._lookup(provider, model)
        if len(self._found) >= _FOUND_KEPT:
            self._found.clear()
        self._found[key] = price
        return price

    def _lookup(self, provider: str, model: str) -> Price | None:
        name = normalize(model)
        full = normalize(f"{provider}/{model}") if provider else name
        for table, key in (
            (self._overrides, full),
            (self._overrides, name),
            (self._exact, full),
            (self._exact, name),
            (self._bare, name.rpartition("/")[2]),
        ):
            price = table.get(key)
            if price is not None:
                return price
        return None

    def lookup_ref(self, ref: str) -> Price | None:
        """The price of a `<provider>/<model>` reference such as the baseline model."""
        provider, _, model = ref.partition("/")
        return self.lookup(provider, model)


def load_price_table(settings: Settings) -> PriceTable:
    return PriceTable(shipped_prices(), override_prices(settings.pricing.models))


def baseline_ref(settings: Settings) -> str:
    """The model savings are measured against: the setting, else the cloud model, else Sonnet."""
    return settings.pricing.baseline_model or settings.routing.cloud_model or DEFAULT_BASELINE
