"""The Ollama inventory: parsers over recorded Ollama answers (tests/data/ollama/), then the
inventory against the Ollama-API test server (tests/support/fake_ollama.py) on real sockets,
alone and inside a running Hybridge (timer and on-demand refresh).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from router_core.inventory.hardware import GpuInfo, HardwareInfo
from router_core.inventory.hardware.info import MIB
from router_core.inventory.machine import Inventory
from router_core.inventory.ollama_inventory import (
    OllamaInventory,
    kv_cache_bytes_per_token,
    parse_ps,
    parse_show,
    parse_tags,
)
from router_core.providers.http import default_transport
from router_core.providers.ollama import OllamaProvider
from tests.support.fake_ollama import DEFAULT_NUM_CTX, VERSION, FakeModel, FakeOllama
from tests.support.servers import ThreadedServer, free_port, make_settings, run_hybridge

DATA = Path(__file__).parent / "data" / "ollama"
# The inventory never chats, so the test server's model behind /api/chat is never reached.
NO_MODEL_SERVER = "http://127.0.0.1:9"


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


# --- parsers over recorded answers ------------------------------------------------------


def test_tags_list_models_and_mark_cloud_ones() -> None:
    models = {m.name: m for m in parse_tags(recorded("tags.json"))}
    assert list(models) == ["qwen3:30b-a3b", "devstral:24b", "qwen2.5-coder:7b", "gpt-oss:120b-cloud"]
    qwen = models["qwen3:30b-a3b"]
    assert (qwen.size_bytes, qwen.family, qwen.parameter_size, qwen.quantization) == (
        18556700761,
        "qwen3moe",
        "30.5B",
        "Q4_K_M",
    )
    assert [m.cloud for m in models.values()] == [False, False, False, True]
    # remote_host marks a cloud model even under a name without the -cloud suffix (an `ollama cp` alias)
    entry = dict(recorded("tags.json")["models"][3], name="my-alias:latest", model="my-alias:latest")
    (alias,) = parse_tags({"models": [entry]})
    assert alias.cloud


def test_ps_lists_loaded_models_with_their_context() -> None:
    (loaded,) = parse_ps(recorded("ps.json"))
    assert loaded.name == "qwen3:30b-a3b"
    assert loaded.fully_on_gpu and loaded.vram_bytes == 19990855680
    assert loaded.context_length == 4096
    assert loaded.expires_at == "2025-10-06T14:38:31.83753+02:00"


@pytest.mark.parametrize(
    ("name", "context", "kv_per_token", "capabilities"),
    [
        # block_count × head_count_kv × (key_length + value_length) × 2 bytes (f16)
        ("show_qwen3_30b_a3b.json", 40960, 48 * 4 * (128 + 128) * 2, ("completion", "tools", "thinking")),
        ("show_devstral_24b.json", 131072, 40 * 8 * (128 + 128) * 2, ("completion", "tools")),
        # no key/value lengths: head size is embedding_length / head_count = 3584 / 28 = 128
        ("show_qwen2.5_coder_7b.json", 32768, 28 * 4 * (128 + 128) * 2, ("completion", "tools", "insert")),
    ],
)
def test_show_gives_context_capabilities_and_kv_cache_size(
    name: str, context: int, kv_per_token: int, capabilities: tuple[str, ...]
) -> None:
    details = parse_show(recorded(name))
    assert details.max_context == context
    assert details.kv_bytes_per_token == kv_per_token
    assert details.capabilities == capabilities
    assert details.parameter_count == recorded(name)["model_info"]["general.parameter_count"]


def test_kv_cache_size_follows_the_cache_type_and_per_layer_heads() -> None:
    info = recorded("show_qwen3_30b_a3b.json")["model_info"]
    assert kv_cache_bytes_per_token(info, 34 / 32) == 48 * 4 * 256 * 34 // 32  # q8_0
    # head_count_kv as a per-layer list (some architectures vary it by layer): summed over layers
    layered = {
        "general.architecture": "openelm",
        "openelm.block_count": 3,
        "openelm.attention.head_count": [12, 12, 16],
        "openelm.attention.head_count_kv": [3, 3, 4],
        "openelm.attention.key_length": 64,
        "openelm.attention.value_length": 64,
    }
    assert kv_cache_bytes_per_token(layered) == (3 + 3 + 4) * (64 + 64) * 2
    assert kv_cache_bytes_per_token({"general.architecture": "x"}) is None


# --- against the Ollama-API test server -------------------------------------------------


def coding_models() -> list[FakeModel]:
    """Models as a developer's Ollama holds them (sizes and shapes of the real builds)."""
    return [
        FakeModel(
            "qwen3:30b-a3b",
            family="qwen3moe",
            parameter_size="30.5B",
            size=18556700761,
            context_length=40960,
            block_count=48,
            head_count_kv=4,
            key_length=128,
            value_length=128,
            embedding_length=2048,
            capabilities=["completion", "tools", "thinking"],
            loaded_vram=18556700761,
        ),
        FakeModel(
            "devstral:24b",
            family="llama",
            parameter_size="23.6B",
            size=14333927918,
            context_length=131072,
            block_count=40,
            head_count_kv=8,
            key_length=128,
            value_length=128,
            embedding_length=5120,
            capabilities=["completion", "tools"],
        ),
        FakeModel("gpt-oss:120b-cloud", family="gptoss", size=384, remote_host="https://ollama.com:443"),
    ]


