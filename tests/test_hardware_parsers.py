"""Hardware parsers and probes over outputs recorded from real devices (tests/data/hardware/).

GPUs cannot run here, so their tools are stood in for: `nvidia-smi`, `rocm-smi` and
`sysctl` by small executables on PATH that print the recorded output (the probes run them
as real subprocesses, time limits included), NVML by `RecordedNvml` below.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from router_core.inventory.hardware import amd, apple, nvidia
from router_core.inventory.hardware.info import GIB, MIB, HardwareInfo
from router_core.inventory.hardware.probe import probe_hardware
from router_core.inventory.hardware.system import cpu_name_from_cpuinfo
from router_core.inventory.hardware.tools import ProbeFailed, call_with_timeout

DATA = Path(__file__).parent / "data" / "hardware"


class RecordedNvml:
    """The part of the `pynvml` module (nvidia-ml-py) the probe uses, answering recorded values.

    Follows the NVML API reference: nvmlDeviceGetMemoryInfo gives bytes (total, free, used),
    nvmlDeviceGetUtilizationRates percentages, nvmlDeviceGetPowerUsage milliwatts, and a board
    without power readings raises NVMLError with NVML_ERROR_NOT_SUPPORTED.
    """

    NVMLError = pynvml.NVMLError

    def __init__(self, path: Path) -> None:
        self.data = json.loads(path.read_text())

    def nvmlSystemGetDriverVersion(self) -> str:
        return str(self.data["driver_version"])

    def nvmlDeviceGetCount(self) -> int:
        return len(self.data["devices"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return dict(self.data["devices"][index])

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> str:
        return str(handle["name"])

    def nvmlDeviceGetMemoryInfo(self, handle: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(**handle["memory"])

    def nvmlDeviceGetUtilizationRates(self, handle: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(**handle["utilization"])

    def nvmlDeviceGetPowerUsage(self, handle: dict[str, Any]) -> int:
        if handle["power_usage_mw"] is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(handle["power_usage_mw"])


def tool(
    bin_dir: Path, name: str, output: Path | None, *, exit_code: int = 0, stderr: str = "", sleep: float = 0
) -> Path:
    """An executable `name` printing the recorded `output` (and logging its arguments)."""
    bin_dir.mkdir(exist_ok=True)
    lines = ["#!/bin/sh", f'echo "$@" >> "{bin_dir / (name + ".args")}"']
    if sleep:
        lines.append(f"exec /bin/sleep {sleep}")
    if output is not None:
        lines.append(f'/bin/cat "{output}"')
    if stderr:
        lines.append(f"printf '%s' '{stderr}' >&2")
    lines.append(f"exit {exit_code}")
    path = bin_dir / name
    path.write_text("\n".join(lines) + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only this directory, so no real GPU tool of the machine answers."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    return path


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML as on a machine without the NVIDIA driver (whatever this machine has)."""

    def fail() -> list[Any]:
        raise ProbeFailed("NVML: Driver Not Loaded")

    monkeypatch.setattr(nvidia, "_read_nvml", fail)


# --- NVIDIA -----------------------------------------------------------------------------


