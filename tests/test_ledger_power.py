"""Where the GPU's power comes from: NVML, AMD's sysfs hwmon files, or an estimate.

The sysfs layout follows the kernel's amdgpu hwmon documentation
(Documentation/gpu/amdgpu/thermal.rst: `power1_average` on older kernels, `power1_input` on
newer, both in microwatts), written here into a temporary tree as the kernel lays it out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from router_core.events import RouterEvents
from router_core.ledger import energy
from router_core.ledger.energy import EstimatedPowerSource, SysfsPowerSource, open_power_source, typical_board_power
from router_core.ledger.recorder import Ledger
from tests.support.servers import make_settings


def _amd_card(root: Path, card: str, name: str, microwatts: int) -> None:
    hwmon = root / card / "device" / "hwmon" / "hwmon0"
    hwmon.mkdir(parents=True)
    (hwmon / name).write_text(f"{microwatts}\n")


def test_amd_sysfs_power_is_summed_over_cards_in_watts(tmp_path: Path) -> None:
    _amd_card(tmp_path, "card0", "power1_average", 187_000_000)  # older kernels
    _amd_card(tmp_path, "card1", "power1_input", 12_500_000)  # newer kernels
    (tmp_path / "card0-DP-1").mkdir()  # a connector, not a card
    source = SysfsPowerSource.open(tmp_path)
    assert source is not None
    assert source.read_watts() == pytest.approx(199.5)


def test_no_amd_files_means_no_sysfs_source(tmp_path: Path) -> None:
    (tmp_path / "card0" / "device").mkdir(parents=True)
    assert SysfsPowerSource.open(tmp_path) is None


def test_typical_board_power_needs_every_card_known() -> None:
    assert typical_board_power(["NVIDIA GeForce RTX 4090"]) == 450
    assert typical_board_power(["NVIDIA H200", "NVIDIA H100 80GB HBM3"]) == 1400
    assert typical_board_power(["NVIDIA GeForce RTX 4090", "Mystery GPU"]) is None


def test_a_configured_wattage_is_an_estimate_when_nothing_can_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(energy.NvmlPowerSource, "open", classmethod(lambda cls: None))
    monkeypatch.setattr(energy.SysfsPowerSource, "open", classmethod(lambda cls, root=None: None))
    source = open_power_source(250.0, [])
    assert isinstance(source, EstimatedPowerSource) and source.read_watts() == 250.0
    assert open_power_source(0.0, ["Mystery GPU"]) is None


def test_the_ledger_estimates_from_the_detected_card_once_the_inventory_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(energy.NvmlPowerSource, "open", classmethod(lambda cls: None))
    monkeypatch.setattr(energy.SysfsPowerSource, "open", classmethod(lambda cls, root=None: None))
    ledger = Ledger(make_settings({}), RouterEvents(), path=tmp_path / "l.sqlite3").start()
    try:
        assert not ledger.meter.measured
        ledger.learn_gpus([])  # no GPU: nothing to estimate
        assert not ledger.meter.measured
        ledger.learn_gpus(["NVIDIA GeForce RTX 4090"])
        assert ledger.meter.measured and ledger.meter.estimated
        assert ledger.meter.source is not None and ledger.meter.source.read_watts() == 450
        ledger.learn_gpus(["NVIDIA H200"])  # acts once
        assert ledger.meter.source.read_watts() == 450
    finally:
        ledger.close()
