"""What the settings dialog's model pickers offer: local models from the inventory (what
Ollama has installed, best fit first) and cloud models of every cloud provider that can be
used here (the configured ones, and the presets usable by name alone), taken from the
models Hybridge can price (resources/prices.toml), plus Ollama's own cloud models.
"""

from __future__ import annotations

from router_core.inventory.fit import Verdict
from router_core.inventory.machine import InventorySnapshot
from router_core.ledger.prices import shipped_prices
from router_core.presets import PRESETS
from router_core.settings import Settings

# Where a verdict puts a model in the local picker: the ones that run well first.
_FIT_ORDER: dict[Verdict, int] = {"gpu": 0, "partial": 1, "cpu": 2, "too_big": 3, "cloud": 4}


def local_model_choices(settings: Settings, snapshot: InventorySnapshot | None) -> list[str]:
    """`<provider>/<model>` for every model an Ollama provider has installed here (not its
    cloud models), those that fit this machine first."""
    found: list[tuple[int, str]] = []
    if snapshot is None:
        return []
    for provider, status in snapshot.ollama.items():
        conf = settings.providers.get(provider)
        if conf is None or not conf.is_local:
            continue
        fits = snapshot.fits.get(provider, {})
        for model in status.models:
            if model.cloud:
                continue
            fit = fits.get(model.name)
            found.append((_FIT_ORDER[fit.verdict] if fit else 3, f"{provider}/{model.name}"))
    return [ref for _, ref in sorted(found, key=lambda pair: pair[0])]


def _preset_models(preset: str, vendor_models: dict[str, list[str]]) -> list[str]:
    vendor = PRESETS[preset].vendor
    if vendor == "*":
        return [f"{v}/{m}" for v, models in vendor_models.items() for m in models]
    return vendor_models.get(vendor, [])


def cloud_model_choices(settings: Settings, snapshot: InventorySnapshot | None = None) -> list[str]:
    """`<provider>/<model>` for the cloud picker: each configured cloud provider made from a
    preset (by its name or `preset = "..."`), then the presets not configured (usable by name
    alone), then the cloud models the local Ollama lists. Configured providers without a
    preset have no known model list: the field stays editable for them."""
    vendor_models: dict[str, list[str]] = {}
    for key in shipped_prices():
        vendor, _, model = key.partition("/")
        vendor_models.setdefault(vendor, []).append(model)
    choices: list[str] = []
    configured = [(name, conf) for name, conf in settings.providers.items() if not conf.is_local]
    for name, conf in configured:
        preset = conf.preset or (name if name in PRESETS else "")
        if preset:
            choices += [f"{name}/{m}" for m in _preset_models(preset, vendor_models)]
    for preset in PRESETS:
        if preset not in settings.providers and PRESETS[preset].vendor not in ("", "*"):
            choices += [f"{preset}/{m}" for m in _preset_models(preset, vendor_models)]
    if snapshot is not None:
        for provider, status in snapshot.ollama.items():
            choices += [f"{provider}/{m.name}" for m in status.models if m.cloud]
    return list(dict.fromkeys(choices))
