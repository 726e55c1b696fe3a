"""Settings that lead somewhere (issue 19, item 4), without Qt: a preset provider usable by
its name alone, every bad key named in one pass, the cloud model pickers filled from the
presets, a cloud model whose provider has no key named with the fix, and the real call
(against the fake clouds of tests/fakes/) that proves a key before the first run stores it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings_form import check_user_changes
from router_core.errors import SettingsError
from router_core.key_check import missing_keys, verify_key
from router_core.model_choices import cloud_model_choices, local_model_choices
from router_core.presets import PRESETS
from router_core.settings import load
from tests.fakes import fake_anthropic, fake_openai_cloud
from tests.support.servers import ThreadedServer, make_settings

OPENAI_FIX = "store one with `hybridge keys set openai` or set OPENAI_API_KEY"


@pytest.fixture(autouse=True)
def no_vendor_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own vendor variables must not count as keys here."""
    for preset in PRESETS.values():
        monkeypatch.delenv(preset.key_env, raising=False)


def test_a_preset_is_usable_by_its_name_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[routing]\ncloud_model = "openai/gpt-5"\nheavy_model = "anthropic/claude-opus-4-7"\n')
    settings = load(path)
    openai, anthropic = settings.providers["openai"], settings.providers["anthropic"]
    assert (openai.kind, openai.base_url, openai.preset) == ("openai", "https://api.openai.com/v1", "openai")
    assert (anthropic.kind, anthropic.base_url) == ("anthropic", "https://api.anthropic.com")
    # Nothing else is brought in: a preset nobody names stays out.
    assert "groq" not in settings.providers


def test_every_bad_key_is_named_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[server]\nport = "x"\nbogus = 1\n'
        '[routing]\ncloud_model = "nope"\nheavy_model = "mycloud/big"\nlocal_model = "openai/gpt-5"\n'
    )
    with pytest.raises(SettingsError) as caught:
        load(path)
    assert caught.value.problems == [
        "server.port: must be a whole number",
        "server.bogus: unknown setting (check the spelling against the shipped config)",
        "routing.local_model: must name a local provider",
        "routing.cloud_model: 'nope' is not '<provider>/<model>'",
        "routing.heavy_model: no provider named 'mycloud'",
    ]


def test_the_model_reference_problems_alone_are_all_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[routing]\ncloud_model = "nope"\nui_model = "mycloud/x"\nfallback_chain = ["a/b"]\n')
    with pytest.raises(SettingsError) as caught:
        load(path)
    assert caught.value.problems == [
        "routing.cloud_model: 'nope' is not '<provider>/<model>'",
        "routing.ui_model: no provider named 'mycloud'",
        "routing.fallback_chain[0]: no provider named 'a'",
    ]


