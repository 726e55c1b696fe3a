"""Fit verdicts and context sizing.

First the pure fit over recorded machines (tests/data/hardware/) and recorded Ollama models
(tests/data/ollama/). Then requests through a running Hybridge: an OpenCode-sized prompt
gets a num_ctx that holds it (the Ollama-API test server and the real model say so), a
prompt beyond the local fit escalates to a cloud (tests/fakes/fake_openai_cloud.py) with a
"long context" reason, or is refused clearly when there is no cloud, and a runner that
truncates anyway is noticed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from router_core.inventory.context import TruncationWarning
from router_core.inventory.fit import FitBudget, ModelFit, fit_all, fit_model
from router_core.inventory.hardware import GpuInfo, HardwareInfo
from router_core.inventory.hardware.amd import probe_amd
from router_core.inventory.hardware.apple import gpu_from_sysctl, parse_sysctl
from router_core.inventory.hardware.info import GIB
from router_core.inventory.hardware.nvidia import parse_nvidia_smi_csv
from router_core.inventory.machine import fit_budget
from router_core.inventory.ollama_inventory import OllamaModel, OllamaStatus, parse_ps, parse_show, parse_tags
from router_core.inventory.prompt_tokens import conservative_tokens
from router_core.providers.ollama import OllamaProvider
from router_core.routing.tokens import estimate_prompt_tokens
from router_core.service import RouterService
from tests.fakes.fake_openai_cloud import API_KEY, DEFAULT_TEXT, FakeOpenAICloud
from tests.support.fake_ollama import FakeModel, FakeOllama, _llama_messages
from tests.support.llama import LlamaServer
from tests.support.opencode_bodies import agent_body, chat_request, compaction_body
from tests.support.servers import ThreadedServer, make_settings, run_hybridge

HW = Path(__file__).parent / "data" / "hardware"
OLLAMA = Path(__file__).parent / "data" / "ollama"
BUDGET = fit_budget(make_settings({}))


# --- machines and models, from recorded outputs ------------------------------------------


def machine(gpus: tuple[GpuInfo, ...], ram_total: int, ram_available: int) -> HardwareInfo:
    return HardwareInfo("cpu", 8, 16, ram_total, ram_available, gpus=gpus)


def nvidia(device: str) -> tuple[GpuInfo, ...]:
    return tuple(parse_nvidia_smi_csv((HW / device / "nvidia-smi.csv").read_text()))


def apple(device: str, ram_available: int) -> HardwareInfo:
    values = parse_sysctl((HW / device / "sysctl.txt").read_text())
    gpu = gpu_from_sysctl(values, ram_available)
    assert gpu is not None
    return machine((gpu,), int(values["hw.memsize"]), ram_available)


def no_gpu_vm() -> HardwareInfo:
    memory = json.loads((HW / "no_gpu_vm" / "memory.json").read_text())
    return machine((), memory["total"], memory["available"])


def rx7900xtx() -> HardwareInfo:
    gpus = probe_amd(1, root=HW / "amd_rx7900xtx" / "sys" / "class" / "drm").gpus
    assert gpus
    return machine(gpus, 64 * GIB, 50 * GIB)


MACHINES = {
    "h100_node": lambda: machine(nvidia("nvidia_h100"), 2048 * GIB, 1900 * GIB),
    "rtx4090": lambda: machine(nvidia("nvidia_rtx4090"), 64 * GIB, 48 * GIB),
    "rtx3060_laptop": lambda: machine(nvidia("nvidia_rtx3060_laptop"), 32 * GIB, 24 * GIB),
    "rx7900xtx": rx7900xtx,
    "m2_max_64gb": lambda: apple("apple_m2_max_64gb", 52 * GIB),
    "m1_pro_16gb": lambda: apple("apple_m1_pro_16gb", 11 * GIB),
    "no_gpu_vm": no_gpu_vm,
    "no_gpu_24gb": lambda: machine((), 24 * GIB, 23 * GIB),
}
SHOWN = {
    "qwen3:30b-a3b": "show_qwen3_30b_a3b.json",
    "devstral:24b": "show_devstral_24b.json",
    "qwen2.5-coder:7b": "show_qwen2.5_coder_7b.json",
}


def models() -> dict[str, OllamaModel]:
    listed = parse_tags(json.loads((OLLAMA / "tags.json").read_text()))
    return {
        m.name: replace(m, details=parse_show(json.loads((OLLAMA / SHOWN[m.name]).read_text())))
        if m.name in SHOWN
        else m
        for m in listed
    }


def gpu_room(hw: HardwareInfo, budget: FitBudget) -> int:
    """Room for the context: total memory less the reserve (stable, not what is free now)."""
    if hw.unified_memory:
        return min(hw.vram_total_bytes, hw.ram_total_bytes) - budget.vram_reserve_bytes
    return hw.vram_total_bytes - budget.vram_reserve_bytes


def assert_largest_that_fits(fit: ModelFit, room: int, cap: int, step: int) -> None:
    """The context is the largest step multiple whose KV cache fits beside the weights."""
    assert fit.max_context is not None and fit.kv_bytes_per_token is not None
    context, kv = fit.max_context, fit.kv_bytes_per_token
    assert fit.weights_bytes + kv * context <= room
    if context < cap:
        assert context % step == 0
        assert fit.weights_bytes + kv * (context + step) > room
    else:
        assert context == cap


# --- verdicts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine_name", "model", "verdict"),
    [
        ("h100_node", "qwen3:30b-a3b", "gpu"),
        ("rtx4090", "qwen3:30b-a3b", "gpu"),
        ("rtx4090", "devstral:24b", "gpu"),
        ("rx7900xtx", "qwen3:30b-a3b", "gpu"),
        ("m2_max_64gb", "devstral:24b", "gpu"),
        ("rtx3060_laptop", "qwen3:30b-a3b", "partial"),
        ("rtx3060_laptop", "qwen2.5-coder:7b", "partial"),  # 4.4 GiB + 8k context > 6 GiB - reserve
        ("m1_pro_16gb", "qwen3:30b-a3b", "too_big"),
        ("no_gpu_vm", "qwen3:30b-a3b", "too_big"),
        ("no_gpu_24gb", "qwen2.5-coder:7b", "cpu"),
        ("rtx4090", "gpt-oss:120b-cloud", "cloud"),
    ],
)
def test_verdicts_on_recorded_machines(machine_name: str, model: str, verdict: str) -> None:
    fit = fit_model(models()[model], MACHINES[machine_name](), BUDGET)
    assert fit.verdict == verdict, fit.note


def test_a_24_gb_card_holds_devstral_with_the_largest_context_that_fits() -> None:
    hw = MACHINES["rtx4090"]()
    model = models()["devstral:24b"]
    fit = fit_model(model, hw, BUDGET)
    assert model.max_context is not None
    assert_largest_that_fits(
        fit, gpu_room(hw, BUDGET), min(model.max_context, BUDGET.max_context or model.max_context), BUDGET.step
    )
    assert fit.max_context is not None and 32768 < fit.max_context < model.max_context


@pytest.mark.parametrize("machine_name", ["h100_node", "rtx4090", "rx7900xtx", "m2_max_64gb"])
def test_contexts_on_gpu_machines_are_the_largest_that_fit(machine_name: str) -> None:
    hw = MACHINES[machine_name]()
    for model in models().values():
        fit = fit_model(model, hw, BUDGET)
        if fit.verdict == "gpu" and model.max_context:
            assert_largest_that_fits(
                fit, gpu_room(hw, BUDGET), min(model.max_context, BUDGET.max_context or model.max_context), BUDGET.step
            )


def test_partial_offload_counts_ram_beside_the_gpu() -> None:
    hw = MACHINES["rtx3060_laptop"]()
    fit = fit_model(models()["qwen3:30b-a3b"], hw, BUDGET)
    room = gpu_room(hw, BUDGET) + hw.ram_total_bytes - BUDGET.ram_reserve_bytes
    assert fit.weights_bytes > gpu_room(hw, BUDGET)
    assert_largest_that_fits(fit, room, 40960, BUDGET.step)


def test_the_context_does_not_drift_with_free_memory() -> None:
    """Issue 14: free RAM moved the figure 30,720 → 24,576 within minutes; each change is a reload."""
    model = models()["qwen2.5-coder:7b"]
    hw = MACHINES["no_gpu_24gb"]()
    figures = {
        fit_model(model, replace(hw, ram_available_bytes=hw.ram_available_bytes - n * 2**29), BUDGET).max_context
        for n in range(4)
    }
    assert len(figures) == 1 and None not in figures


def test_too_big_says_what_it_needs() -> None:
    fit = fit_model(models()["qwen3:30b-a3b"], MACHINES["no_gpu_vm"](), BUDGET)
    assert (fit.max_context, fit.runs_locally) == (0, False)
    assert fit.note.startswith("needs 18.0 GiB, 4.7 GiB free")


def test_memory_a_loaded_model_holds_counts_as_free_for_it() -> None:
    model = models()["qwen3:30b-a3b"]
    (loaded,) = parse_ps(json.loads((OLLAMA / "ps.json").read_text()))
    idle = MACHINES["rtx4090"]()
    gpu = idle.gpus[0]
    assert gpu.free_bytes is not None
    busy = replace(idle, gpus=(replace(gpu, free_bytes=gpu.free_bytes - loaded.vram_bytes),))
    assert fit_model(model, busy, BUDGET).verdict == "partial"  # as if another program held that VRAM
    assert fit_model(model, busy, BUDGET, loaded) == fit_model(model, idle, BUDGET)


def test_without_kv_figures_the_verdict_stands_and_the_context_is_unknown() -> None:
    model = replace(models()["qwen3:30b-a3b"], details=None)
    fit = fit_model(model, MACHINES["rtx4090"](), BUDGET)
    assert (fit.verdict, fit.max_context) == ("gpu", None)


def test_fit_all_covers_every_listed_model() -> None:
    status = OllamaStatus("http://127.0.0.1:11434", True, "0.12.6", tuple(models().values()))
    fits = fit_all(status, MACHINES["m2_max_64gb"](), BUDGET)
    assert {n: f.verdict for n, f in fits.items()} == {
        "qwen3:30b-a3b": "gpu",
        "devstral:24b": "gpu",
        "qwen2.5-coder:7b": "gpu",
        "gpt-oss:120b-cloud": "cloud",
    }


# --- context sizing through a running Hybridge -----------------------------------------

LOCAL = "gemma3:270m"
# The real model's shape: 18 blocks, 1 KV head, 256+256 head size; listed with `tools` so
# the engine (which answers 400 to tools for a model without them) takes agent turns.
GEMMA = FakeModel(LOCAL, capabilities=["completion", "tools"])
GEMMA_KV = GEMMA.block_count * GEMMA.head_count_kv * (GEMMA.key_length + GEMMA.value_length) * 2
SMALL_FIT = 12288


def small_gpu() -> HardwareInfo:
    """A small card: gemma3:270m fits beside SMALL_FIT tokens of context, not more (from its total)."""
    total = BUDGET.vram_reserve_bytes + GEMMA.size + (SMALL_FIT + 1024) * GEMMA_KV
    gpu = GpuInfo("nvidia", "NVIDIA GeForce GTX 1650", total, total, source="nvml")
    return machine((gpu,), 16 * GIB, 12 * GIB)


def big_gpu() -> HardwareInfo:
    return MACHINES["rtx4090"]()


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[FakeOpenAICloud, str]]:
    fake = FakeOpenAICloud()
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


def serve_ollama(llama_url: str, *models: FakeModel) -> tuple[FakeOllama, ThreadedServer]:
    fake = FakeOllama(llama_url, list(models))
    return fake, ThreadedServer(fake.app).start()


def settings_for(ollama_url: str, cloud_url: str | None = None, **routing: Any) -> Any:
    data: dict[str, Any] = {
        "routing": {"local_model": f"ollama/{LOCAL}", **routing},
        "providers": {"ollama": {"kind": "ollama", "base_url": ollama_url}},
    }
    if cloud_url:
        data["providers"]["cloud"] = {"kind": "openai", "base_url": f"{cloud_url}/v1", "api_key": "env:FIT_TEST_KEY"}
        data["routing"]["cloud_model"] = "cloud/gpt-4.1"
    return make_settings(data)


def inventory_ready(service: RouterService, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while service.runtime is None or service.runtime.inventory.snapshot is None:
        assert time.monotonic() < deadline, "the inventory never refreshed"
        time.sleep(0.05)


def prompt_tokens(llama: LlamaServer, ollama_body: dict[str, Any]) -> int:
    """Tokens the model reads for an /api/chat body, counted by llama-server as the test server renders it."""
    messages = _llama_messages(ollama_body.get("messages") or [], ollama_body.get("tools"))
    prompt = httpx.post(f"{llama.url}/apply-template", json={"messages": messages}, timeout=30).json()["prompt"]
    counted = httpx.post(f"{llama.url}/tokenize", json={"content": prompt, "add_special": True}, timeout=30)
    return len(counted.json()["tokens"])  # with the BOS token the model reads first


@pytest.mark.real_model
@pytest.mark.timeout(900)  # about 8k prompt tokens on two CPU threads
def test_an_opencode_sized_prompt_gets_a_num_ctx_that_holds_it(llama_server: LlamaServer) -> None:
    fake, server = serve_ollama(llama_server.url, GEMMA)
    body = agent_body("Add an index on orders.created_at in a new migration.", model="local")
    body.update({"max_tokens": 8, "stream": False, "temperature": 0})
    request = chat_request(body)
    estimate = estimate_prompt_tokens(request.messages, request.tools)
    assert 9_500 < estimate < 11_000  # OpenCode's real system prompt and ten tools: about 10k tokens
    try:
        with run_hybridge(settings_for(server.url), hardware_probe=big_gpu) as service:
            inventory_ready(service)
            warnings: list[TruncationWarning] = []

            def heard(w: TruncationWarning) -> None:
                warnings.append(w)

            service.events.truncation_warning.connect(heard)
            response = httpx.post(f"{service.status().base_url}/chat/completions", json=body, timeout=600)
            provider = service.runtime.providers["ollama"] if service.runtime else None
    finally:
        server.stop()
    assert response.status_code == 200, response.text
    assert response.headers["x-hybridge-route"] == "local"
    (sent,) = fake.state.requests
    num_ctx = sent["options"]["num_ctx"]
    read = prompt_tokens(llama_server, sent)
    assert num_ctx >= read + 8 and num_ctx > 4096  # Ollama's default would have cut it
    assert num_ctx % 2048 == 0 and num_ctx >= estimate + 8
    # Nothing was dropped: the model read the whole prompt.
    assert response.json()["usage"]["prompt_tokens"] == read
    assert isinstance(provider, OllamaProvider) and provider.truncation_warnings == 0 and warnings == []


def test_a_prompt_beyond_the_local_fit_escalates_with_the_reason(
    cloud: tuple[FakeOpenAICloud, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIT_TEST_KEY", API_KEY)
    fake_cloud, cloud_url = cloud
    fake_cloud.state.requests.clear()
    # The local model is never reached here, so no model server stands behind the test server.
    fake, server = serve_ollama("http://127.0.0.1:9", GEMMA)
    body = agent_body("Refactor the order service.", history=8)
    body.update({"max_tokens": 256, "stream": False})
    request = chat_request(body)
    estimate = estimate_prompt_tokens(request.messages, request.tools)
    try:
        with run_hybridge(settings_for(server.url, cloud_url), hardware_probe=small_gpu) as service:
            inventory_ready(service)
            assert service.runtime is not None and service.runtime.local_context_limit() == SMALL_FIT
            response = httpx.post(f"{service.status().base_url}/chat/completions", json=body, timeout=60)
    finally:
        server.stop()
    assert response.status_code == 200, response.text
    assert response.headers["x-hybridge-route"] == "cloud"
    assert response.headers["x-hybridge-model"] == "cloud/gpt-4.1"
    reason = response.headers["x-hybridge-reason"]
    assert reason.startswith("long context: ") and f"> {SMALL_FIT:,} local" in reason
    assert f"{estimate:,}" in reason
    assert response.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert fake.state.requests == []  # never sent to the local model to be truncated there
    assert len(fake_cloud.state.requests) == 1


def test_without_a_cloud_a_prompt_beyond_the_fit_is_a_clear_error() -> None:
    fake, server = serve_ollama("http://127.0.0.1:9", GEMMA)
    body = agent_body("Refactor the order service.", history=8)
    body.update({"max_tokens": 256, "stream": False})
    request = chat_request(body)
    try:
        with run_hybridge(settings_for(server.url), hardware_probe=small_gpu) as service:
            inventory_ready(service)
            response = httpx.post(f"{service.status().base_url}/chat/completions", json=body, timeout=60)
    finally:
        server.stop()
    assert response.status_code == 400
    error = response.json()["error"]
    local = conservative_tokens(request.messages, request.tools)  # the provider's estimate, erring high
    assert error["message"] == f"long context: ~{local:,} prompt + 256 output tokens > {SMALL_FIT:,} local"
    assert response.headers["x-hybridge-route"] == "local"
    assert fake.state.requests == []


@pytest.mark.real_model
@pytest.mark.timeout(900)
def test_a_runner_that_truncates_anyway_is_noticed(llama_server: LlamaServer) -> None:
    # As Ollama's older runner did with qwen2.5-coder:14b: num_ctx asked, a smaller one used.
    # An Ollama before 0.12.4 has no `truncate`, so the runner's cut is silent: Hybridge warns.
    old = FakeModel("qwen2.5-coder:14b", family="qwen2", runner_context=2048)
    fake = FakeOllama(llama_server.url, [replace(GEMMA), old], version="0.11.10")
    server = ThreadedServer(fake.app).start()
    body = compaction_body("You summarize coding sessions.", history=6, model="ollama/qwen2.5-coder:14b")
    body.update({"max_tokens": 8, "stream": True, "temperature": 0})
    request = chat_request(body)
    estimate = conservative_tokens(request.messages, request.tools)
    warnings: list[TruncationWarning] = []

    def heard(w: TruncationWarning) -> None:
        warnings.append(w)

    try:
        with run_hybridge(settings_for(server.url), hardware_probe=big_gpu) as service:
            inventory_ready(service)
            service.events.truncation_warning.connect(heard)
            with httpx.stream(
                "POST", f"{service.status().base_url}/chat/completions", json=body, timeout=600
            ) as response:
                assert response.status_code == 200
                lines = [line for line in response.iter_lines() if line]
            provider = service.runtime.providers["ollama"] if service.runtime else None
    finally:
        server.stop()
    assert lines[-1] == "data: [DONE]"  # the answer itself is delivered; the warning is recorded beside it
    (sent,) = fake.state.requests
    assert sent["options"]["num_ctx"] >= estimate > 2048
    (warning,) = warnings
    assert isinstance(provider, OllamaProvider) and provider.truncation_warnings == 1
    assert (warning.provider, warning.model, warning.estimated_tokens) == ("ollama", "qwen2.5-coder:14b", estimate)
    assert warning.prompt_eval_count < 2048 < estimate
    assert warning.num_ctx == sent["options"]["num_ctx"]
    assert "the start of the prompt was probably dropped" in warning.message
