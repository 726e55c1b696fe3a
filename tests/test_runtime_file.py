"""The CLI finds the router on any port through its runtime file, over real sockets.

`hybridge serve --port 0` (a random port) writes the file; privacy, stats, explain,
opencode, claude-code, token and `setup AGENT`, run as subprocesses, all reach that router; `--url`
overrides; a file naming a dead pid is ignored; the file is gone once the router stops.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import tomli_w

from router_core.runtime_file import RouterAddress, read_runtime_file, write_runtime_file
from tests.support.cli import HybridgeProcess

# Runs our own commands as subprocesses (conftest: e2e, not in the fast suite).
pytestmark = pytest.mark.e2e


def hybridge(*args: str, env: dict[str, str], stdin: bytes | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "router_core", *args], input=stdin, capture_output=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_every_command_finds_a_router_on_a_random_port(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = tmp_path / "config.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "providers": {"ollama": {"kind": "ollama", "base_url": "http://127.0.0.1:9"}},
                "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
            }
        )
    )
    env = {
        **os.environ,
        "HYBRIDGE_RUNTIME_DIR": str(run_dir),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    body = orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    with HybridgeProcess(config, env=env) as router:
        url = router.base_url.removesuffix("/v1")
        port = int(url.rsplit(":", 1)[1])
        assert port != 11435
        file = run_dir / "router.json"
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        data = orjson.loads(file.read_bytes())
        assert router.process is not None
        assert (data["port"], data["pid"], data["url"]) == (port, router.process.pid, url)
        assert data["version"]

        c = ["--config", str(config)]
        status = hybridge("privacy", "status", *c, env=env)
        assert f"router at {url}: privacy off now" in status
        on = hybridge("privacy", "on", *c, env=env)
        assert f"the running router at {url} switched privacy on" in on
        assert httpx.get(url + "/hybridge/privacy", timeout=5).json()["enabled"] is True
        assert f"live: router at {url}" in hybridge("stats", *c, env=env)
        explained = hybridge("explain", *c, env=env, stdin=body)
        assert f"planned by the running router at {url}" in explained
        assert "privacy on" in explained  # the live state, not a guess
        opencode = hybridge("opencode", "--project", str(tmp_path), "--no-inventory", *c, env=env)
        assert f"127.0.0.1:{port}/v1" in opencode
        assert f"127.0.0.1:{port}" in hybridge("claude-code", *c, env=env)
        for agent in ("codex", "aider", "qwen-code", "ollama"):  # `hybridge setup AGENT` too
            extra = {
                "codex": ["--codex-home", str(tmp_path / "codex")],
                "aider": ["--project", str(tmp_path)],
                "qwen-code": ["--qwen-home", str(tmp_path / "qwen")],
                "ollama": [],
            }[agent]
            assert f"127.0.0.1:{port}" in hybridge("setup", agent, "--no-inventory", *extra, *c, env=env), agent
        assert f"restart the running router at {url}" in hybridge("token", "remove", *c, env=env)
        # --url wins over the file.
        elsewhere = hybridge("privacy", "status", "--url", "http://127.0.0.1:9", *c, env=env)
        assert "router: not running at http://127.0.0.1:9 (from --url)" in elsewhere
    assert not file.exists()

    # A router killed without cleaning up leaves a stale file: ignored.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_runtime_file(RouterAddress("127.0.0.1", port, dead.pid, "0"), file)
    assert read_runtime_file(file) is None
    offline = hybridge("explain", *c, env=env, stdin=body)
    assert "no running router: planned here with the saved settings (privacy included)" in offline
    # `privacy on` was saved: planning without a router applies it too (Ollama is down here,
    # so the local model cannot be vouched for and privacy mode refuses rather than guess).
    assert "privacy on" in offline
