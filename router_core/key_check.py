"""Cloud keys as settings see them: which model references name a cloud provider with no
key (the settings dialog refuses those, naming the fix), and the real call that proves a
key works before the first-run step stores it.

Keys are looked up exactly as the providers look them up (router_core/keys.py: the
provider's `api_key` reference, else the keyring under its name, else its preset's
variable). Nothing here returns, logs or stores a key in a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping

from router_core.errors import UpstreamError
from router_core.keys import KeySource, find_key, how_to_set
from router_core.presets import PRESETS, preset_env
from router_core.providers.anthropic import AnthropicProvider
from router_core.providers.base import Provider
from router_core.providers.http import TransportFactory, default_transport
from router_core.providers.openai_compat import OpenAICompatProvider
from router_core.redact import redact
from router_core.settings import ProviderSettings, Settings


def key_fix(name: str, conf: ProviderSettings) -> str:
    """What to run to give provider `name` a key."""
    return how_to_set(name, conf.api_key, preset_env(conf.preset))


def has_key(name: str, conf: ProviderSettings) -> bool:
    return find_key(name, conf.api_key, preset_env(conf.preset))[0] is not None


def preset_provider(name: str) -> ProviderSettings | None:
    """The provider a preset's name alone brings (Settings._presets_by_name); None: no such preset."""
    return ProviderSettings.model_validate({"preset": name}) if name in PRESETS else None


def missing_keys(
    refs: Iterable[tuple[str, str]], providers: Mapping[str, ProviderSettings], typed: Collection[str] = ()
) -> list[str]:
    """One line per model reference (routing key, `<provider>/<model>`) whose cloud provider
    has no key, naming the fix. `providers`: as the settings will be (a preset named only in a
    reference counts as configured); `typed`: providers whose key the user has just entered
    (the settings dialog stores it once the settings are saved)."""
    problems: list[str] = []
    for key, ref in refs:
        provider = ref.partition("/")[0]
        conf = providers.get(provider) or preset_provider(provider)
        if not ref or conf is None or conf.is_local or provider in typed:
            continue
        if not has_key(provider, conf):
            problems.append(f"routing.{key}: {provider} has no API key: {key_fix(provider, conf)}")
    return problems


class _GivenKey(KeySource):
    """A key typed by the user, used for one test call before it is stored."""

    def __init__(self, provider: str, key: str) -> None:
        super().__init__(provider)
        self._given = key

    def get(self) -> str:
        return self._given

    def forget(self) -> None:
        pass


def _provider(name: str, conf: ProviderSettings, key: str, transport_factory: TransportFactory) -> Provider:
    given = _GivenKey(name, key)
    # A model list answers in well under a minute, or the key cannot be judged.
    read_timeout_s = min(conf.read_timeout_s, 30.0)
    if conf.kind == "anthropic":
        return AnthropicProvider(
            name, conf.base_url, key=given, transport=transport_factory(),
            connect_timeout_s=conf.connect_timeout_s, read_timeout_s=read_timeout_s,
        )  # fmt: skip
    return OpenAICompatProvider(
        name, conf.base_url, is_local=conf.is_local, transport=transport_factory(), key=given,
        vendor=(conf.preset or name) if conf.kind == "openai" else "",
        connect_timeout_s=conf.connect_timeout_s, read_timeout_s=read_timeout_s,
    )  # fmt: skip


async def verify_key_async(
    settings: Settings,
    provider: str,
    key: str,
    transport_factory: TransportFactory = default_transport,
    *,
    privacy: bool | None = None,
) -> tuple[str, list[str]]:
    """("", the models it lists) when the key works, else (what went wrong, []).

    The test is the provider's model list (OpenAI `GET /models`, Anthropic `GET /v1/models`):
    a real authenticated call that costs no tokens. Privacy mode refuses it (nothing leaves
    the machine), as it would every cloud call; `privacy`: the live switch, when the caller
    knows it (else the settings' value).
    """
    conf = settings.providers.get(provider) or preset_provider(provider)
    if conf is None:
        return f"no provider named '{provider}'", []
    if conf.is_local:
        return f"{provider} is a local provider: it needs no key", []
    if settings.privacy.enabled if privacy is None else privacy:
        return "privacy mode is on: nothing leaves this machine, so the key cannot be tested", []
    if not key.strip():
        return "no key given", []
    upstream = _provider(provider, conf, key.strip(), transport_factory)
    try:
        models = await upstream.list_models()
    except UpstreamError as exc:
        return redact(exc.message), []
    finally:
        await upstream.aclose()
    return "", [m.name for m in models]


def verify_key(
    settings: Settings,
    provider: str,
    key: str,
    transport_factory: TransportFactory = default_transport,
    *,
    privacy: bool | None = None,
) -> tuple[str, list[str]]:
    """verify_key_async for a caller without an event loop (a worker thread of the app)."""
    return asyncio.run(verify_key_async(settings, provider, key, transport_factory, privacy=privacy))
