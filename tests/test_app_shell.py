"""The app shell: the tray menu's actions (copy endpoint, pause/resume, Set up OpenCode),
history from the ledger on start, and `hybridge` itself as a single instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from PySide6.QtGui import QGuiApplication

from app.single_instance import server_name
from tests.conftest import local_settings
from tests.support.app_shell import chat, running_shell
from tests.support.fake_ollama import VERSION

pytestmark = pytest.mark.real_model


def test_menu_lines_copy_pause_and_resume(qtbot, fake_ollama, tmp_path: Path) -> None:
    with running_shell(qtbot, local_settings(fake_ollama.url), tmp_path) as shell:
        tray, bridge = shell.tray, shell.bridge
        # The dashboard's first-run checklist runs in the background once the router serves;
        # the menu offers it while steps are left. Read the menu once it has arrived (before,
        # this test passed only while the checks were slower than the menu).
        qtbot.waitUntil(lambda: tray.first_run is not None, timeout=10_000)
        assert tray.first_run is not None
        left = [c.step for c in tray.first_run.checks if c.state == "todo"]
        # Ollama runs with routing.local_model pulled: at most the agent set-up is left (the
        # tests' config dir is empty; Claude Code's settings are read from $HOME).
        assert left in ([], ["agent"])
        first_run_line = [f"Finish first run ({len(left)} steps left)…"] if left else []
        tray.rebuild_menu()
        texts = [a.text() for a in tray.menu.actions() if a.text()]
        assert texts[0] == f"Serving at {bridge.endpoint_url}"
        assert texts[1] == f"Ollama {VERSION} · Test GPU (fake) · 6.0 GiB of 8.0 GiB VRAM free"
        assert texts[2:] == [
            "Privacy mode (local only)", "0.0 tok/s · saved $0.00 today", *first_run_line, "Open dashboard",
            "Copy endpoint URL", "Set up OpenCode…", "Settings…", "Pause router", "Quit",
        ]  # fmt: skip
        assert shell.dashboard.machine.vram_bar.format() == "VRAM: 2.0 GiB used of 8.0 GiB"

        tray.action("copy_endpoint").trigger()
        assert QGuiApplication.clipboard().text() == bridge.endpoint_url

        url = bridge.endpoint_url
        with qtbot.waitSignal(bridge.service_stopped, timeout=10_000):
            tray.action("pause").trigger()
        assert tray.state == "error"
        with pytest.raises(httpx.ConnectError):
            httpx.get(url.removesuffix("/v1") + "/health")
        tray.rebuild_menu()
        assert tray.status_lines()[0] == "Paused: not serving" and tray.action("pause").text() == "Resume router"
        with qtbot.waitSignal(bridge.service_started, timeout=15_000):
            tray.action("pause").trigger()
        assert bridge.endpoint_url == url  # the same port again, so clients keep working
        assert chat(qtbot, url, max_tokens=4).status_code == 200


def test_the_dashboard_loads_history_from_the_ledger(qtbot, fake_ollama, tmp_path: Path) -> None:
    with running_shell(qtbot, local_settings(fake_ollama.url), tmp_path) as shell:
        assert chat(qtbot, shell.bridge.endpoint_url, max_tokens=4).status_code == 200
        qtbot.waitUntil(lambda: shell.dashboard.requests.rowCount() == 1, timeout=5000)
        first_id = shell.dashboard.requests.rows[0].request_id
    # A new app on the same ledger shows yesterday's work before any new request.
    with running_shell(qtbot, local_settings(fake_ollama.url), tmp_path) as shell:
        qtbot.waitUntil(lambda: shell.dashboard.requests.rowCount() == 1, timeout=5000)
        assert shell.dashboard.requests.rows[0].request_id == first_id
        assert shell.dashboard.savings_chart.total_saved() > 0


def test_set_up_opencode_shows_the_diff_and_writes_with_a_backup(qtbot, fake_ollama, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    config = project / "opencode.json"
    original = '{\n  "$schema": "https://opencode.ai/config.json",\n  "theme": "dark"\n}\n'
    config.write_text(original)
    with running_shell(qtbot, local_settings(fake_ollama.url), tmp_path) as shell:
        dialog = shell.open_opencode()
        qtbot.addWidget(dialog)
        dialog.project_dir.setText(str(project))
        with _planned(qtbot, dialog):
            dialog._project_typed()
        assert dialog.project_choice.isChecked()
        diff = dialog.diff.toPlainText()
        assert f'"options": {{ "baseURL": "{shell.bridge.endpoint_url}" }}' in diff
        assert '+  "model": "hybridge/auto"' in diff and dialog.write_button.isEnabled()
        dialog.write_button.click()
        qtbot.waitUntil(lambda: dialog.status.text().startswith("Wrote"), timeout=5000)
        written = json.loads(config.read_text())
        assert written["theme"] == "dark" and written["model"] == "hybridge/auto"
        backups = list(project.glob("opencode.json.*.bak"))
        assert len(backups) == 1 and backups[0].read_text() == original
        assert str(backups[0]) in dialog.status.text()
        with _planned(qtbot, dialog):
            dialog.preview()
        assert "nothing to change" in dialog.status.text() and not dialog.write_button.isEnabled()


class _planned:
    """Wait until the dialog has planned (its background read came back)."""

    def __init__(self, qtbot, dialog) -> None:
        self.qtbot, self.dialog = qtbot, dialog

    def __enter__(self) -> None:
        self.dialog.update = None

    def __exit__(self, *exc: object) -> None:
        self.qtbot.waitUntil(lambda: self.dialog.update is not None, timeout=5000)


def test_hybridge_runs_once_and_a_second_launch_opens_the_first(fake_ollama, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[server]\nport = 0\n[routing]\nlocal_model = "ollama/gemma3:270m"\n'
        f'[providers.ollama]\nkind = "ollama"\nbase_url = "{fake_ollama.url}"\n'
        f'[ledger]\npath = "{tmp_path / "ledger.sqlite3"}"\n'
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, "-m", "router_core", "--config", str(config), "--no-tray"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The first listens on its local socket once it runs (Qt puts it in the temp folder).
        socket = Path(tempfile.gettempdir()) / server_name(config)
        deadline = time.monotonic() + 30
        while not socket.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert socket.exists(), first.communicate(timeout=5) if first.poll() is not None else "no socket"
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 0, second
        assert "already running; its dashboard is open now" in second.stderr
        assert first.poll() is None  # the first keeps running
        first.terminate()  # SIGTERM quits like the tray's Quit: router stopped, exit 0
        assert first.wait(15) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