class PathLog:
    """ASGI wrapper noting each request's path, to see which endpoints were read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
def ollama_server() -> Iterator[tuple[FakeOllama, PathLog, str]]:
    fake = FakeOllama(NO_MODEL_SERVER, coding_models())
    logged = PathLog(fake.app)
    server = ThreadedServer(logged).start()
    try:
        yield fake, logged, server.url
    finally:
        server.stop()


async def test_inventory_reads_the_test_server(ollama_server: tuple[FakeOllama, PathLog, str]) -> None:
    fake, logged, url = ollama_server
    inventory = OllamaInventory(url, transport=default_transport())
    try:
        status = await inventory.refresh()
        assert status.up and status.problem is None
        assert status.version == VERSION
        assert [m.name for m in status.models] == list(fake.state.models)
        for model in status.models:
            spec = fake.state.models[model.name]
            assert model.cloud == (spec.remote_host is not None)
            assert model.size_bytes == spec.size
            if model.cloud:
                assert model.details is None  # never shown: its details live on Ollama's servers
                continue
            assert model.max_context == spec.context_length
            assert model.capabilities == tuple(spec.capabilities)
            assert (
                model.kv_bytes_per_token
                == spec.block_count * spec.head_count_kv * (spec.key_length + spec.value_length) * 2
            )
        (loaded,) = status.loaded
        assert loaded.name == "qwen3:30b-a3b" and loaded.fully_on_gpu
        assert loaded.context_length == DEFAULT_NUM_CTX and loaded.expires_at
        assert sorted(logged.paths) == sorted(["/api/version", "/api/tags", "/api/ps", "/api/show", "/api/show"]), (
            "cloud models are not shown"
        )

        # A second look asks /api/show only for models it has not seen (same digest).
        logged.paths.clear()
        fake.state.models["qwen2.5-coder:7b"] = FakeModel("qwen2.5-coder:7b", family="qwen2", size=4683087332)
        again = await inventory.refresh()
        assert again.model("qwen2.5-coder:7b") is not None
        assert logged.paths.count("/api/show") == 1
        assert again.model("devstral") is None and again.model("devstral:24b") is not None
    finally:
        await inventory.aclose()


async def test_ollama_down_says_so_and_how_to_start_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    inventory = OllamaInventory(url, transport=default_transport())
    try:
        status = await inventory.refresh()
    finally:
        await inventory.aclose()
    assert not status.up and status.models == ()
    assert status.problem == (
        f"Ollama at {url} is not running: start it with `ollama serve` (or open the Ollama app), "
        "or set its address in settings or OLLAMA_HOST"
    )


async def test_something_else_on_the_port_is_not_taken_for_ollama() -> None:
    other = Starlette(routes=[Route("/", lambda r: PlainTextResponse("hello"))])
    server = ThreadedServer(other).start()
    inventory = OllamaInventory(server.url, transport=default_transport())
    try:
        status = await inventory.refresh()
    finally:
        await inventory.aclose()
        server.stop()
    assert not status.up
    assert status.problem == f"Ollama at {server.url} answered HTTP 404 on /api/version: is this Ollama?"


def rtx_4090() -> HardwareInfo:
    """The RTX 4090 desktop of tests/data/hardware/nvidia_rtx4090, as the probe reports it."""
    gpu = GpuInfo("nvidia", "NVIDIA GeForce RTX 4090", 24564 * MIB, 22993 * MIB, source="nvml")
    return HardwareInfo("AMD Ryzen 9 7950X", 16, 32, 64 * 1024 * MIB, 48 * 1024 * MIB, gpus=(gpu,))


async def test_inventory_fits_every_model_and_knows_the_local_context(
    ollama_server: tuple[FakeOllama, PathLog, str],
) -> None:
    _, _, url = ollama_server
    settings = make_settings(
        {
            "routing": {"local_model": "ollama/qwen3:30b-a3b"},
            "providers": {"ollama": {"kind": "ollama", "base_url": url}},
        }
    )
    inventory = Inventory(settings, hardware_probe=rtx_4090)
    try:
        snapshot = await inventory.refresh()
    finally:
        await inventory.aclose()
    fits = snapshot.fits["ollama"]
    assert {name: f.verdict for name, f in fits.items()} == {
        "qwen3:30b-a3b": "gpu",
        "devstral:24b": "gpu",
        "gpt-oss:120b-cloud": "cloud",
    }
    limit = inventory.local_context_limit()
    assert limit == fits["qwen3:30b-a3b"].max_context
    assert limit is not None and 16384 <= limit <= 40960
    assert inventory.fit_contexts("ollama") == {
        name: f.max_context for name, f in fits.items() if f.verdict == "gpu" and f.max_context
    }


def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_running_router_refreshes_on_its_timer_and_on_demand(
    ollama_server: tuple[FakeOllama, PathLog, str],
) -> None:
    fake, _, url = ollama_server
    settings = make_settings(
        {
            "routing": {"local_model": "ollama/qwen3:30b-a3b"},
            "providers": {"ollama": {"kind": "ollama", "base_url": url}},
        }
    )
    with run_hybridge(settings, hardware_probe=rtx_4090) as service:
        runtime = service.runtime
        assert runtime is not None
        # The timer's first round runs as the router starts; nothing asked for it.
        snapshot = wait_for(lambda: runtime.inventory.snapshot)
        provider = runtime.providers["ollama"]
        assert isinstance(provider, OllamaProvider)
        assert provider.fit_context == runtime.inventory.fit_contexts("ollama") != {}
        assert runtime.local_context_limit() == snapshot.fit("ollama", "qwen3:30b-a3b").max_context

        fake.state.models["qwen2.5-coder:7b"] = FakeModel(
            "qwen2.5-coder:7b",
            family="qwen2",
            size=4683087332,
            context_length=32768,
            head_count_kv=4,
            block_count=28,
            key_length=128,
            value_length=128,
        )
        fresh = service.refresh_inventory()
        assert fresh.taken_at > snapshot.taken_at
        assert fresh.fit("ollama", "qwen2.5-coder:7b") is not None
        assert "qwen2.5-coder:7b" in provider.fit_context


def test_refresh_while_stopped_is_refused() -> None:
    from router_core.service import RouterService

    service = RouterService(make_settings({}), port=0)
    with pytest.raises(RuntimeError, match="not running"):
        service.refresh_inventory()


async def test_concurrent_refreshes_share_the_lock(ollama_server: tuple[FakeOllama, PathLog, str]) -> None:
    _, logged, url = ollama_server
    settings = make_settings({"providers": {"ollama": {"kind": "ollama", "base_url": url}}})
    inventory = Inventory(settings, hardware_probe=rtx_4090)
    try:
        first, second = await asyncio.gather(inventory.refresh(), inventory.refresh())
    finally:
        await inventory.aclose()
    assert first.taken_at <= second.taken_at
    assert logged.paths.count("/api/show") == 2  # the second round reused what the first had shown


# --- hybridge doctor ----------------------------------------------------------------------


def doctor(capsys: pytest.CaptureFixture[str], tmp_path: Path, ollama_url: str, *extra: str) -> tuple[int, str]:
    from router_core.cli import main

    config = tmp_path / "config.toml"
    config.write_text(
        f'[routing]\nlocal_model = "ollama/qwen3:30b-a3b"\n[providers.ollama]\nkind = "ollama"\nbase_url = "{ollama_url}"\n'
    )
    code = main(["doctor", "--config", str(config), *extra])
    return code, capsys.readouterr().out


def test_doctor_reports_models_fits_and_warnings(
    ollama_server: tuple[FakeOllama, PathLog, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake, _, url = ollama_server
    code, out = doctor(capsys, tmp_path, url, "--json")
    report = json.loads(out)
    status = report["ollama"]["ollama"]
    assert status["up"] and status["version"] == VERSION
    assert [m["name"] for m in status["models"]] == list(fake.state.models)
    fits = report["fits"]["ollama"]
    assert fits["gpt-oss:120b-cloud"]["verdict"] == "cloud"
    assert {f["verdict"] for f in fits.values()} <= {"gpu", "partial", "cpu", "too_big", "cloud"}
    assert any(w.startswith("Ollama cloud is on (gpt-oss:120b-cloud)") for w in report["warnings"])
    # the loaded model runs at Ollama's default 4,096 tokens: too small for agents talking to Ollama directly
    assert any("with a 4,096-token context (its default)" in w for w in report["warnings"])
    assert report["hardware"]["ram_total_bytes"] > 0
    assert code == 0  # warnings alone: the local model is there, nothing is broken

    code, text = doctor(capsys, tmp_path, url)
    assert code == 0
    assert f"Ollama 'ollama' at {url}" in text and f"version {VERSION}" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("gpt-oss:120b-cloud"))
    assert "cloud (runs on Ollama's servers)" in row
    assert "loaded: qwen3:30b-a3b" in text
    assert "Warnings" in text


def test_doctor_with_ollama_down(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, text = doctor(capsys, tmp_path, url)
    assert code == 1
    assert f"DOWN: Ollama at {url} is not running: start it with `ollama serve`" in text
    assert "Coding models for this machine" in text


def test_coding_model_suggestions_follow_the_machine() -> None:
    from router_core.inventory.advice import suggest_models
    from router_core.inventory.hardware.info import GIB

    def names(hw: HardwareInfo) -> list[str]:
        return [s.model.pull for s in suggest_models(hw, installed={"devstral:24b"})]

    assert names(rtx_4090()) == ["qwen3-coder:30b", "qwen3:30b-a3b", "devstral:24b"]
    m1_pro = HardwareInfo(
        "Apple M1 Pro",
        10,
        10,
        16 * GIB,
        11 * GIB,
        gpus=(GpuInfo("apple", "Apple M1 Pro GPU", 16 * GIB * 2 // 3, None, unified=True),),
    )
    assert names(m1_pro) == ["qwen2.5-coder:7b", "qwen2.5-coder:3b", "qwen2.5-coder:1.5b"]
    laptop = HardwareInfo(
        "i7", 8, 16, 32 * GIB, 24 * GIB, gpus=(GpuInfo("nvidia", "RTX 3060 Laptop", 6144 * MIB, None),)
    )
    assert names(laptop) == ["qwen2.5-coder:3b", "qwen2.5-coder:1.5b"]
    cpu_big = HardwareInfo("EPYC", 32, 64, 128 * GIB, 120 * GIB)
    assert names(cpu_big)[:2] == ["qwen3-coder:30b", "qwen3:30b-a3b"]  # MoE models run on CPUs with RAM to spare
    cpu_small = HardwareInfo("EPYC", 2, 2, 8 * GIB, 7 * GIB)
    assert names(cpu_small) == ["qwen2.5-coder:3b", "qwen2.5-coder:1.5b"]
    (devstral,) = [s for s in suggest_models(rtx_4090(), installed={"devstral:24b"}) if s.model.pull == "devstral:24b"]
    assert devstral.installed
