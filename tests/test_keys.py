"""API keys: the lookup order, and `hybridge keys set|delete|list` (in-memory keyring only)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from router_core.cli import main
from router_core.errors import UpstreamError
from router_core.keys import KEYRING_SERVICE, KeySource
from tests.support.memory_keyring import MemoryKeyring

SECRET = "sk-ant-test-secret-5f4e3d2c1b"


def test_lookup_order_and_refresh(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    source = KeySource("anthropic", "", "ANTHROPIC_API_KEY")
    assert source.get() == "from-env"  # nothing in the keyring yet: the preset's variable
    memory_keyring.set_password(KEYRING_SERVICE, "anthropic", "from-keyring")
    assert source.get() == "from-env"  # cached until the upstream rejects it
    source.forget()
    assert source.get() == "from-keyring"  # the keyring comes first

    explicit = KeySource("work", "env:WORK_KEY", "ANTHROPIC_API_KEY")
    with pytest.raises(UpstreamError) as caught:
        explicit.get()  # an explicit reference is the only place looked at
    assert caught.value.kind == "auth"
    assert caught.value.message == "work: no API key; set the environment variable WORK_KEY"
    monkeypatch.setenv("WORK_KEY", "w")
    assert explicit.get() == "w"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str, str]:
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(args)
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        "[providers.anthropic]\n"
        '[providers.work]\npreset = "anthropic"\napi_key = "keyring:work-anthropic"\n'
        '[providers.ci]\npreset = "openai"\napi_key = "env:CI_OPENAI_KEY"\n'
    )
    return path


def test_set_list_delete(
    config: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_OPENAI_KEY", raising=False)
    code, out, _ = run_cli(["keys", "set", "anthropic", "--config", str(config)], capsys, SECRET + "\n")
    assert code == 0 and SECRET not in out
    assert memory_keyring.entries == {(KEYRING_SERVICE, "anthropic"): SECRET}

    # A provider with its own `keyring:NAME` reference stores under that name.
    code, _, _ = run_cli(["keys", "set", "work", "--config", str(config)], capsys, "sk-work\n")
    assert code == 0 and memory_keyring.entries[(KEYRING_SERVICE, "work-anthropic")] == "sk-work"

    code, out, _ = run_cli(["keys", "list", "--config", str(config)], capsys)
    assert code == 0
    assert out.splitlines() == [
        "anthropic: set (OS keyring, entry 'anthropic')",
        "work: set (OS keyring, entry 'work-anthropic')",
        "ci: missing (looked in $CI_OPENAI_KEY)",
    ]
    assert SECRET not in out and "sk-work" not in out

    code, out, _ = run_cli(["keys", "delete", "anthropic", "--config", str(config)], capsys)
    assert code == 0 and (KEYRING_SERVICE, "anthropic") not in memory_keyring.entries
    code, _, err = run_cli(["keys", "delete", "anthropic", "--config", str(config)], capsys)
    assert code == 1 and "no key for anthropic" in err


def test_set_reads_without_echo_on_a_terminal(
    config: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return SECRET

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", Terminal())
    assert main(["keys", "set", "groq", "--config", str(config)]) == 0  # a preset name needs no table
    assert prompts == ["API key for groq (not shown): "]
    assert memory_keyring.entries[(KEYRING_SERVICE, "groq")] == SECRET
    assert SECRET not in capsys.readouterr().out


def test_clear_errors(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["keys", "set", "ci", "--config", str(config)], capsys, "x\n")
    assert code == 1 and "reads its key from the environment variable CI_OPENAI_KEY" in err
    code, _, err = run_cli(["keys", "set", "nobody", "--config", str(config)], capsys, "x\n")
    assert code == 1 and "no provider named 'nobody'" in err and "anthropic" in err
    code, _, err = run_cli(["keys", "set", "anthropic", "--config", str(config)], capsys, "\n")
    assert code == 1 and "no key given" in err

    keyring.set_keyring(fail.Keyring())
    code, _, err = run_cli(["keys", "set", "anthropic", "--config", str(config)], capsys, SECRET + "\n")
    assert code == 1 and "cannot write to the OS keyring" in err and 'api_key = "env:VAR"' in err
    assert SECRET not in err


@pytest.mark.e2e  # runs a hybridge command as a subprocess
def test_keys_command_runs_headless(config: Path) -> None:
    # A subprocess: conftest points it at keyring's "fail" backend, so the real keyring is never used.
    done = subprocess.run(
        [sys.executable, "-m", "router_core", "keys", "list", "anthropic", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ANTHROPIC_API_KEY": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "anthropic: missing (looked in keyring entry anthropic or $ANTHROPIC_API_KEY)"