def test_nvidia_smi_csv_of_a_datacenter_node() -> None:
    gpus = nvidia.parse_nvidia_smi_csv((DATA / "nvidia_h100" / "nvidia-smi.csv").read_text())
    assert [g.index for g in gpus] == [0, 1]
    assert {g.name for g in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert all(g.total_bytes == 81559 * MIB and g.vendor == "nvidia" for g in gpus)
    idle, busy = gpus
    assert idle.free_bytes == 80990 * MIB and busy.free_bytes == 35982 * MIB
    assert (busy.utilization_pct, busy.power_w, busy.driver) == (97.0, 512.33, "550.54.15")


def test_nvidia_smi_csv_of_a_consumer_card_and_a_laptop_without_power_readings() -> None:
    (desk,) = nvidia.parse_nvidia_smi_csv((DATA / "nvidia_rtx4090" / "nvidia-smi.csv").read_text())
    assert (desk.name, desk.total_bytes, desk.free_bytes) == ("NVIDIA GeForce RTX 4090", 24564 * MIB, 22993 * MIB)
    assert desk.power_w == 31.45
    (laptop,) = nvidia.parse_nvidia_smi_csv((DATA / "nvidia_rtx3060_laptop" / "nvidia-smi.csv").read_text())
    assert laptop.power_w is None  # "[N/A]"
    assert laptop.total_bytes == 6144 * MIB


@pytest.mark.parametrize("device", ["nvidia_h100", "nvidia_rtx4090", "nvidia_rtx3060_laptop"])
def test_nvml_and_nvidia_smi_agree_on_the_same_cards(device: str) -> None:
    from_nvml = nvidia.gpus_from_nvml(RecordedNvml(DATA / device / "nvml.json"))
    from_smi = nvidia.parse_nvidia_smi_csv((DATA / device / "nvidia-smi.csv").read_text())
    assert len(from_nvml) == len(from_smi) > 0
    for a, b in zip(from_nvml, from_smi, strict=True):
        assert (a.name, a.index, a.total_bytes, a.free_bytes, a.driver) == (
            b.name,
            b.index,
            b.total_bytes,
            b.free_bytes,
            b.driver,
        )
        assert a.utilization_pct == b.utilization_pct
        assert (a.power_w is None) == (b.power_w is None)
        if a.power_w is not None and b.power_w is not None:
            assert abs(a.power_w - b.power_w) < 0.01
        assert (a.source, b.source) == ("nvml", "nvidia-smi")


def test_without_nvml_the_probe_runs_nvidia_smi(bin_dir: Path, no_nvml: None) -> None:
    tool(bin_dir, "nvidia-smi", DATA / "nvidia_rtx4090" / "nvidia-smi.csv")
    result = nvidia.probe_nvidia(timeout_s=5)
    assert result.source == "nvidia-smi"
    assert result.gpus is not None and [g.name for g in result.gpus] == ["NVIDIA GeForce RTX 4090"]
    asked = (bin_dir / "nvidia-smi.args").read_text().split()
    assert asked == nvidia.SMI_ARGS[1:]
    assert "--format=csv,noheader,nounits" in asked


def test_nvidia_smi_without_a_driver_gives_the_reason(bin_dir: Path, no_nvml: None) -> None:
    tool(bin_dir, "nvidia-smi", DATA / "nvidia_no_driver" / "nvidia-smi.txt", exit_code=9)
    result = nvidia.probe_nvidia(timeout_s=5)
    assert result.gpus is None
    assert "NVML: Driver Not Loaded" in result.reason
    assert "exit 9" in result.reason and "couldn't communicate with the NVIDIA driver" in result.reason


def test_a_hanging_nvidia_smi_is_abandoned_at_the_time_limit(bin_dir: Path, no_nvml: None) -> None:
    tool(bin_dir, "nvidia-smi", None, sleep=30)
    started = time.monotonic()
    result = nvidia.probe_nvidia(timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert result.gpus is None and "did not answer within 0.5 s" in result.reason


def test_a_hanging_library_call_is_abandoned_at_the_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(ProbeFailed, match=r"NVML did not answer within 0\.3 s"):
        call_with_timeout(lambda: time.sleep(30), 0.3, "NVML")
    assert time.monotonic() - started < 2


def test_no_nvidia_tools_at_all(bin_dir: Path, no_nvml: None) -> None:
    result = nvidia.probe_nvidia(timeout_s=1)
    assert result.gpus is None
    assert result.reason == "NVML: Driver Not Loaded; nvidia-smi is not installed"


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="the driver check is Linux's")
def test_without_the_linux_driver_nvml_is_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bin_dir: Path
) -> None:
    # NVML needs the kernel driver: without /proc/driver/nvidia (or WSL's library) the
    # binding is never initialised, and nvidia-smi still gets its turn.
    def must_not_run() -> None:
        raise AssertionError("nvmlInit called on a machine without the driver")

    monkeypatch.setattr(nvidia, "LINUX_DRIVER_DIR", tmp_path / "proc-driver-nvidia")
    monkeypatch.setattr(nvidia, "WSL_NVML", tmp_path / "wsl" / "libnvidia-ml.so.1")
    monkeypatch.setattr(pynvml, "nvmlInit", must_not_run)
    result = nvidia.probe_nvidia(timeout_s=5)
    assert result.gpus is None
    assert result.reason.startswith("NVML: Driver Not Loaded (no ")
    assert result.reason.endswith("nvidia-smi is not installed")

    def driver_missing_after_all() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    # With the driver's directory there (or WSL's NVML), NVML is asked as before.
    (tmp_path / "proc-driver-nvidia").mkdir()
    monkeypatch.setattr(pynvml, "nvmlInit", driver_missing_after_all)
    assert nvidia.probe_nvidia(timeout_s=5).reason == "NVML: Driver Not Loaded; nvidia-smi is not installed"


