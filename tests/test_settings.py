from pathlib import Path

import pytest

from router_core.errors import SettingsError
from router_core.settings import load, ollama_base_url, update_user_file


def test_shipped_defaults_are_valid(tmp_path: Path) -> None:
    settings = load(None)
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 11435
    assert settings.routing.local_model.startswith("ollama/")


def test_user_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[server]\nport = 12000\n[providers.lms]\nkind = "openai-local"\nbase_url = "http://127.0.0.1:1234/v1"\n'
    )
    settings = load(path)
    assert settings.server.port == 12000
    assert settings.server.host == "127.0.0.1"
    assert settings.providers["lms"].is_local
    assert "ollama" in settings.providers


def test_every_bad_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[server]\nport = "x"\nbogus = 1\n[routing]\nlocal_model = "nope"\n')
    with pytest.raises(SettingsError) as info:
        load(path)
    text = info.value.message
    assert "server.port" in text
    assert "server.bogus" in text


def test_model_reference_must_name_a_known_provider(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[routing]\nlocal_model = "missing/m"\n')
    with pytest.raises(SettingsError, match=r"routing.local_model: no provider named 'missing'"):
        load(path)


def test_a_key_in_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[providers.openai]\nkind = "openai"\nbase_url = "https://api.openai.com/v1"\napi_key = "sk-live-123"\n'
    )
    with pytest.raises(SettingsError, match=r"providers\.openai: api_key must be a reference"):
        load(path)


def test_invalid_toml_is_a_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[server\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load(path)


def test_update_writes_atomically_and_refuses_bad_changes(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    update_user_file(path, {"server": {"port": 12001}})
    assert "port = 12001" in path.read_text()
    with pytest.raises(SettingsError):
        update_user_file(path, {"server": {"port": -1}})
    assert "port = 12001" in path.read_text()
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        ("", {}, "http://127.0.0.1:11434"),
        ("", {"OLLAMA_HOST": "0.0.0.0"}, "http://127.0.0.1:11434"),
        ("", {"OLLAMA_HOST": "127.0.0.1:5000"}, "http://127.0.0.1:5000"),
        # envconfig/config.go Host(): a written scheme brings its default port.
        ("", {"OLLAMA_HOST": "https://ollama.lan"}, "https://ollama.lan:443"),
        ("", {"OLLAMA_HOST": "http://ollama.lan"}, "http://ollama.lan:80"),
        ("", {"OLLAMA_HOST": "https://ollama.lan:8443"}, "https://ollama.lan:8443"),
        ("", {"OLLAMA_HOST": " ollama.lan "}, "http://ollama.lan:11434"),
        ("", {"OLLAMA_HOST": "[::1]:7000"}, "http://[::1]:7000"),
        ("http://127.0.0.1:9999", {"OLLAMA_HOST": "127.0.0.1:5000"}, "http://127.0.0.1:9999"),
    ],
)
def test_ollama_address(configured: str, env: dict[str, str], expected: str) -> None:
    assert ollama_base_url(configured, env) == expected