def test_a_cloud_model_without_a_key_is_named_with_the_fix(memory_keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings({"routing": {"cloud_model": "openai/gpt-5", "heavy_model": "ollama/qwen3:30b-a3b"}})
    refs = settings.routing.model_refs()
    assert missing_keys(refs, settings.providers) == [f"routing.cloud_model: openai has no API key: {OPENAI_FIX}"]
    # A key typed in the dialog (stored on saving) counts; so do the keyring and the variable.
    assert missing_keys(refs, settings.providers, typed={"openai"}) == []
    memory_keyring.set_password("hybridge", "openai", "sk-test-keyring-0123456789")
    assert missing_keys(refs, settings.providers) == []
    memory_keyring.delete_password("hybridge", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-variable-0123456789")
    assert missing_keys(refs, settings.providers) == []


def test_the_dialog_check_names_validation_problems_and_missing_keys(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[budget]\ndaily_usd = 5.0\n")
    assert check_user_changes(config, {"routing": {"cloud_model": "anthropic/claude-sonnet-4-6"}}) == [
        "routing.cloud_model: anthropic has no API key: "
        "store one with `hybridge keys set anthropic` or set ANTHROPIC_API_KEY"
    ]
    assert check_user_changes(config, {"routing": {"cloud_model": "anthropic/x"}}, typed_keys={"anthropic"}) == []
    both = check_user_changes(config, {"server": {"port": 70000}, "routing": {"cloud_model": "mycloud/x"}})
    assert both == [
        "server.port: must be less than or equal to 65535",
        "routing.cloud_model: no provider named 'mycloud'",
    ]
    # Nothing is written by a check.
    assert config.read_text() == "[budget]\ndaily_usd = 5.0\n"


def test_cloud_pickers_come_from_the_presets_and_the_price_list() -> None:
    settings = make_settings({"providers": {"router": {"preset": "openrouter"}}})
    choices = cloud_model_choices(settings)
    # Every preset with models of its own, usable by name alone; the configured OpenRouter
    # under its own name, with OpenRouter's `<vendor>/<model>` ids.
    for ref in ("openai/gpt-5", "anthropic/claude-sonnet-4-6", "gemini/gemini-2.5-pro", "deepseek/deepseek-v4-flash"):
        assert ref in choices
    assert "router/anthropic/claude-sonnet-4-6" in choices and choices.index("router/openai/gpt-5") < choices.index(
        "openai/gpt-5"
    )
    assert not any(c.startswith(("ollama/", "groq/", "openrouter/")) for c in choices)
    assert len(choices) == len(set(choices))


def test_local_picker_lists_installed_models_best_fit_first() -> None:
    from router_core.inventory.fit import FitBudget, fit_all
    from router_core.inventory.machine import InventorySnapshot
    from router_core.inventory.ollama_inventory import OllamaModel, OllamaStatus
    from tests.support.app_shell import fake_gpu_hardware

    def model(name: str, gib: float, cloud: bool = False) -> OllamaModel:
        return OllamaModel(name=name, size_bytes=int(gib * 2**30), cloud=cloud)

    status = OllamaStatus(
        base_url="http://127.0.0.1:11434",
        up=True,
        models=(model("big:70b", 40), model("gpt-oss:120b-cloud", 0, cloud=True), model("small:7b", 4.5)),
    )
    hardware = fake_gpu_hardware()
    fits = {"ollama": fit_all(status, hardware, FitBudget(2**30, 2 * 2**30, 8192, 2048, 65536))}
    snapshot = InventorySnapshot(hardware, {"ollama": status}, fits)
    settings = make_settings({})
    assert local_model_choices(settings, snapshot) == ["ollama/small:7b", "ollama/big:70b"]
    # Ollama's own cloud models are offered as cloud models, not local ones.
    assert "ollama/gpt-oss:120b-cloud" in cloud_model_choices(settings, snapshot)


@pytest.fixture
def openai_cloud() -> tuple[fake_openai_cloud.FakeOpenAICloud, str]:
    fake = fake_openai_cloud.FakeOpenAICloud()
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


def test_a_key_is_proved_by_a_real_call_before_it_counts(openai_cloud, memory_keyring) -> None:
    _, url = openai_cloud
    settings = make_settings({"providers": {"openai": {"preset": "openai", "base_url": f"{url}/v1"}}})
    problem, models = verify_key(settings, "openai", "sk-wrong-key-0123456789abcdef")
    assert models == [] and problem == (
        "openai rejected the API key (HTTP 401); set it with `hybridge keys set openai`"
    )
    assert "sk-wrong" not in problem
    assert verify_key(settings, "openai", fake_openai_cloud.API_KEY) == ("", list(fake_openai_cloud.MODELS))
    # A test call never stores anything by itself (the app stores a key once it is proved).
    assert memory_keyring.get_password("hybridge", "openai") is None


def test_privacy_mode_refuses_the_test_call(openai_cloud) -> None:
    fake, url = openai_cloud
    settings = make_settings({"providers": {"openai": {"preset": "openai", "base_url": f"{url}/v1"}}})
    problem, _ = verify_key(settings, "openai", fake_openai_cloud.API_KEY, privacy=True)
    assert problem.startswith("privacy mode is on")
    assert fake.state.requests == []


def test_an_anthropic_key_is_proved_on_its_model_list() -> None:
    fake = fake_anthropic.FakeAnthropic()
    server = ThreadedServer(fake.app).start()
    try:
        settings = make_settings({"providers": {"anthropic": {"preset": "anthropic", "base_url": server.url}}})
        assert verify_key(settings, "anthropic", fake_anthropic.API_KEY) == ("", list(fake_anthropic.MODELS))
        problem, _ = verify_key(settings, "anthropic", "sk-ant-wrong-0123456789")
        assert problem == "anthropic rejected the API key (HTTP 401); set it with `hybridge keys set anthropic`"
    finally:
        server.stop()
