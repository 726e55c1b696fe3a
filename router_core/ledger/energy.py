"""GPU energy drawn during local generation, from NVML power samples.

A sampler thread reads the board power of every NVIDIA GPU a few times a second and keeps
the last hour. A finished local request is charged the energy drawn over its interval
(power held from one sample to the next), shared evenly with the other local requests
running at the same moments. This is the whole board's draw, idle power included, so it
errs towards more electricity and less savings. Where NVML or a GPU is missing there is no
figure at all: views say "electricity not measured", never 0 Wh.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from router_core.inventory.hardware.nvidia import nvml_unavailable

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.25
KEEP_S = 3600.0
DRM_ROOT = Path("/sys/class/drm")
J_PER_WH = 3600.0


class PowerSource(Protocol):
    def read_watts(self) -> float | None: ...

    def close(self) -> None: ...


class NvmlPowerSource:
    """Summed board power of every NVIDIA GPU, through NVML (nvidia-ml-py)."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> NvmlPowerSource | None:
        """The source, or None where NVML, a GPU or its power reading is unavailable."""
        if reason := nvml_unavailable():
            log.info("electricity not measured: NVML unavailable (%s)", reason)
            return None
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, driver errors
            log.info("electricity not measured: NVML unavailable (%s)", exc)
            return None
        try:
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            source = cls(pynvml, handles)
            if not handles or source.read_watts() is None:
                raise RuntimeError("no GPU reports its power draw")
        except Exception as exc:
            log.info("electricity not measured: %s", exc)
            pynvml.nvmlShutdown()
            return None
        return source

    def read_watts(self) -> float | None:
        try:
            return float(sum(self._nvml.nvmlDeviceGetPowerUsage(h) for h in self._handles)) / 1000.0  # mW
        except Exception:
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


class SysfsPowerSource:
    """Summed power of every AMD GPU from the kernel's hwmon files (microwatts).

    `power1_average` on older kernels, `power1_input` on newer (amdgpu hwmon docs).
    """

    def __init__(self, files: list[Path]) -> None:
        self._files = files

    @classmethod
    def open(cls, root: Path = DRM_ROOT) -> SysfsPowerSource | None:
        files = []
        for card in sorted(root.glob("card*")):
            if not card.name[4:].isdigit():
                continue  # connectors such as card0-DP-1
            for hwmon in sorted((card / "device").glob("hwmon/hwmon*")):
                found = next((hwmon / n for n in ("power1_average", "power1_input") if (hwmon / n).exists()), None)
                if found is not None:
                    files.append(found)
        source = cls(files)
        return source if files and source.read_watts() is not None else None

    def read_watts(self) -> float | None:
        try:
            return sum(int(f.read_text().strip()) for f in self._files) / 1e6
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        return None


class EstimatedPowerSource:
    """A fixed board power (a setting, or the detected card's typical board power): an estimate."""

    estimated = True

    def __init__(self, watts: float) -> None:
        self.watts = watts

    def read_watts(self) -> float | None:
        return self.watts

    def close(self) -> None:
        return None


# Typical board power (W) of common cards, by a distinctive part of the product name.
TYPICAL_BOARD_POWER_W = {
    "rtx 5090": 575, "rtx 5080": 360, "rtx 4090": 450, "rtx 4080": 320, "rtx 4070 ti": 285,
    "rtx 4070": 200, "rtx 4060 ti": 160, "rtx 4060": 115, "rtx 3090 ti": 450, "rtx 3090": 350,
    "rtx 3080 ti": 350, "rtx 3080": 320, "rtx 3070": 220, "rtx 3060": 170, "a100": 400, "h200": 700, "h100": 700,
    "l40s": 350, "l4": 72, "rx 7900 xtx": 355, "rx 7900 xt": 315, "rx 6900 xt": 300, "mi300x": 750,
}  # fmt: skip


def typical_board_power(gpu_names: list[str]) -> float | None:
    """Summed typical board power of the named cards; None if any is unknown."""
    total = 0.0
    for name in gpu_names:
        lowered = name.lower()
        match = next((w for key, w in TYPICAL_BOARD_POWER_W.items() if key in lowered), None)
        if match is None:
            return None
        total += match
    return total or None


def open_power_source(configured_watts: float, gpu_names: list[str]) -> PowerSource | None:
    """NVML, else AMD's sysfs, else an estimate from `configured_watts` (0: the detected
    card's typical board power); None when nothing is known."""
    source: PowerSource | None = NvmlPowerSource.open() or SysfsPowerSource.open()
    if source is not None:
        return source
    watts = configured_watts or typical_board_power(gpu_names)
    if watts:
        log.info("electricity estimated at %g W (GPU power cannot be read here)", watts)
        return EstimatedPowerSource(watts)
    return None


Interval = tuple[float, float]


class EnergyMeter:
    """Power samples over time, and the energy of a request's interval."""

    def __init__(self, source: PowerSource | None, *, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.source = source
        self.interval_s = interval_s
        self._times: deque[float] = deque()
        self._watts: deque[float] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def measured(self) -> bool:
        return self.source is not None

    @property
    def estimated(self) -> bool:
        """The figure comes from a fixed wattage, not a power reading."""
        return bool(getattr(self.source, "estimated", False))

    def start(self) -> None:
        if self.source is None or self._thread is not None:
            return
        # A first sample now, so a request that starts at once is measured too.
        watts = self.source.read_watts()
        if watts is not None:
            self.add_sample(time.time(), watts)
        self._thread = threading.Thread(target=self._run, name="hybridge-power", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self.source is not None:
            self.source.close()

    def _run(self) -> None:
        assert self.source is not None
        while not self._stop.wait(self.interval_s):
            watts = self.source.read_watts()
            if watts is not None:
                self.add_sample(time.time(), watts)

    def add_sample(self, at: float, watts: float) -> None:
        with self._lock:
            self._times.append(at)
            self._watts.append(watts)
            while self._times and self._times[0] < at - KEEP_S:
                self._times.popleft()
                self._watts.popleft()

    def energy_wh(self, start: float, end: float, others: Iterable[Interval] = ()) -> float | None:
        """Wh drawn over [start, end], shared with `others` (intervals of concurrent local requests).

        None when nothing is measured or no sample covers the interval.
        """
        if self.source is None or end <= start:
            return None if self.source is None else 0.0
        with self._lock:
            times, watts = list(self._times), list(self._watts)
        if not times or times[-1] < start - 2 * self.interval_s - 1.0:
            return None
        overlapping = [(a, b) for a, b in others if a < end and b > start]
        cuts = {start, end}
        cuts.update(t for t in times if start < t < end)
        for a, b in overlapping:
            cuts.update(x for x in (a, b) if start < x < end)
        points = sorted(cuts)
        joules = 0.0
        for lo, hi in itertools.pairwise(points):
            # Power held from the latest sample at or before `lo` (the first one before any).
            i = bisect.bisect_right(times, lo) - 1
            power = watts[max(i, 0)]
            mid = (lo + hi) / 2
            sharing = 1 + sum(1 for a, b in overlapping if a <= mid < b)
            joules += power * (hi - lo) / sharing
        return joules / J_PER_WH