# --- AMD --------------------------------------------------------------------------------


def test_amd_sysfs_finds_the_discrete_card_and_skips_the_apu() -> None:
    result = amd.probe_amd(timeout_s=1, root=DATA / "amd_rx7900xtx" / "sys" / "class" / "drm")
    assert result.source == "sysfs"
    assert result.gpus is not None
    (card,) = result.gpus
    assert card.name == "Radeon RX 7900 XT/XTX (Navi 31)"
    assert card.index == 0
    assert card.total_bytes == 25753026560  # 24 GiB card, 24560 MiB usable
    assert card.free_bytes == 25753026560 - 1327300608
    assert (card.utilization_pct, card.power_w) == (4.0, 24.0)


def test_amd_sysfs_reader_reads_cards_not_connectors() -> None:
    cards = amd.read_amd_sysfs(DATA / "amd_rx7900xtx" / "sys" / "class" / "drm")
    assert [n for n, _ in cards] == [0, 1]
    _, apu = cards[1]
    assert apu["device"].strip() == "0x164e"
    assert apu["hwmon/power1_input"].strip() == "11000000"
    assert amd.gpu_from_amd_sysfs(apu, 1) is not None  # an AMD GPU, but below MIN_DISCRETE_BYTES


def test_rocm_smi_json_of_rocm_6() -> None:
    gpus = amd.parse_rocm_smi_json((DATA / "amd_rx7900xtx" / "rocm-smi.json").read_text())
    assert [g.index for g in gpus] == [0, 1]
    card = gpus[0]
    assert card.name == "Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]"
    assert (card.total_bytes, card.free_bytes) == (25753026560, 25753026560 - 1327300608)
    assert (card.utilization_pct, card.power_w, card.source) == (4.0, 24.0, "rocm-smi")
    assert gpus[1].power_w is None  # "N/A" on the APU


def test_rocm_smi_of_rocm_5_with_a_warning_before_the_json() -> None:
    (card,) = amd.parse_rocm_smi_json((DATA / "amd_rx7900xtx" / "rocm-smi-5.7.txt").read_text())
    assert card.name.startswith("Navi 31") and card.total_bytes == 25753026560


def test_rocm_smi_answers_when_sysfs_shows_no_amd_card(bin_dir: Path) -> None:
    tool(bin_dir, "rocm-smi", DATA / "amd_rx7900xtx" / "rocm-smi.json")
    result = amd.probe_amd(timeout_s=5, root=DATA / "no_gpu_vm" / "sys" / "class" / "drm")
    assert result.source == "rocm-smi"
    assert result.gpus is not None and [g.total_bytes for g in result.gpus] == [25753026560]
    assert (bin_dir / "rocm-smi.args").read_text().split() == amd.ROCM_ARGS[1:]


# --- Apple Silicon ----------------------------------------------------------------------


def sysctl_values(device: str) -> dict[str, str]:
    return apple.parse_sysctl((DATA / device / "sysctl.txt").read_text())


def test_apple_m2_max_gets_three_quarters_of_64_gib_by_default() -> None:
    gpu = apple.gpu_from_sysctl(sysctl_values("apple_m2_max_64gb"), ram_available=60 * GIB)
    assert gpu is not None
    assert (gpu.name, gpu.unified, gpu.vendor) == ("Apple M2 Max GPU", True, "apple")
    assert gpu.total_bytes == 48 * GIB
    assert gpu.free_bytes == 48 * GIB


