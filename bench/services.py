"""The servers a benchmark run starts on loopback: the synthetic upstream, Hybridge and its peers.

Each runs as its own process (group), started here and stopped here by its own id. The
peers are installed outside the project's venv (bench/peers_install.py), so their
dependencies can never disturb Hybridge's.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import tomli_w

from bench.peers_install import CCR_CLI, LITELLM_BIN
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Service:
    """A server process on 127.0.0.1:`port`; `chat_path` is where a client sends chat requests."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    chat_path: str = "/v1/chat/completions"
    api: str = "openai"  # the request format its chat_path takes: openai | anthropic
    model_prefix: str = ""  # prepended to the upstream's model name (Hybridge: "synth/")
    log_path: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)  # sent with every chat request

    def model(self, upstream_model: str) -> str:
        return self.model_prefix + upstream_model

    def tree(self) -> list[psutil.Process]:
        """The process and its children (LiteLLM's proxy runs workers under its CLI)."""
        try:
            main = psutil.Process(self.process.pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_bytes(self) -> int:
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            # Started in its own session: the group id is our child's pid.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def _spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=str(ROOT)
        )


def wait_http(service: Service, path: str, timeout: float = 90.0, ok: tuple[int, ...] = (200,)) -> Service:
    """Wait until GET `path` answers one of `ok`; raise with the log's tail if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{service.port}{path}", timeout=2).status_code in ok:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    tail = service.log_path.read_text(errors="replace")[-2000:] if service.log_path else ""
    service.stop()
    raise RuntimeError(f"{service.name} did not start on port {service.port}:\n{tail}")


def start_upstream(workdir: Path) -> Service:
    port = free_port()
    log = workdir / "upstream.log"
    process = _spawn([sys.executable, str(ROOT / "bench" / "synthetic_upstream.py"), str(port)], log)
    service = Service("synthetic upstream", port, process, log_path=log)
    # The upstream answers any path; a GET is not a chat request, so 200 is not required.
    return wait_http(service, "/", ok=(200, 400, 404, 405, 500))


def hybridge_config(
    workdir: Path,
    upstream_port: int,
    extra_providers: dict[str, object] | None = None,
    overrides: dict[str, dict[str, object]] | None = None,
) -> Path:
    """Settings for `hybridge serve`: the synthetic upstream as an OpenAI-compatible provider,
    the ledger on (as users run it) in `workdir`, so no user file is touched."""
    providers: dict[str, object] = {
        "synth": {"kind": "openai-local", "base_url": f"http://127.0.0.1:{upstream_port}/v1"},
        **(extra_providers or {}),
    }
    config = workdir / f"hybridge-{len(list(workdir.glob('hybridge-*.toml')))}.toml"
    settings = {
        "server": {"port": free_port()},
        "routing": {"local_model": "synth/synth"},
        "ledger": {"path": str(workdir / f"{config.stem}-ledger.sqlite3")},
        "providers": providers,
    }
    for section, values in (overrides or {}).items():
        settings[section] = {**settings.get(section, {}), **values}  # type: ignore[dict-item]
    config.write_text(tomli_w.dumps(settings))
    return config


def start_hybridge(
    workdir: Path,
    config: Path,
    name: str = "Hybridge",
    python: Path | None = None,
    wrapper: list[str] | None = None,
    timeout: float = 90.0,
) -> Service:
    """`hybridge serve` with `config`, from the project's venv or the one `python` belongs to;
    `wrapper`: a command it runs under (valgrind's, for instruction counts)."""
    port = free_port()
    log = workdir / f"{config.stem}.log"
    process = _spawn(
        [
            *(wrapper or []),
            str(python or sys.executable),
            "-m", "router_core", "serve", "--port", str(port), "--config", str(config),
        ],
        log,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    service = Service(name, port, process, model_prefix="synth/", log_path=log)
    return wait_http(service, "/health", timeout=timeout)


def start_tray(workdir: Path, config: Path) -> Service:
    """The tray app (`hybridge` without a subcommand) on Qt's offscreen platform."""
    log = workdir / "tray.log"
    port = _config_port(config)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT), "XDG_RUNTIME_DIR": str(workdir)}
    process = _spawn([sys.executable, "-m", "router_core", "--config", str(config)], log, env=env)
    service = Service("tray app (offscreen)", port, process, log_path=log)
    return wait_http(service, "/health")


def _config_port(config: Path) -> int:
    import tomllib

    return int(tomllib.loads(config.read_text())["server"]["port"])


def start_litellm(workdir: Path, upstream_port: int) -> Service:
    """LiteLLM's proxy with the upstream's two models, its price-map download switched off."""
    port = free_port()
    config = workdir / "litellm.yaml"
    models = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{name}",
                "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                "api_key": "unused",
            },
        }
        for name in ("synth", "synth-p20")
    ]
    # JSON is YAML; no extra dependency needed to write it.
    config.write_text(json.dumps({"model_list": models, "litellm_settings": {"telemetry": False}}))
    # It refuses to start without a master key (and then checks it on every request).
    key = "sk-bench-" + secrets.token_hex(16)
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "HOME": str(workdir / "litellm-home"),
    }
    log = workdir / "litellm.log"
    process = _spawn(
        [str(LITELLM_BIN), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        log,
        env=env,
    )
    service = Service("LiteLLM proxy", port, process, log_path=log, headers={"authorization": f"Bearer {key}"})
    return wait_http(service, "/health/liveliness", timeout=180)


def start_ccr(workdir: Path, upstream_port: int) -> Service:
    """claude-code-router: Anthropic Messages in, the synthetic OpenAI upstream out.

    It serves only Anthropic's /v1/messages (it fronts Claude Code), so it is compared with
    Hybridge's own /v1/messages on the same upstream. Its config lives in a HOME of its own.
    """
    port = free_port()
    home = workdir / "ccr-home"
    (home / ".claude-code-router").mkdir(parents=True, exist_ok=True)
    config = {
        "LOG": False,
        "HOST": "127.0.0.1",
        "PORT": port,
        "API_TIMEOUT_MS": 120000,
        "Providers": [
            {
                "name": "synth",
                "api_base_url": f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
                "api_key": "unused",
                "models": ["synth", "synth-p20"],
            }
        ],
        "Router": {"default": "synth,synth"},
    }
    (home / ".claude-code-router" / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "HOME": str(home), "CI": "true", "NO_UPDATE_NOTIFIER": "1"}
    log = workdir / "ccr.log"
    process = _spawn(["node", str(CCR_CLI), "start"], log, env=env)
    service = Service(
        "claude-code-router",
        port,
        process,
        chat_path="/v1/messages",
        api="anthropic",
        model_prefix="synth,",
        log_path=log,
    )
    return wait_http(service, "/", timeout=90, ok=(200, 401, 404))
