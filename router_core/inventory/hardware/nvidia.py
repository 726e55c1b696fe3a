"""NVIDIA GPUs through NVML (nvidia-ml-py), with `nvidia-smi` CSV as the fallback.

NVIDIA documents NVML and its Python bindings as the stable interface, and the CSV of
`nvidia-smi --query-gpu` as a scripting format that may change; hence NVML first.
"""

from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from router_core.inventory.hardware.info import MIB, GpuInfo, ProbeResult
from router_core.inventory.hardware.tools import ProbeFailed, call_with_timeout, run_tool

T = TypeVar("T")

# Columns asked of nvidia-smi, in this order (`nvidia-smi --help-query-gpu` lists them).
SMI_FIELDS = (
    "index",
    "name",
    "memory.total",
    "memory.used",
    "memory.free",
    "utilization.gpu",
    "power.draw",
    "driver_version",
)
# Where Linux shows the NVIDIA kernel driver once it is loaded (nvidia.ko and the open module
# both create it; containers see the host's), and where WSL 2 puts the Windows driver's NVML.
LINUX_DRIVER_DIR = Path("/proc/driver/nvidia")
WSL_NVML = Path("/usr/lib/wsl/lib/libnvidia-ml.so.1")
SMI_ARGS = ["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader,nounits"]


def _number(raw: str) -> float | None:
    """A CSV cell as a number; nvidia-smi writes `[N/A]`, `[Not Supported]` and the like for none."""
    raw = raw.strip()
    if not raw or raw.startswith("["):
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def parse_nvidia_smi_csv(text: str) -> list[GpuInfo]:
    """GPUs from `nvidia-smi --query-gpu=<SMI_FIELDS> --format=csv,noheader,nounits` (memory in MiB)."""
    gpus: list[GpuInfo] = []
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        if len(row) != len(SMI_FIELDS):
            continue
        cells = dict(zip(SMI_FIELDS, (c.strip() for c in row), strict=True))
        total = _number(cells["memory.total"])
        if total is None:
            continue
        free = _number(cells["memory.free"])
        index = _number(cells["index"])
        gpus.append(
            GpuInfo(
                vendor="nvidia",
                name=cells["name"],
                total_bytes=int(total * MIB),
                free_bytes=int(free * MIB) if free is not None else None,
                index=int(index) if index is not None else len(gpus),
                utilization_pct=_number(cells["utilization.gpu"]),
                power_w=_number(cells["power.draw"]),
                driver=None if cells["driver_version"].startswith("[") else cells["driver_version"],
                source="nvidia-smi",
            )
        )
    return gpus


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpus_from_nvml(nvml: Any) -> list[GpuInfo]:
    """GPUs read through an initialised NVML binding (the `pynvml` module of nvidia-ml-py)."""
    error: type[BaseException] = getattr(nvml, "NVMLError", Exception)

    def optional(read: Callable[[], T]) -> T | None:
        # Utilisation and power are not supported on every board (or in every container).
        try:
            return read()
        except error:
            return None

    driver = optional(lambda: _text(nvml.nvmlSystemGetDriverVersion()))
    gpus = []
    for i in range(int(nvml.nvmlDeviceGetCount())):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)

        def utilization(h: Any = handle) -> float:
            return float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)

        def milliwatts_drawn(h: Any = handle) -> float:
            return float(nvml.nvmlDeviceGetPowerUsage(h))

        util = optional(utilization)
        milliwatts = optional(milliwatts_drawn)
        gpus.append(
            GpuInfo(
                vendor="nvidia",
                name=_text(nvml.nvmlDeviceGetName(handle)),
                total_bytes=int(memory.total),
                free_bytes=int(memory.free),
                index=i,
                utilization_pct=util,
                power_w=milliwatts / 1000.0 if milliwatts is not None else None,
                driver=driver,
                source="nvml",
            )
        )
    return gpus


def nvml_unavailable() -> str | None:
    """Why NVML cannot answer on this machine, where that is plain without loading it: on
    Linux NVML needs the kernel driver, so without it the binding (and ctypes, ~2 MB that an
    idle router keeps) is not even imported. None: try NVML."""
    if sys.platform == "linux" and not LINUX_DRIVER_DIR.exists() and not WSL_NVML.exists():
        return f"Driver Not Loaded (no {LINUX_DRIVER_DIR})"
    return None


def _read_nvml() -> list[GpuInfo]:
    if reason := nvml_unavailable():
        raise ProbeFailed(f"NVML: {reason}")
    try:
        import pynvml
    except ImportError:
        raise ProbeFailed("nvidia-ml-py is not installed") from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise ProbeFailed(f"NVML: {exc}") from None
    try:
        return gpus_from_nvml(pynvml)
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def probe_nvidia(timeout_s: float) -> ProbeResult:
    """NVML first; `nvidia-smi` when NVML cannot be loaded or fails."""
    try:
        return ProbeResult("nvml", tuple(call_with_timeout(_read_nvml, timeout_s, "NVML")))
    except ProbeFailed as exc:
        nvml_reason = str(exc)
    except Exception as exc:  # a broken binding must not break the probe
        nvml_reason = f"NVML failed ({type(exc).__name__}: {exc})"
    try:
        return ProbeResult("nvidia-smi", tuple(parse_nvidia_smi_csv(run_tool(SMI_ARGS, timeout_s))))
    except ProbeFailed as exc:
        return ProbeResult.failed("nvidia", f"{nvml_reason}; {exc}")
