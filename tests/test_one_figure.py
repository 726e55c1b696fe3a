"""One figure per fact (issue 19, item 6): the usable context is one function's figure in
doctor, the Models tab and client configs, and it does not move with free memory; tok/s
only for answers long enough to measure; a truncation warning only on evidence; the
hardware lines never say "no GPU" beside Ollama's "N GiB on GPU"."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from app.machine_panel import MODEL_COLUMNS, MachinePanel, hardware_text
from router_core.clients.model_limits import local_facts
from router_core.commands.doctor import render
from router_core.events import RequestRecord
from router_core.inventory.context import TRUNCATION_FLOOR_TOKENS, check_truncation, usable_context
from router_core.inventory.fit import fit_all
from router_core.inventory.hardware.info import GIB, GpuInfo, HardwareInfo, ProbeResult
from router_core.inventory.machine import InventorySnapshot, fit_budget
from router_core.inventory.ollama_inventory import LoadedModel, ModelDetails, OllamaModel, OllamaStatus
from router_core.ledger.entry import MIN_RATE_SECONDS, MIN_RATE_TOKENS, decode_rate
from router_core.types import Usage
from tests.support.servers import make_settings

CODER = OllamaModel(
    name="qwen2.5-coder:7b",
    size_bytes=int(4.7 * GIB),
    details=ModelDetails("qwen2", 32768, ("completion", "tools"), kv_bytes_per_token=57344),
)
SETTINGS = make_settings({"routing": {"local_model": "ollama/qwen2.5-coder:7b"}})


def _hardware(vram_free_gib: float, ram_free_gib: float) -> HardwareInfo:
    gpu = GpuInfo("nvidia", "Test GPU", 8 * GIB, int(vram_free_gib * GIB), source="test")
    return HardwareInfo("Test CPU", 8, 16, 32 * GIB, int(ram_free_gib * GIB), gpus=(gpu,))


def _snapshot(hardware: HardwareInfo, loaded: tuple[LoadedModel, ...] = ()) -> InventorySnapshot:
    status = OllamaStatus(base_url="http://127.0.0.1:11434", up=True, version="0.12.6", models=(CODER,), loaded=loaded)
    return InventorySnapshot(hardware, {"ollama": status}, {"ollama": fit_all(status, hardware, fit_budget(SETTINGS))})


def test_the_usable_context_is_one_figure_everywhere_and_stable(qtbot) -> None:
    quiet, busy = _snapshot(_hardware(7.5, 28)), _snapshot(_hardware(5.5, 9))
    figure = quiet.usable_context("ollama", CODER.name, SETTINGS.context)
    assert figure is not None and figure % SETTINGS.context.step == 0
    # Free memory moved (a browser opened, another model loaded): the figure did not.
    assert busy.usable_context("ollama", CODER.name, SETTINGS.context) == figure
    # What `hybridge setup` writes for client configs.
    assert local_facts(SETTINGS, busy).context == figure
    # doctor's table: the usable figure, then the model's own maximum, named as such.
    out = io.StringIO()
    render(busy, [], [], out, SETTINGS.context)
    assert f"{figure:,} (model max 32,768)" in out.getvalue()
    # The Models tab: two columns, two names.
    panel = MachinePanel()
    qtbot.addWidget(panel)
    panel.show_snapshot(busy, SETTINGS.context)
    header = [panel.models.horizontalHeaderItem(i).text() for i in range(panel.models.columnCount())]
    assert header == list(MODEL_COLUMNS) and "Model maximum" in header and "Usable here" in header
    row = {header[c]: panel.models.item(0, c).text() for c in range(len(header))}
    assert row["Model maximum"] == "32,768" and row["Usable here"] == f"{figure:,}"
    assert usable_context(SETTINGS.context, CODER.max_context, busy.fit("ollama", CODER.name)) == figure


def _record(output: int, *, streamed: bool, ttft: float, duration: float, engine: float | None = None) -> RequestRecord:
    return RequestRecord(
        request_id="r", started_at=0.0, client="", session=None, requested_model="auto", api="openai",
        route="cloud", reason="", provider="openai", model="gpt-4.1", streamed=streamed, outcome="ok",
        usage=Usage(input_tokens=10, output_tokens=output, decode_tokens_per_second=engine),
        ttft_s=ttft, duration_s=duration,
    )  # fmt: skip


def test_tok_s_only_for_answers_long_enough_to_measure() -> None:
    # The cloud row that read 16,189 tok/s: 290 tokens in one network burst 18 ms after the first.
    assert decode_rate(_record(290, streamed=True, ttft=0.9, duration=0.918)) is None
    # A non-streamed answer arrives whole: our clock cannot time its decoding.
    assert decode_rate(_record(290, streamed=False, ttft=2.0, duration=2.001)) is None
    # Too few tokens, even with the engine's own figure.
    assert decode_rate(_record(MIN_RATE_TOKENS - 1, streamed=True, ttft=0.1, duration=5, engine=40.0)) is None
    # Long enough: the engine's figure, else ours over the decoding time.
    assert decode_rate(_record(200, streamed=True, ttft=0.1, duration=5, engine=41.5)) == 41.5
    assert decode_rate(_record(201, streamed=True, ttft=0.5, duration=0.5 + 4.0)) == pytest.approx(50.0)
    assert decode_rate(_record(MIN_RATE_TOKENS, streamed=True, ttft=0.5, duration=0.5 + MIN_RATE_SECONDS)) == (
        pytest.approx((MIN_RATE_TOKENS - 1) / MIN_RATE_SECONDS)
    )


def test_truncation_is_reported_only_on_evidence() -> None:
    ratio = SETTINGS.context.truncation_warn_ratio
    # A 5-token prompt: the estimate (30, template included) ran high; nothing could be cut.
    assert check_truncation("ollama", "m", 30, 9, 8192, ratio) is None
    assert check_truncation("ollama", "m", TRUNCATION_FLOOR_TOKENS, 10, 8192, ratio) is None
    # A long prompt read at a fraction of its size: the start was dropped.
    warning = check_truncation("ollama", "m", 9000, 2040, 16384, ratio)
    assert warning is not None and "probably dropped" in warning.message
    assert check_truncation("ollama", "m", 9000, 8800, 16384, ratio) is None


def test_hardware_lines_agree_with_what_ollama_reports(qtbot) -> None:
    blind = HardwareInfo("Test CPU", 8, 16, 32 * GIB, 24 * GIB, probes=(ProbeResult.failed("nvml", "no libnvidia-ml"),))
    on_gpu = LoadedModel(CODER.name, int(18.8 * GIB), int(18.8 * GIB), 16384, None)
    snapshot = _snapshot(blind, loaded=(on_gpu,))
    text = hardware_text(blind, snapshot.no_gpu_text())
    assert "No GPU" not in text and "none found" not in text
    assert "Ollama reports 18.8 GiB of models on a GPU" in text
    out = io.StringIO()
    render(snapshot, [], [], out, SETTINGS.context)
    doctor = out.getvalue()
    assert "GPU  none that Hybridge can read (nvml: no libnvidia-ml), but Ollama reports 18.8 GiB" in doctor
    assert "18.8 GiB, all on GPU" in doctor
    panel = MachinePanel()
    qtbot.addWidget(panel)
    panel.show_snapshot(snapshot, SETTINGS.context)
    assert panel.vram_bar.format() == "VRAM: not readable here (Ollama reports 18.8 GiB on a GPU)"
    # With nothing on a GPU either, "no GPU" is what both say.
    idle = replace(snapshot, ollama={"ollama": replace(snapshot.ollama["ollama"], loaded=())})
    assert idle.no_gpu_text() == "none found (nvml: no libnvidia-ml): local models run on the CPU"
