"""The tray app ends cleanly on SIGTERM (logout, `kill`, a service manager) and SIGINT (Ctrl+C):
exit code 0, the router stopped, and the ledger closed (SQLite removes the -wal file only when
the last connection closes cleanly; a killed process leaves it behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX signals")]


def start_app(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    config = tmp_path / "config.toml"
    ledger = tmp_path / "ledger.sqlite3"
    config.write_text(f'[server]\nport = {port}\n[ledger]\npath = "{ledger}"\n')
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "OLLAMA_HOST": "http://127.0.0.1:9",  # nothing there: the router runs without a local model
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "router_core", "--config", str(config)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_serving(process: subprocess.Popen[str], url: str, ledger: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(url, timeout=2).status_code == 200 and Path(f"{ledger}-wal").exists():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the app did not start serving")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_quits_the_app_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/health"
    ledger = tmp_path / "ledger.sqlite3"
    process = start_app(tmp_path, port)
    try:
        wait_until_serving(process, url, ledger)
        sent = time.monotonic()
        process.send_signal(sig)
        _, err = process.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert took < 10
    assert ledger.exists() and not Path(f"{ledger}-wal").exists()  # closed, not abandoned
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
