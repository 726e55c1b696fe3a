"""Ollama going away and coming back while the app runs; the dashboard's Ollama controls
(start, pull) against processes and servers speaking Ollama's interfaces."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.conftest import local_settings
from tests.support.app_shell import chat, running_shell
from tests.support.fake_ollama import VERSION, FakeModel, FakeOllama
from tests.support.servers import ThreadedServer, free_port

pytestmark = pytest.mark.real_model


def test_the_app_keeps_running_when_ollama_goes_away_and_recovers(qtbot, llama_server, tmp_path: Path) -> None:
    fake = FakeOllama(llama_server.url)
    port = free_port()
    ollama = ThreadedServer(fake.app, port=port).start()
    # With the ledger off, the table fills from the router's own records.
    settings = local_settings(ollama.url, ledger={"enabled": False})
    try:
        with running_shell(qtbot, settings, tmp_path) as shell:
            tray, bridge, dashboard = shell.tray, shell.bridge, shell.dashboard
            assert not bridge.has_ledger
            assert bridge.local_ollama().up and tray.state == "local"
            tray.rebuild_menu()
            assert any(f"Ollama {VERSION}" in a.text() for a in tray.menu.actions())

            ollama.stop()
            # A request now fails cleanly; the failure itself makes the app look at Ollama.
            with qtbot.waitSignal(bridge.ollama_state_changed, timeout=15_000) as down:
                failed = chat(qtbot, bridge.endpoint_url, max_tokens=8)
            assert failed.status_code in (502, 503), failed.text
            assert down.args[:2] == ["ollama", False]
            assert tray.state == "error"
            assert tray.notices[-1].title == "Ollama is down" and "not running" in tray.notices[-1].message
            qtbot.waitUntil(lambda: dashboard.requests.rowCount() == 1, timeout=5000)
            assert dashboard.requests.rows[0].outcome == "error"
            assert dashboard.ollama.start_button.isEnabled()
            assert "Down:" in dashboard.ollama.status.text()
            tray.rebuild_menu()
            assert any("Ollama is down" in a.text() for a in tray.menu.actions())
            assert bridge.running  # the router itself keeps serving

            ollama = ThreadedServer(fake.app, port=port).start()
            with qtbot.waitSignal(bridge.ollama_state_changed, timeout=15_000) as up:
                bridge.refresh_inventory()
            assert up.args[:2] == ["ollama", True]
            assert tray.state == "local" and tray.notices[-1].title == "Ollama is back"
            ok = chat(qtbot, bridge.endpoint_url, max_tokens=8)
            assert ok.status_code == 200 and ok.headers["x-hybridge-route"] == "local"
            assert not dashboard.ollama.start_button.isEnabled()
    finally:
        ollama.stop()


class PullingOllama(FakeOllama):
    """The Ollama-API test server plus `POST /api/pull` as Ollama documents it (docs/api.md,
    "Pull a Model"): NDJSON `{"status": "pulling manifest"}`, per layer `{"status":
    "pulling <digest>", "digest", "total", "completed"}`, `verifying sha256 digest`,
    `writing manifest`, `{"status": "success"}`; an unknown model is `{"error": "pull model
    manifest: file does not exist"}` with HTTP 500, as Ollama answers."""

    LAYERS = (("sha256:aaaa", 3_000_000), ("sha256:bbbb", 1_000_000))

    def __init__(self, llama_url: str) -> None:
        super().__init__(llama_url)
        self.app.router.routes.append(Route("/api/pull", self.pull, methods=["POST"]))

    async def pull(self, request: Request) -> StreamingResponse:
        body = orjson.loads(await request.body())
        name = str(body.get("model") or body.get("name") or "")

        async def lines():
            yield orjson.dumps({"status": "pulling manifest"}) + b"\n"
            for digest, total in self.LAYERS:
                for done in (0, total // 2, total):
                    event = {"status": f"pulling {digest[7:]}", "digest": digest, "total": total, "completed": done}
                    yield orjson.dumps(event) + b"\n"
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                yield orjson.dumps({"status": status}) + b"\n"
            self.state.models[name] = FakeModel(name)

        if name.startswith("missing"):
            error = orjson.dumps({"error": "pull model manifest: file does not exist"})
            return StreamingResponse(iter([error]), status_code=500, media_type="application/json")
        return StreamingResponse(lines(), media_type="application/x-ndjson")


def test_pull_shows_progress_and_the_new_model(qtbot, llama_server, tmp_path: Path) -> None:
    fake = PullingOllama(llama_server.url)
    ollama = ThreadedServer(fake.app).start()
    try:
        with running_shell(qtbot, local_settings(ollama.url), tmp_path) as shell:
            panel = shell.dashboard.ollama
            seen: list[tuple[str, float | None]] = []
            shell.bridge.pull_progress.connect(lambda _m, p: seen.append((p.status, p.fraction)))
            panel.pull_name.setEditText("qwen2.5-coder:1.5b")
            with qtbot.waitSignal(shell.bridge.pull_finished, timeout=10_000) as finished:
                panel.pull_button.click()
            assert finished.args == ["qwen2.5-coder:1.5b", ""]
            layer = [f for status, f in seen if status == "pulling aaaa"]
            assert layer == [0.0, 0.5, 1.0]
            assert seen[0] == ("pulling manifest", None) and seen[-1] == ("success", 1.0)
            assert panel.progress.value() == panel.progress.maximum()
            assert "installed" in panel.pull_status.text()
            models = shell.dashboard.machine.models
            qtbot.waitUntil(
                lambda: any(
                    models.item(r, 1) and models.item(r, 1).text() == "qwen2.5-coder:1.5b"
                    for r in range(models.rowCount())
                ),
                timeout=10_000,
            )

            panel.pull_name.setEditText("missing-model")
            with qtbot.waitSignal(shell.bridge.pull_finished, timeout=10_000) as failed:
                panel.pull_button.click()
            assert failed.args[1] == "pull missing-model: pull model manifest: file does not exist"
            assert panel.pull_status.text() == failed.args[1] and not panel.progress.isVisible()
    finally:
        ollama.stop()


def _fake_ollama_binary(folder: Path, record: Path) -> None:
    """An `ollama` on PATH that records how it was started (the real one cannot be installed here)."""
    script = folder / "ollama"
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" "OLLAMA_HOST=$OLLAMA_HOST" "OLLAMA_NO_CLOUD=$OLLAMA_NO_CLOUD" > "{record}"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_start_ollama_sets_no_cloud_in_privacy_mode(qtbot, llama_server, tmp_path: Path, monkeypatch) -> None:
    port = free_port()  # nothing listens here: Ollama is down
    settings = local_settings(f"http://127.0.0.1:{port}", privacy={"enabled": True})
    with running_shell(qtbot, settings, tmp_path) as shell:
        panel = shell.dashboard.ollama
        assert panel.start_button.isEnabled() and "OLLAMA_NO_CLOUD=1" in panel.start_button.toolTip()

        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        with qtbot.waitSignal(shell.bridge.ollama_start_result, timeout=5000) as missing:
            panel.start_button.click()
        assert "not installed" in missing.args[0] and panel.start_note.text() == missing.args[0]

        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        record = tmp_path / "started.txt"
        _fake_ollama_binary(bin_dir, record)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
        with qtbot.waitSignal(shell.bridge.ollama_start_result, timeout=5000) as started:
            panel.start_button.click()
        assert started.args == [""] and "OLLAMA_NO_CLOUD=1" in panel.start_note.text()
        qtbot.waitUntil(record.exists, timeout=5000)
        qtbot.waitUntil(lambda: len(record.read_text().splitlines()) == 3, timeout=5000)
        assert record.read_text().splitlines() == ["serve", f"OLLAMA_HOST=127.0.0.1:{port}", "OLLAMA_NO_CLOUD=1"]
