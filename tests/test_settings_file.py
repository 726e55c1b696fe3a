"""The settings file: one writer that keeps what the user wrote, and one set of defaults.

The writer (router_core/settings.py `update_user_file`, over router_core/toml_edit.py) is
what the privacy switch, `hybridge token`, `hybridge privacy` and the settings dialog
(app/settings_form.py `apply_user_changes`) all write through. The defaults are the
pydantic models; resources/default_config.toml documents them, and must say the same.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from app.settings_form import apply_user_changes
from router_core.errors import SettingsError
from router_core.settings import Settings, load, shipped_defaults, update_user_file, validate
from router_core.toml_edit import edit_toml

USER_FILE = """\
# My Hybridge settings: keep this note.

[server]
port = 12001   # the port my agents use

[routing]
# The big model at work.
local_model = "ollama/qwen3-coder:30b"
heavy_tags = [
  "schema",   # databases
  "auth",
]
conventions = { "**/payments/**" = "billing", 'lib/*.sql' = "schema" }

[providers.groq]
kind = "openai"            # an OpenAI-compatible cloud
base_url = "https://api.groq.com/openai/v1"

[privacy]
enabled = false
"""


def test_a_change_keeps_the_users_comments_layout_and_quoting(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    settings = update_user_file(path, {"privacy": {"enabled": True}, "server": {"port": 12002}})
    assert settings.privacy.enabled and settings.server.port == 12002
    expected = USER_FILE.replace("port = 12001   #", "port = 12002   #").replace(
        "[privacy]\nenabled = false", "[privacy]\nenabled = true"
    )
    assert path.read_text() == expected


def test_new_sections_and_keys_are_added_and_the_rest_stays(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    update_user_file(
        path,
        {
            "budget": {"daily_usd": 2.5},
            "routing": {"conventions": {"**/infra/**": "security"}, "ui_tags": ("design",)},
        },
    )
    text = path.read_text()
    assert text.startswith(USER_FILE.split("[providers.groq]")[0].split("conventions =")[0])
    assert "# The big model at work." in text and "# databases" in text and "# an OpenAI-compatible cloud" in text
    data = tomllib.loads(text)
    assert data["budget"] == {"daily_usd": 2.5}
    assert data["routing"]["ui_tags"] == ["design"]
    # The inline table gained the key, in its own style (quotes as the user wrote them).
    assert (
        """conventions = { "**/payments/**" = "billing", 'lib/*.sql' = "schema", "**/infra/**" = "security"}""" in text
    )
    assert load(path).routing.conventions["**/infra/**"] == "security"


def test_removals_delete_keys_and_the_tables_they_empty(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    settings = update_user_file(
        path,
        {"routing": {"conventions": {"**/*.sql": ""}}},
        [("providers", "groq"), ("routing", "conventions", "**/payments/**"), ("budget", "not-there")],
    )
    text = path.read_text()
    assert "groq" not in text and "[providers" not in text and "payments" not in text
    assert "# My Hybridge settings: keep this note." in text and "# the port my agents use" in text
    assert "groq" not in settings.providers and "**/payments/**" not in settings.routing.conventions
    assert settings.routing.conventions["**/*.sql"] == ""


def test_dotted_keys_are_edited_where_they_stand() -> None:
    text = '# top\nrouting.local_model = "ollama/a"  # mine\nserver.port = 1\n'
    edited = edit_toml(text, {"routing": {"local_model": "ollama/b"}})
    assert edited == '# top\nrouting.local_model = "ollama/b"  # mine\nserver.port = 1\n'


def test_nothing_is_written_when_the_result_is_invalid_or_the_file_broken(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    with pytest.raises(SettingsError) as refused:
        update_user_file(path, {"routing": {"cloud_model": "nobody/x"}}, [("server", "port")])
    assert refused.value.problems == ["routing.cloud_model: no provider named 'nobody'"]
    assert path.read_text() == USER_FILE
    path.write_text("[server\nport = 1\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        update_user_file(path, {"privacy": {"enabled": True}})
    assert path.read_text() == "[server\nport = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_a_missing_file_is_created_holding_only_the_change(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    update_user_file(path, {"privacy": {"enabled": True}})
    assert tomllib.loads(path.read_text()) == {"privacy": {"enabled": True}}


def test_the_settings_dialog_writes_through_the_same_writer(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    apply_user_changes(path, {"budget": {"warn_at": 0.5}}, [("providers", "groq")])
    text = path.read_text()
    assert "# The big model at work." in text and "[budget]\nwarn_at = 0.5\n" in text and "groq" not in text


# -- one set of defaults -----------------------------------------------------------------


def _documented(model: type[BaseModel], table: dict[str, Any], where: str) -> list[str]:
    """Fields of `model` that the shipped file leaves out, and keys it has that `model` lacks."""
    problems = [f"{where}{name}: not in default_config.toml" for name in model.model_fields if name not in table]
    problems += [f"{where}{key}: not a setting" for key in table if key not in model.model_fields]
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(table.get(name), dict):
            problems += _documented(annotation, table[name], f"{where}{name}.")
    return problems


def test_settings_alone_are_valid_and_are_the_shipped_defaults() -> None:
    # The models are the defaults; the shipped file documents them and says the same.
    assert Settings() == validate(shipped_defaults())
    assert Settings().providers["ollama"].kind == "ollama"
    assert Settings().routing.local_model.startswith("ollama/")


def test_the_shipped_file_documents_every_setting_and_nothing_else() -> None:
    assert _documented(Settings, shipped_defaults(), "") == []


def test_the_shipped_file_is_the_one_the_package_loads() -> None:
    shipped = resources.files("router_core.resources").joinpath("default_config.toml").read_text()
    repo = (Path(__file__).resolve().parent.parent / "resources" / "default_config.toml").read_text()
    assert shipped == repo
