"""Every `hybridge` subcommand piped into `head -1` (and into a pipe nobody reads) ends
without a Python traceback: a reader that leaves is no error (BrokenPipe included)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from router_core.cli import COMMAND_MODULES
from tests.support.servers import free_port

# Runs our own commands as subprocesses (conftest: e2e, not in the fast suite).
pytestmark = pytest.mark.e2e

HYBRIDGE = [sys.executable, "-m", "router_core"]
# Each subcommand as a person runs it, plus --help for each (router_core/cli.py COMMAND_MODULES).
# `serve` and plain `hybridge` run until stopped: the serve test below and
# tests/test_cli_no_display.py pipe those.
COMMANDS = [
    ["--help"], ["--version"],
    ["doctor"], ["doctor", "--json"], ["doctor", "--help"],
    ["stats"], ["stats", "--csv"], ["stats", "--help"],
    ["privacy", "status"], ["privacy", "--help"],
    ["keys", "list"], ["keys", "--help"],
    ["token", "show"], ["token", "--help"],
    ["rate", "good"], ["rate", "--help"],
    ["opencode", "--no-inventory"], ["opencode", "--help"],
    ["claude-code"], ["claude-code", "--help"],
    ["explain", "--help"], ["explain", "auto"],
    ["desktop", "--help"],
    ["serve", "--help"],
    ["setup", "--help"], ["setup", "opencode", "--no-inventory"], ["setup", "claude-code"],
    ["setup", "codex", "--no-inventory"], ["setup", "aider", "--no-inventory"],
    ["setup", "qwen-code", "--no-inventory"], ["setup", "ollama"],
]  # fmt: skip


def test_every_subcommand_is_piped() -> None:
    """A new subcommand cannot be left out of the pipe tests below."""
    named = {args[0].replace("-", "_") for args in COMMANDS if not args[0].startswith("-")}
    assert set(COMMAND_MODULES) <= named, set(COMMAND_MODULES) - named


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # Ollama is down (nothing listens there) and there is no display: the slowest, wordiest paths.
    out = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out["OLLAMA_HOST"] = f"127.0.0.1:{free_port()}"
    out["HOME"] = str(tmp_path)
    return out


def _config(tmp_path: Path) -> list[str]:
    config = tmp_path / "config.toml"
    config.write_text(f"[server]\nport = {free_port()}\n")
    return ["--config", str(config)]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "(tray)")
def test_piped_into_head(args: list[str], env: dict[str, str], tmp_path: Path) -> None:
    full = [*HYBRIDGE, *_config(tmp_path), *args]
    errors = tmp_path / "stderr.txt"
    # A shell pipeline, as a person types it; PIPESTATUS keeps hybridge's own exit status.
    script = f"{shlex.join(full)} 2>{shlex.quote(str(errors))} | head -1; exit ${{PIPESTATUS[0]}}"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=90)
    first, proc.stderr = proc.stdout, errors.read_text()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert first or proc.stderr.strip(), "neither output nor a message"


@pytest.mark.parametrize("args", [a for a in COMMANDS if a != ["explain", "auto"]], ids=" ".join)
def test_into_a_closed_pipe(args: list[str], env: dict[str, str], tmp_path: Path) -> None:
    """The reader is gone before the first byte: every write fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [*HYBRIDGE, *_config(tmp_path), *args], stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=90
        )
    finally:
        os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


def test_serve_into_head_keeps_serving_without_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    read, write = os.pipe()
    serve = subprocess.Popen(
        [*HYBRIDGE, *_config(tmp_path), "serve", "--port", "0"],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    os.close(write)
    head = subprocess.run(["head", "-1"], stdin=read, capture_output=True, text=True, timeout=30)
    os.close(read)
    assert "serving on" in head.stdout
    try:
        # The checklist block after that line hits the closed pipe; the router must still serve.
        import httpx

        url = head.stdout.rsplit(" ", 1)[1].strip().removesuffix("/v1")
        for _ in range(50):
            if serve.poll() is not None:
                break
            try:
                assert httpx.get(f"{url}/health", timeout=2).json()["status"] == "ok"
                break
            except httpx.HTTPError:
                continue
        assert serve.poll() is None
    finally:
        serve.terminate()
        _, err = serve.communicate(timeout=15)
    assert "Traceback" not in err, err
