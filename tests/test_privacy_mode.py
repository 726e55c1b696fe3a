"""Privacy mode end to end over real sockets: the switch, kept-local work, Ollama's cloud
models, stopping cloud streams in flight, and the `hybridge privacy` / `token` commands.

Local answers come from the Ollama-API test engine in canned mode; the "cloud" is the
wire-faithful fake OpenAI cloud (tests/fakes/fake_openai_cloud.py), or the real llama-server
registered as a cloud-kind provider where a long real stream is needed (that test is
`real_model`).
These run on loopback, where the egress guard lets traffic through: they test the policy
layer; tests/test_egress_namespace.py tests the guard below it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import tomli_w

from router_core.cli import main as cli_main
from router_core.events import KeptLocal
from router_core.privacy.ollama_cloud import (
    NO_CLOUD_ENV,
    check_tags,
    is_cloud_model_name,
    server_json_disables_cloud,
    start_ollama,
)
from router_core.privacy.state import PrivacyStatus
from router_core.runtime import Runtime
from router_core.service import RouterService
from tests.conftest import LOCAL_MODEL, local_settings
from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.llama import LlamaServer
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import ThreadedServer, run_hybridge

CLOUD_MODEL = "gpt-oss:120b-cloud"


@pytest.fixture(scope="module")
def ollama_with_cloud() -> Iterator[tuple[FakeOllama, str]]:
    """An Ollama that also lists a cloud model, as one signed in to ollama.com does (the
    engine in canned mode: where work goes is under test, not what the model says)."""
    fake = FakeOllama(
        canned="Kept on this machine.",
        models=[
            FakeModel(LOCAL_MODEL, loaded_vram=0),
            FakeModel(CLOUD_MODEL, remote_host="https://ollama.com:443"),
        ],
    )
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[FakeOpenAICloud, str]]:
    fake = FakeOpenAICloud()
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


def settings_for(ollama_url: str, cloud_url: str, **privacy: Any) -> Any:
    return local_settings(
        ollama_url,
        providers={"cloud": {"kind": "openai", "base_url": f"{cloud_url}/v1", "api_key": "keyring:cloud"}},
        routing={"cloud_model": "cloud/gpt-4.1", "heavy_model": "cloud/gpt-4.1"},
        privacy=privacy,
    )


@pytest.fixture
def keys(memory_keyring: MemoryKeyring) -> MemoryKeyring:
    memory_keyring.set_password("hybridge", "cloud", API_KEY)
    return memory_keyring


def http(service: RouterService) -> httpx.Client:
    return httpx.Client(base_url=service.status().base_url.removesuffix("/v1"), trust_env=False, timeout=120)


def runtime_of(service: RouterService) -> Runtime:
    assert service.runtime is not None
    return service.runtime


def ask(c: httpx.Client, model: str, stream: bool = False, **headers: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 4, "stream": stream, "messages": [{"role": "user", "content": "Say hi"}]}
    return c.post("/v1/chat/completions", json=body, headers=headers)


def test_flagged_work_is_kept_local_with_a_header_and_an_event(
    ollama_with_cloud: tuple[FakeOllama, str], cloud: tuple[FakeOpenAICloud, str], keys: MemoryKeyring
) -> None:
    fake_cloud, cloud_url = cloud
    before = len(fake_cloud.state.requests)
    kept: list[KeptLocal] = []
    with run_hybridge(settings_for(ollama_with_cloud[1], cloud_url, enabled=True)) as service, http(service) as c:
        on_kept = kept.append  # signals hold listeners weakly: keep this one alive
        service.events.privacy_kept_local.connect(on_kept)
        for response in (ask(c, "cloud"), ask(c, "cloud", stream=True), ask(c, "auto", **{"x-hybridge-tags": "auth"})):
            assert response.status_code == 200, response.text
            assert response.headers["x-hybridge-route"] == "local"
            assert response.headers["x-hybridge-privacy"] == "kept-local"
            assert "privacy" in response.headers["x-hybridge-reason"]
        plain = ask(c, "auto")
        assert plain.status_code == 200 and "x-hybridge-privacy" not in plain.headers
    assert len(fake_cloud.state.requests) == before
    assert [k.requested_model for k in kept] == ["cloud", "cloud", "auto"]
    assert "auth" in kept[2].tags


def test_refuse_escalation_refuses_flagged_work(
    ollama_with_cloud: tuple[FakeOllama, str], cloud: tuple[FakeOpenAICloud, str], keys: MemoryKeyring
) -> None:
    fake_cloud, cloud_url = cloud
    before = len(fake_cloud.state.requests)
    settings = settings_for(ollama_with_cloud[1], cloud_url, enabled=True, escalation="refuse")
    with run_hybridge(settings) as service, http(service) as c:
        refused = ask(c, "cloud")
        named = ask(c, "cloud/gpt-4.1")
        assert ask(c, "auto").status_code == 200
    assert refused.status_code == 403
    assert "privacy mode is on" in refused.json()["error"]["message"]
    assert refused.json()["error"]["type"] == "permission_error"
    assert named.status_code == 403
    assert len(fake_cloud.state.requests) == before


def test_ollama_cloud_models_are_hidden_and_refused(
    ollama_with_cloud: tuple[FakeOllama, str], cloud: tuple[FakeOpenAICloud, str], keys: MemoryKeyring
) -> None:
    fake_ollama, ollama_url = ollama_with_cloud
    with run_hybridge(settings_for(ollama_url, cloud[1])) as service, http(service) as c:
        shown = [m["id"] for m in c.get("/v1/models").json()["data"]]
        assert f"ollama/{CLOUD_MODEL}" in shown and "cloud/gpt-4.1" in shown
        assert c.post("/hybridge/privacy", json={"enabled": True}).json()["enabled"] is True
        hidden = [m["id"] for m in c.get("/v1/models").json()["data"]]
        asked_before = len(fake_ollama.state.requests)
        refused = ask(c, f"ollama/{CLOUD_MODEL}")
        refused_stream = ask(c, f"ollama/{CLOUD_MODEL}", stream=True)
    assert hidden == ["auto", "local", "cloud", f"ollama/{LOCAL_MODEL}"]
    for response in (refused, refused_stream):
        assert response.status_code == 403
        assert "Ollama cloud model" in response.json()["error"]["message"]
    assert len(fake_ollama.state.requests) == asked_before


def test_the_switch_persists_atomically_and_applies_live(
    ollama_with_cloud: tuple[FakeOllama, str],
    cloud: tuple[FakeOpenAICloud, str],
    keys: MemoryKeyring,
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(tomli_w.dumps({"server": {"port": 12345}}))
    changes: list[PrivacyStatus] = []
    with run_hybridge(settings_for(ollama_with_cloud[1], cloud[1])) as service, http(service) as c:
        runtime_of(service).config_path = config
        on_change = changes.append  # signals hold listeners weakly: keep this one alive
        service.events.privacy_changed.connect(on_change)
        assert c.get("/hybridge/privacy").json()["enabled"] is False
        assert ask(c, "cloud").headers["x-hybridge-route"] == "cloud"
        on = c.post("/hybridge/privacy", json={"enabled": True}).json()
        assert on["enabled"] is True and on["saved"] is True
        assert tomllib.loads(config.read_text()) == {"server": {"port": 12345}, "privacy": {"enabled": True}}
        assert ask(c, "cloud").headers["x-hybridge-privacy"] == "kept-local"
        off = c.post("/hybridge/privacy", json={"enabled": False}).json()
        assert off["enabled"] is False
        assert tomllib.loads(config.read_text())["privacy"] == {"enabled": False}
        assert ask(c, "cloud").headers["x-hybridge-route"] == "cloud"
        for bad in (b"{}", b'{"enabled": "yes"}', b'{"enabled": true, "extra": 1}', b"[true]", b"nope"):
            response = c.post("/hybridge/privacy", content=bad)
            assert response.status_code == 400 and response.json()["error"]["request_id"]
    assert [s.enabled for s in changes] == [True, False]
    assert not list(tmp_path.glob(".config.toml.*"))  # no temp file left behind


def test_switching_privacy_on_stops_cloud_streams_in_flight(
    fake_ollama: Any, llama_server: LlamaServer, memory_keyring: MemoryKeyring
) -> None:
    """llama-server registered as a cloud-kind provider gives a real, long stream to stop."""
    memory_keyring.set_password("hybridge", "farcloud", "sk-not-checked-by-llama-server")
    settings = local_settings(
        fake_ollama.url,
        providers={"farcloud": {"kind": "openai", "base_url": f"{llama_server.url}/v1", "api_key": "keyring:farcloud"}},
        routing={"cloud_model": f"farcloud/{llama_server.model}"},
    )
    body = {"model": "cloud", "stream": True, "max_tokens": 400, "messages": [{"role": "user", "content": "Count"}]}
    with run_hybridge(settings) as service, http(service) as c:
        runtime = runtime_of(service)
        lines: list[str] = []
        started = time.monotonic()
        with c.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.headers["x-hybridge-route"] == "cloud"
            for line in response.iter_lines():
                if not line:
                    continue
                lines.append(line)
                if len(lines) == 3:
                    assert runtime.in_flight.count("cloud") == 1
                    # The tray flips the switch from its own thread.
                    threading.Thread(target=runtime.set_privacy, args=(True,)).start()
        elapsed = time.monotonic() - started
        assert runtime.in_flight.count("cloud") == 0
    last = orjson.loads(lines[-1].removeprefix("data: "))
    assert last["error"]["code"] == "privacy"
    assert "privacy mode was switched on" in last["error"]["message"]
    assert "data: [DONE]" not in lines
    assert len(lines) < 100 and elapsed < 10  # 400 tokens at ~35 tok/s would take >10 s


# --- Ollama's cloud: names, tags, server.json, starting Ollama without it ------------------


@pytest.mark.parametrize(
    ("name", "cloud"),
    [
        ("gpt-oss:120b-cloud", True),
        ("qwen3-coder:480b-cloud", True),
        ("gemma4:cloud", True),
        ("ollama/kimi-k2:1t-cloud", True),
        ("qwen3:30b-a3b", False),
        ("cloudy:7b", False),
        ("mycloud", False),
    ],
)
def test_cloud_model_names(name: str, cloud: bool) -> None:
    assert is_cloud_model_name(name) is cloud


def test_ollama_cloud_warning(tmp_path: Path) -> None:
    tags = {
        "models": [
            {"name": "qwen3:8b", "model": "qwen3:8b"},
            {
                "name": "mine:latest",
                "model": "mine:latest",
                "remote_model": "gpt-oss:120b",
                "remote_host": "https://ollama.com:443",
            },
        ]
    }
    check = check_tags(tags, home=tmp_path)
    assert check.cloud_models == ("mine:latest",)
    assert check.warning is not None and f"{NO_CLOUD_ENV}=1" in check.warning
    assert check_tags({"models": [{"name": "qwen3:8b"}]}, home=tmp_path).warning is None
    (tmp_path / ".ollama").mkdir()
    (tmp_path / ".ollama" / "server.json").write_text('{"disable_ollama_cloud": true}')
    assert server_json_disables_cloud(tmp_path)
    assert check_tags(tags, home=tmp_path).warning is None


def fake_ollama_binary(tmp_path: Path) -> tuple[Path, Path]:
    """Ollama cannot be installed here: a stand-in executable records how it was started."""
    record = tmp_path / "started.json"
    script = tmp_path / "ollama"
    script.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, record


@pytest.mark.parametrize("no_cloud", [True, False])
def test_start_ollama_sets_no_cloud_in_privacy_mode(
    tmp_path: Path, no_cloud: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, record = fake_ollama_binary(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(NO_CLOUD_ENV, raising=False)
    process = start_ollama(no_cloud=no_cloud, host="127.0.0.1:11999", log_path=tmp_path / "ollama.log")
    assert process.wait(10) == 0
    started = orjson.loads(record.read_bytes())
    assert started["argv"] == ["serve"]
    assert started["env"]["OLLAMA_HOST"] == "127.0.0.1:11999"
    assert (started["env"].get(NO_CLOUD_ENV) == "1") is no_cloud


def test_start_ollama_without_ollama_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ollama is not installed"):
        start_ollama(no_cloud=True)


# --- The commands ---------------------------------------------------------------------------


def hybridge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router_core", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_privacy_command_saves_and_switches_the_running_router(
    ollama_with_cloud: tuple[FakeOllama, str],
    cloud: tuple[FakeOpenAICloud, str],
    keys: MemoryKeyring,
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    with run_hybridge(settings_for(ollama_with_cloud[1], cloud[1])) as service:
        runtime_of(service).config_path = config
        user = {
            "server": {"port": service.status().port},
            "routing": {"local_model": f"ollama/{LOCAL_MODEL}"},
            "providers": {"ollama": {"kind": "ollama", "base_url": ollama_with_cloud[1]}},
        }
        config.write_text(tomli_w.dumps(user))
        on = hybridge("privacy", "on", "--config", str(config))
        assert on.returncode == 0, on.stderr
        assert "the running router at http://127.0.0.1:" in on.stdout and "switched privacy on" in on.stdout
        assert runtime_of(service).privacy.enabled is True
        assert tomllib.loads(config.read_text())["privacy"]["enabled"] is True
        status = hybridge("privacy", "status", "--config", str(config))
        assert status.returncode == 0, status.stderr
        assert "privacy mode: on (saved)" in status.stdout
        assert ": privacy on now" in status.stdout
        assert f"warning: ollama: the running Ollama has cloud models ({CLOUD_MODEL})" in status.stdout
        off = hybridge("privacy", "off", "--config", str(config))
        assert off.returncode == 0 and runtime_of(service).privacy.enabled is False
    offline = hybridge("privacy", "on", "--config", str(config))
    assert offline.returncode == 0 and "no router answers at" in offline.stdout
    assert tomllib.loads(config.read_text())["privacy"]["enabled"] is True


def test_token_command(tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    assert cli_main(["token", "new", "--config", str(config)]) == 0
    token = capsys.readouterr().out.splitlines()[0]
    assert token.startswith("hbt_") and len(token) > 40
    assert memory_keyring.entries[("hybridge", "server-token")] == token
    assert tomllib.loads(config.read_text()) == {"server": {"token": "keyring:server-token"}}
    assert cli_main(["token", "show", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == token
    assert cli_main(["token", "remove", "--config", str(config)]) == 0
    assert ("hybridge", "server-token") not in memory_keyring.entries
    assert cli_main(["token", "show", "--config", str(config)]) == 1