def test_apple_m1_pro_16_gib_gets_two_thirds_and_free_follows_available_memory() -> None:
    gpu = apple.gpu_from_sysctl(sysctl_values("apple_m1_pro_16gb"), ram_available=7 * GIB)
    assert gpu is not None
    assert gpu.total_bytes == 16 * GIB * 2 // 3
    assert gpu.free_bytes == 7 * GIB  # less is free now than the GPU's share


def test_apple_m3_max_with_a_raised_wired_limit() -> None:
    values = sysctl_values("apple_m3_max_128gb")
    assert values["iogpu.wired_limit_mb"] == "122880"
    gpu = apple.gpu_from_sysctl(values)
    assert gpu is not None and gpu.total_bytes == 120 * GIB and gpu.free_bytes is None


def test_an_intel_mac_has_no_gpu_ollama_uses() -> None:
    assert apple.gpu_from_sysctl(sysctl_values("intel_mac")) is None


def test_probe_on_a_mac_reads_sysctl_once(bin_dir: Path) -> None:
    tool(bin_dir, "sysctl", DATA / "apple_m2_max_64gb" / "sysctl.txt")
    hw = probe_hardware(timeout_s=5, platform="darwin")
    assert hw.cpu_name == "Apple M2 Max"
    (gpu,) = hw.gpus
    assert gpu.source == "sysctl" and gpu.total_bytes == 48 * GIB
    assert hw.unified_memory
    asked = (bin_dir / "sysctl.args").read_text().splitlines()
    assert asked == [" ".join(apple.SYSCTL_KEYS)]


def test_sysctl_that_fails_on_unknown_keys_still_counts(bin_dir: Path) -> None:
    stderr = (DATA / "intel_mac" / "sysctl-stderr.txt").read_text()
    tool(bin_dir, "sysctl", DATA / "intel_mac" / "sysctl.txt", exit_code=1, stderr=stderr)
    result, values = apple.probe_apple(timeout_s=5, ram_available=None, platform="darwin")
    assert values["machdep.cpu.brand_string"].startswith("Intel(R) Core(TM) i9")
    assert result.gpus is None and result.reason == "not Apple Silicon"


# --- no GPU -----------------------------------------------------------------------------


def test_a_vm_without_a_gpu_says_why(bin_dir: Path, no_nvml: None) -> None:
    root = DATA / "no_gpu_vm" / "sys" / "class" / "drm"
    results = (nvidia.probe_nvidia(timeout_s=1), amd.probe_amd(timeout_s=1, root=root))
    memory = json.loads((DATA / "no_gpu_vm" / "memory.json").read_text())
    hw = HardwareInfo(
        cpu_name=cpu_name_from_cpuinfo((DATA / "no_gpu_vm" / "cpuinfo.txt").read_text()) or "?",
        cpu_cores=1,
        cpu_threads=2,
        ram_total_bytes=memory["total"],
        ram_available_bytes=memory["available"],
        gpus=tuple(g for r in results for g in (r.gpus or ())),
        probes=results,
    )
    assert hw.cpu_name == "AMD EPYC 7B13"
    assert not hw.has_gpu and hw.vram_total_bytes == 0
    assert hw.why_no_gpu() == (
        "nvidia: NVML: Driver Not Loaded; nvidia-smi is not installed; "
        "amd: no AMD GPU in sysfs; rocm-smi is not installed"
    )


def test_probing_this_machine_is_quick_and_explains_itself() -> None:
    started = time.monotonic()
    hw = probe_hardware(timeout_s=3)
    assert time.monotonic() - started < 10
    assert hw.ram_total_bytes >= hw.ram_available_bytes > 0
    assert hw.cpu_threads is None or hw.cpu_threads >= 1
    assert hw.gpus or all(p.reason for p in hw.probes), hw.probes
    assert os.cpu_count() is None or hw.cpu_threads in (None, os.cpu_count())
