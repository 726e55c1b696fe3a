"""`hybridge opencode` and `hybridge claude-code`: what they write, and what they leave alone."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from router_core import cli
from router_core.clients import opencode_config
from router_core.clients.claude_code import NO_TOKEN_PLACEHOLDER, claude_code_env
from router_core.clients.jsonc import Document, JsoncError, loads
from router_core.clients.model_limits import CLOUD_LIMITS, LOCAL_OUTPUT_CAP
from router_core.clients.opencode_config import (
    AgentRoute,
    OpenCodeConfigError,
    build_setup,
    config_file,
    edit,
    plan_for_folder,
    plan_opencode_update,
    write_opencode_update,
)
from router_core.inventory.hardware.info import GIB, GpuInfo, HardwareInfo
from router_core.inventory.machine import Inventory, InventorySnapshot
from router_core.ledger.prices import load_price_table
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.servers import ThreadedServer, make_settings

# A user's config: their own provider, comments of both kinds, trailing commas, a URL
# holding `//`, and a string holding `/*`.
USER_CONFIG = """{
  // My OpenCode settings -- do not lose this comment
  "$schema": "https://opencode.ai/config.json",
  "theme": "tokyonight", // a trailing comment
  "provider": {
    /* my own Ollama, used directly */
    "ollama": {
      "npm": "@ai-sdk/openai-compatible",
      "options": { "baseURL": "http://127.0.0.1:11434/v1" },
      "models": { "qwen3:8b": { "name": "not /* a comment */" } },
    },
  },
  "model": "ollama/qwen3:8b",
  "keybinds": { "leader": "ctrl+x" }
}
"""
COMMENTS = (
    "// My OpenCode settings -- do not lose this comment",
    "// a trailing comment",
    "/* my own Ollama, used directly */",
)


def settings(**sections: Any) -> Any:
    return make_settings({"routing": {"local_model": "ollama/qwen3-coder:30b"}, **sections})


def cloud_settings(**sections: Any) -> Any:
    return settings(
        providers={"openai": {"preset": "openai", "api_key": "env:HYBRIDGE_TEST_NO_SUCH_KEY"}},
        routing={"local_model": "ollama/qwen3-coder:30b", "cloud_model": "openai/gpt-4.1"},
        **sections,
    )


# --- the JSONC editor --------------------------------------------------------------------


def test_jsonc_reads_comments_trailing_commas_and_comment_like_strings() -> None:
    data = loads(USER_CONFIG)
    assert data["provider"]["ollama"]["options"]["baseURL"] == "http://127.0.0.1:11434/v1"
    assert data["provider"]["ollama"]["models"]["qwen3:8b"]["name"] == "not /* a comment */"
    assert data["keybinds"] == {"leader": "ctrl+x"}
    assert loads('{"a": "\\u00e9\\n", "b": [1, 2.5, true, null,], }') == {"a": "é\n", "b": [1, 2.5, True, None]}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{\n  "a": 1\n  "b": 2\n}', "line 3, column 3"),
        ('{"a": tru}', "line 1, column 7"),
        ('{"a": 1} x', "line 1, column 10"),
        ('{"a": "open', "line 1, column 7"),
        ("{/* never closed", "line 1, column 2"),
    ],
)
def test_jsonc_errors_name_the_line_and_column(text: str, where: str) -> None:
    with pytest.raises(JsoncError, match=where):
        loads(text)


def test_jsonc_edits_touch_only_what_changes() -> None:
    doc = Document(USER_CONFIG)
    assert doc.set(["theme"], "tokyonight") is False
    assert doc.text == USER_CONFIG
    assert doc.set(["keybinds", "leader"], "ctrl+a")
    assert doc.set(["provider", "extra", "options", "baseURL"], "http://x/v1")
    before = USER_CONFIG.splitlines()
    after = doc.text.splitlines()
    assert [line for line in before if line not in after] == ['  "keybinds": { "leader": "ctrl+x" }']
    assert doc.data()["provider"]["extra"] == {"options": {"baseURL": "http://x/v1"}}
    assert loads(doc.text) == doc.data()


def test_jsonc_keeps_windows_line_endings_and_tabs() -> None:
    text = '{\r\n\t"a": 1, // one\r\n\t"b": {}\r\n}\r\n'
    doc = Document(text)
    doc.merge(["b"], {"c": {"d": [1, 2]}})
    doc.set(["z"], True)
    assert "\n" not in doc.text.replace("\r\n", "")
    assert '\t"a": 1, // one\r\n' in doc.text
    assert '\r\n\t"z": true\r\n}' in doc.text
    assert loads(doc.text) == {"a": 1, "b": {"c": {"d": [1, 2]}}, "z": True}


# --- merging the provider ----------------------------------------------------------------


def test_merge_adds_hybridge_and_keeps_the_users_provider_keys_and_comments() -> None:
    new = edit(USER_CONFIG, build_setup(settings()))
    old_data, new_data = loads(USER_CONFIG), loads(new)
    for comment in COMMENTS:
        assert comment in new
    assert new_data["provider"]["ollama"] == old_data["provider"]["ollama"]
    assert new_data["theme"] == "tokyonight" and new_data["keybinds"] == {"leader": "ctrl+x"}
    assert new_data["model"] == "hybridge/auto" and new_data["small_model"] == "hybridge/local"
    hybridge = new_data["provider"]["hybridge"]
    assert hybridge["npm"] == "@ai-sdk/openai-compatible"
    assert hybridge["options"] == {"baseURL": "http://127.0.0.1:11435/v1"}
    assert set(hybridge["models"]) == {"auto", "local"}  # no cloud configured, so no `cloud`
    # Every line of the user's file is still there, in order (`model` changed value, and
    # the last member gained the comma before the new keys).
    kept = [line.rstrip(",") for line in USER_CONFIG.splitlines() if '"model"' not in line]
    remaining = iter(line.rstrip(",") for line in new.splitlines())
    assert all(any(line == other for other in remaining) for line in kept)


def test_merge_twice_is_the_same_as_once() -> None:
    setup = build_setup(cloud_settings(), agents=[AgentRoute.parse("plan=cloud"), AgentRoute.parse("rev=tag:review")])
    once = edit(USER_CONFIG, setup)
    assert edit(once, setup) == once
    assert edit(edit("", setup), setup) == edit("", setup)


def test_merge_refreshes_figures_but_keeps_names_the_user_chose() -> None:
    first = edit("", build_setup(settings()))
    doc = Document(first)
    doc.set(["provider", "hybridge", "models", "local", "name"], "My GPU")
    doc.set(["provider", "hybridge", "models", "local", "limit", "context"], 999)
    doc.set(["provider", "hybridge", "models", "local", "options"], {"hybridge_tags": ["ui-mock"]})
    again = loads(edit(doc.text, build_setup(settings(), port=9999)))
    local = again["provider"]["hybridge"]["models"]["local"]
    assert local["name"] == "My GPU"
    assert local["options"] == {"hybridge_tags": ["ui-mock"]}
    assert local["limit"]["context"] == 32768
    assert again["provider"]["hybridge"]["options"]["baseURL"] == "http://127.0.0.1:9999/v1"


def test_agent_mapping_writes_models_and_tags() -> None:
    routes = [AgentRoute.parse("plan=cloud"), AgentRoute.parse("review=tag:review,security")]
    data = loads(edit(USER_CONFIG, build_setup(cloud_settings(), agents=routes)))
    assert data["agent"] == {
        "plan": {"model": "hybridge/cloud"},
        "review": {"options": {"hybridge_tags": ["review", "security"]}},
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("plan", "expected NAME=auto|local|cloud"),
        ("plan=gpt-5", "the model is one of auto, local, cloud"),
        ("plan=tag:Not A Tag", "tags are lower-case"),
        ("../x=cloud", "is not an agent name"),
    ],
)
def test_bad_agent_mappings_are_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises(OpenCodeConfigError, match=message):
        AgentRoute.parse(spec)


def test_an_agent_cannot_go_to_a_cloud_that_is_not_configured() -> None:
    with pytest.raises(OpenCodeConfigError, match="no cloud model is configured"):
        build_setup(settings(), agents=[AgentRoute.parse("plan=cloud")])


# --- the figures: limits, capabilities, prices, token --------------------------------------


def test_without_an_inventory_the_limits_are_the_documented_defaults() -> None:
    setup = build_setup(settings(routing={"local_model": "ollama/qwen3-coder:30b", "local_context_tokens": 16384}))
    for model in ("auto", "local"):
        assert setup.models[model]["limit"] == {"context": 16384, "output": 4096}
        assert setup.models[model]["tool_call"] is True
        assert setup.models[model]["cost"] == {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}
    assert any("no inventory" in note for note in setup.notes)


@pytest.fixture
def ollama_with_models() -> Iterator[str]:
    fake = FakeOllama(
        "http://127.0.0.1:9",  # chat is never called here
        [
            FakeModel(
                "qwen3-coder:30b",
                family="qwen3moe",
                size=18 * GIB,
                context_length=262144,
                block_count=48,
                head_count_kv=4,
                key_length=128,
                value_length=128,
                embedding_length=2048,
                capabilities=["completion", "tools"],
            ),
            FakeModel("gemma3:270m"),  # lists no 'tools'
            FakeModel("huge:671b", size=400 * GIB, capabilities=["completion", "tools"]),
        ],
    )
    server = ThreadedServer(fake.app).start()
    try:
        yield server.url
    finally:
        server.stop()


async def snapshot_of(data: dict[str, Any]) -> InventorySnapshot:
    gpu = GpuInfo("nvidia", "RTX 4090", 24 * GIB, 23 * GIB)
    hardware = HardwareInfo("cpu", 8, 16, 64 * GIB, 48 * GIB, gpus=(gpu,))
    inventory = Inventory(make_settings(data), hardware_probe=lambda: hardware)
    try:
        return await inventory.refresh()
    finally:
        await inventory.aclose()


async def test_limits_and_tool_call_come_from_the_inventory(ollama_with_models: str) -> None:
    data = {
        "routing": {"local_model": "ollama/qwen3-coder:30b"},
        "providers": {"ollama": {"kind": "ollama", "base_url": ollama_with_models}},
    }
    snapshot = await snapshot_of(data)
    setup = build_setup(make_settings(data), snapshot=snapshot)
    usable = snapshot.usable_context("ollama", "qwen3-coder:30b")
    # Sized for this GPU: what fits beside 18 GiB of weights, far below the model's 262,144.
    assert usable is not None and 8192 < usable < 262144
    assert setup.models["local"]["limit"] == {"context": usable, "output": min(LOCAL_OUTPUT_CAP, usable // 4)}
    assert setup.models["local"]["tool_call"] is True
    assert setup.models["auto"]["limit"] == setup.models["local"]["limit"]

    data["routing"]["local_model"] = "ollama/gemma3:270m"
    setup = build_setup(make_settings(data), snapshot=snapshot)
    assert setup.models["local"]["tool_call"] is False
    assert setup.models["local"]["limit"]["context"] == snapshot.usable_context("ollama", "gemma3:270m") == 32768


async def test_a_model_too_big_for_the_machine_never_gets_a_zero_limit(ollama_with_models: str) -> None:
    data = {
        "routing": {"local_model": "ollama/huge:671b"},
        "providers": {"ollama": {"kind": "ollama", "base_url": ollama_with_models}},
    }
    snapshot = await snapshot_of(data)
    fit = snapshot.fit("ollama", "huge:671b")
    assert fit is not None and fit.verdict == "too_big" and fit.max_context == 0
    setup = build_setup(make_settings(data), snapshot=snapshot)
    assert setup.models["local"]["limit"]["context"] == 32768  # routing.local_context_tokens


def test_cloud_model_has_its_price_and_limits() -> None:
    setup = build_setup(cloud_settings())
    cloud = setup.models["cloud"]
    price = load_price_table(cloud_settings()).lookup("openai", "gpt-4.1")
    assert price is not None
    assert cloud["cost"] == {
        "input": price.rates.input,
        "output": price.rates.output,
        "cache_read": price.rates.cache_read,
        "cache_write": price.rates.cache_write,
    }
    assert cloud["limit"] == {"context": CLOUD_LIMITS["gpt-4.1"][0], "output": CLOUD_LIMITS["gpt-4.1"][1]}


def test_a_users_price_wins_and_an_unpriced_cloud_gets_no_cost() -> None:
    override = {"models": {"openai/gpt-4.1": {"input": 1.5, "output": 6.0}}}
    cost = build_setup(cloud_settings(pricing=override)).models["cloud"]["cost"]
    assert cost == {"input": 1.5, "output": 6.0, "cache_read": 1.5, "cache_write": 1.5}
    unpriced = make_settings(
        {
            "routing": {"local_model": "ollama/qwen3-coder:30b", "cloud_model": "lab/some-new-model"},
            "providers": {"lab": {"kind": "openai", "base_url": "https://lab.example/v1"}},
        }
    )
    setup = build_setup(unpriced)
    assert "cost" not in setup.models["cloud"]
    assert setup.models["cloud"]["limit"]["context"] > 0
    assert any("has no price" in note for note in setup.notes)


def test_max_output_caps_every_model() -> None:
    setup = build_setup(cloud_settings(), max_output=64)
    assert {m["limit"]["output"] for m in setup.models.values()} == {64}


def test_token_becomes_the_api_key_and_never_shows_in_the_diff(tmp_path: Path) -> None:
    token = "hbt_" + "s3cret" * 6
    path = tmp_path / "opencode.json"
    update = plan_opencode_update(path, build_setup(settings(), token=token))
    assert loads(update.new_text)["provider"]["hybridge"]["options"]["apiKey"] == token
    assert token not in update.diff and "<server token>" in update.diff


# --- files: choosing, backup, atomic write -------------------------------------------------


def test_an_existing_jsonc_file_is_preferred(tmp_path: Path) -> None:
    assert config_file(tmp_path) == tmp_path / "opencode.json"
    (tmp_path / "opencode.jsonc").write_text("{}")
    assert config_file(tmp_path) == tmp_path / "opencode.jsonc"


def test_write_makes_a_backup_and_a_second_write_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "opencode.jsonc"
    path.write_text(USER_CONFIG)
    setup = build_setup(settings())
    update = plan_opencode_update(path, setup)
    assert update.changed and update.diff.startswith(f"--- {path} (now)")
    backup = write_opencode_update(update)
    assert backup is not None and backup.read_text() == USER_CONFIG
    assert path.read_text() == update.new_text
    again = plan_opencode_update(path, setup)
    assert not again.changed and again.diff == ""
    assert write_opencode_update(again) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, backup.name])


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "opencode.json"
    path.write_text(USER_CONFIG)
    update = plan_opencode_update(path, build_setup(settings()))

    def crash(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write_opencode_update(update)
    assert path.read_text() == USER_CONFIG
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_file_changed_after_the_diff_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "opencode.json"
    path.write_text("{}")
    update = plan_opencode_update(path, build_setup(settings()))
    path.write_text('{"theme": "new"}')
    with pytest.raises(OpenCodeConfigError, match="changed since the diff was made"):
        write_opencode_update(update)
    assert path.read_text() == '{"theme": "new"}'


def test_a_broken_file_is_refused_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "opencode.json"
    path.write_text('{\n  "theme": "dark"\n  "model": "x"\n}')
    with pytest.raises(OpenCodeConfigError, match=r"opencode.json: not valid JSON\(C\): line 3, column 3"):
        plan_opencode_update(path, build_setup(settings()))


# --- the commands --------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hybridge.toml"
    path.write_text(tomli_w.dumps({"routing": {"local_model": "ollama/qwen3-coder:30b"}}))
    return path


def test_cli_write_twice_gives_the_same_file_as_once(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "opencode.jsonc").write_text(USER_CONFIG)
    args = ["opencode", "--project", str(project), "--no-inventory", "--config", str(config)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert '+    "hybridge": {' in out and "--write" in out
    assert (project / "opencode.jsonc").read_text() == USER_CONFIG  # not written without --write

    assert cli.main([*args, "--write", "--agent", "review=tag:review"]) == 0
    once = (project / "opencode.jsonc").read_text()
    assert "wrote" in capsys.readouterr().out
    assert cli.main([*args, "--write", "--agent", "review=tag:review"]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert (project / "opencode.jsonc").read_text() == once
    for comment in COMMENTS:
        assert comment in once
    assert loads(once)["provider"]["ollama"] == loads(USER_CONFIG)["provider"]["ollama"]
    assert len(list(project.glob("opencode.jsonc.*.bak"))) == 1


def test_cli_global_writes_the_xdg_config(tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cli.main(["opencode", "--global", "--no-inventory", "--write", "--config", str(config)]) == 0
    written = tmp_path / "xdg" / "opencode" / "opencode.json"
    assert loads(written.read_text())["model"] == "hybridge/auto"
    assert opencode_config.opencode_config_dir() == tmp_path / "xdg" / "opencode"


def test_cli_reports_a_broken_file_without_a_traceback(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "opencode.json").write_text("{ nope")
    assert cli.main(["opencode", "--project", str(tmp_path), "--no-inventory", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "not valid JSON(C): line 1, column 3" in err and "Traceback" not in err


def test_claude_code_env_points_at_the_messages_root() -> None:
    env = claude_code_env(cloud_settings(), port=4321, token="hbt_tok")
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4321"  # Claude Code appends /v1/messages
    assert env["ANTHROPIC_AUTH_TOKEN"] == "hbt_tok"
    assert (env["ANTHROPIC_DEFAULT_OPUS_MODEL"], env["ANTHROPIC_DEFAULT_SONNET_MODEL"]) == ("cloud", "auto")
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == env["ANTHROPIC_SMALL_FAST_MODEL"] == "local"
    assert claude_code_env(settings())["ANTHROPIC_DEFAULT_OPUS_MODEL"] == "auto"  # no cloud: opus stays local
    assert env["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0" and env["CLAUDE_CODE_SUBAGENT_MODEL"] == "auto"
    assert int(env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"]) == cloud_settings().routing.local_context_tokens


def test_claude_code_file_is_sourceable_and_private(tmp_path: Path, config: Path) -> None:
    path = tmp_path / "claude.sh"
    assert cli.main(["claude-code", "--write", str(path), "--port", "5555", "--config", str(config)]) == 0
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    shown = subprocess.run(
        ["/bin/sh", "-c", '. "$1" && env', "sh", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:5555" in shown
    assert f"ANTHROPIC_AUTH_TOKEN={NO_TOKEN_PLACEHOLDER}" in shown
    assert "ANTHROPIC_MODEL=sonnet" in shown and "ANTHROPIC_DEFAULT_SONNET_MODEL=auto" in shown
    assert "CLAUDE_STREAM_FIRST_BYTE_TIMEOUT_MS=600000" in shown


def test_the_tray_plans_and_writes_in_two_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    update = plan_for_folder(settings(), None, token="hbt_tray")
    assert update.path == tmp_path / "xdg" / "opencode" / "opencode.json" and update.old_text == ""
    assert write_opencode_update(update) is None  # no earlier file, so no backup
    assert loads(update.path.read_text())["provider"]["hybridge"]["options"]["apiKey"] == "hbt_tray"
    assert not plan_for_folder(settings(), None, token="hbt_tray").changed
