"""Build the provider objects that settings describe."""

from __future__ import annotations

from collections.abc import Mapping

from router_core.inventory.shown_models import ShownModels
from router_core.keys import KeySource
from router_core.presets import preset_env
from router_core.providers.anthropic import AnthropicProvider
from router_core.providers.base import Provider
from router_core.providers.http import TransportFactory, default_transport
from router_core.providers.ollama import OllamaProvider
from router_core.providers.openai_compat import OpenAICompatProvider
from router_core.settings import Settings, ollama_base_url


def build_providers(
    settings: Settings,
    transport_factory: TransportFactory = default_transport,
    shown: Mapping[str, ShownModels] | None = None,
) -> dict[str, Provider]:
    """`shown`: per Ollama provider, the /api/show answers it shares with its inventory reader."""
    providers: dict[str, Provider] = {}
    for name, conf in settings.providers.items():
        timeouts = {"connect_timeout_s": conf.connect_timeout_s, "read_timeout_s": conf.read_timeout_s}
        if conf.kind == "ollama":
            providers[name] = OllamaProvider(
                name,
                ollama_base_url(conf.base_url),
                context=settings.context,
                transport=transport_factory(),
                shown=(shown or {}).get(name),
                **timeouts,
            )
        elif conf.kind in ("openai-local", "openai"):
            # A local server needs a key only when one is configured; a cloud always does.
            needs_key = conf.kind == "openai" or bool(conf.api_key)
            providers[name] = OpenAICompatProvider(
                name,
                conf.base_url,
                is_local=conf.is_local,
                transport=transport_factory(),
                key=KeySource(name, conf.api_key, preset_env(conf.preset)) if needs_key else None,
                connect_timeout_s=conf.connect_timeout_s,
                read_timeout_s=conf.read_timeout_s,
                vendor=(conf.preset or name) if conf.kind == "openai" else "",
            )
        elif conf.kind == "anthropic":
            providers[name] = AnthropicProvider(
                name,
                conf.base_url,
                key=KeySource(name, conf.api_key, preset_env(conf.preset)),
                transport=transport_factory(),
                prompt_cache=conf.prompt_cache,
                default_max_tokens=settings.context.default_output_tokens,
                **timeouts,
            )
    return providers
