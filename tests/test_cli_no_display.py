"""Plain `hybridge` where there is no desktop, and `hybridge serve` on a port already taken:
what a person reads, and that the router still serves (no-display) or stops cleanly (port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from router_core.cli import NO_DISPLAY_HINT, has_display
from tests.support.cli import HybridgeProcess
from tests.support.servers import free_port

HYBRIDGE = [sys.executable, "-m", "router_core"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["OLLAMA_HOST"] = f"127.0.0.1:{free_port()}"
    env["HOME"] = str(tmp_path)
    return env


def test_has_display() -> None:
    assert not has_display({}, "linux")
    assert has_display({"DISPLAY": ":0"}, "linux") and has_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert has_display({}, "darwin") and has_display({}, "win32")


@pytest.mark.e2e  # runs a hybridge command as a subprocess
def test_plain_hybridge_without_a_display_says_so_and_serves_headless(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"[server]\nport = {port}\n")
    proc = subprocess.Popen(
        [*HYBRIDGE, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert proc.stderr.readline().strip() == NO_DISPLAY_HINT
        assert f"serving on http://127.0.0.1:{port}/v1" in proc.stdout.readline()
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0 and "Traceback" not in err


@pytest.mark.e2e  # runs a hybridge command as a subprocess
def test_help_says_what_no_command_does() -> None:
    out = subprocess.run([*HYBRIDGE, "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "With no command, hybridge starts the tray app" in " ".join(out.split())
    assert "exits 0 unless something is broken" in " ".join(out.split())


@pytest.mark.e2e  # runs a hybridge command as a subprocess
def test_serve_on_a_port_held_by_another_program_names_it(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(f"[server]\nport = {port}\n")
    try:
        proc = subprocess.run(
            [*HYBRIDGE, "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=60,
        )
    finally:
        holder.close()
    # This test process holds it: its PID and name are what the message must give.
    assert proc.returncode == 1
    assert f"port {port} is used by PID {os.getpid()} (" in proc.stderr, proc.stderr
    assert "pick another port in Settings" in proc.stderr and "Errno" not in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.e2e  # runs a hybridge command as a subprocess
def test_serve_when_hybridge_already_runs_there(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    with HybridgeProcess(config, env=_env(tmp_path)) as first:
        port = int(first.base_url.removesuffix("/v1").rsplit(":", 1)[1])
        second_config = tmp_path / "second.toml"
        second_config.write_text(f"[server]\nport = {port}\n")
        assert first.process is not None
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        except httpx.HTTPError:
            raise AssertionError(f"{first.base_url} {first.process.poll()} {first.stop()}") from None
        started = time.monotonic()
        proc = subprocess.run(
            [*HYBRIDGE, "serve", "--config", str(second_config)],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=20,
        )
    assert proc.returncode == 1 and time.monotonic() - started < 30
    assert "another Hybridge (" in proc.stderr and f"is already running at http://127.0.0.1:{port}" in proc.stderr
