"""Issue 14: `/api/show` is read once per model per Ollama server, whether the provider (a
request before the first inventory round) or the inventory asks first, over real sockets
against the Ollama test engine (tests/support/fake_ollama.py records every /api/show)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from router_core.inventory.ollama_inventory import OllamaInventory
from router_core.inventory.shown_models import ShownModels
from router_core.providers.http import default_transport
from router_core.providers.ollama import OllamaProvider
from router_core.settings import ContextSettings
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.servers import ThreadedServer

MODELS = ["gemma3:270m", "qwen3:8b"]


@pytest.fixture
def engine() -> Iterator[tuple[FakeOllama, str]]:
    # No chat here: the engine never starts a runner.
    fake = FakeOllama(models=[FakeModel(name, capabilities=["completion", "tools"]) for name in MODELS])
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


def _pair(url: str) -> tuple[OllamaProvider, OllamaInventory]:
    shown = ShownModels()
    provider = OllamaProvider("ollama", url, context=ContextSettings(), transport=default_transport(), shown=shown)
    return provider, OllamaInventory(url, transport=default_transport(), shown=shown)


async def test_the_provider_asks_first_and_the_inventory_reuses_its_answer(engine: tuple[FakeOllama, str]) -> None:
    fake, url = engine
    provider, inventory = _pair(url)
    details = await provider.details("gemma3:270m")
    assert details is not None and details.max_context == 32768
    status = await inventory.refresh()
    assert fake.state.shows.count("gemma3:270m") == 1
    assert fake.state.shows.count("qwen3:8b") == 1  # the inventory read the one the provider had not
    shown = status.model("gemma3:270m")
    assert shown is not None and shown.details is not None and shown.details.capabilities == ("completion", "tools")
    await inventory.refresh()  # a later round reads nothing again
    assert sorted(fake.state.shows) == sorted(MODELS)
    await provider.aclose()
    await inventory.aclose()


async def test_the_inventory_asks_first_and_the_provider_reuses_its_answer(engine: tuple[FakeOllama, str]) -> None:
    fake, url = engine
    provider, inventory = _pair(url)
    await inventory.refresh()
    assert sorted(fake.state.shows) == sorted(MODELS)
    details = await provider.details("qwen3:8b")  # before use_inventory: the shared answer serves
    assert details is not None and details.max_context == 32768
    assert sorted(fake.state.shows) == sorted(MODELS)
    await provider.aclose()
    await inventory.aclose()


async def test_a_model_pulled_anew_is_asked_about_again(engine: tuple[FakeOllama, str]) -> None:
    fake, url = engine
    provider, inventory = _pair(url)
    await provider.details("gemma3:270m")
    await inventory.refresh()
    model = fake.state.models["gemma3:270m"]
    model.context_length, model.revision = 8192, 1  # `ollama pull` brought a new build of the name
    status = await inventory.refresh()
    assert fake.state.shows.count("gemma3:270m") == 2
    shown = status.model("gemma3:270m")
    assert shown is not None and shown.details is not None and shown.details.max_context == 8192
    await provider.aclose()
    await inventory.aclose()
