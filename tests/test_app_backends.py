"""The dashboard's Models & hardware tab shows each pooled backend (routing.pools): the real
tray app objects on a router at port 0, in front of an Ollama test engine and a port where
nothing listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunningFakeOllama
from tests.support.app_shell import running_shell
from tests.support.servers import free_port, make_settings

pytestmark = pytest.mark.real_model
MODEL = "gemma3:270m"


def test_the_models_tab_lists_each_backend_up_or_down(qtbot, fake_ollama: RunningFakeOllama, tmp_path: Path) -> None:
    dead = free_port()
    settings = make_settings(
        {
            "routing": {"local_model": f"ollama/{MODEL}", "pools": {"gemma": [f"ollama/{MODEL}", f"spare/{MODEL}"]}},
            "providers": {
                "ollama": {"kind": "ollama", "base_url": fake_ollama.url},
                "spare": {"kind": "ollama", "base_url": f"http://127.0.0.1:{dead}"},
            },
            "inventory": {"backends_poll_s": 0.2},
        }
    )
    with running_shell(qtbot, settings, tmp_path) as shell:
        panel = shell.dashboard.backends
        table = panel.table
        qtbot.waitUntil(
            lambda: (
                table.rowCount() == 2
                and table.item(1, 4) is not None
                and table.item(1, 4).text() == "down"
                and table.item(0, 4).text() == "up"
            ),
            timeout=15_000,
        )
        assert not panel.isHidden()
        cells = [[table.item(row, col).text() for col in range(table.columnCount())] for row in range(2)]
        port = fake_ollama.url.rpartition(":")[2]
        assert cells[0][:5] == ["ollama", "ollama", f"127.0.0.1:{port}", "gemma", "up"]
        assert cells[0][5].startswith(f"{MODEL} (")  # with the context its runner holds
        assert cells[0][6] == "0 of 1 slot · ours: 0"
        assert cells[1][:5] == ["spare", "ollama", f"127.0.0.1:{dead}", "gemma", "down"]
        assert cells[1][7] == f"cannot connect to 127.0.0.1:{dead}"
        assert "skipped until the background poll sees it up" in table.item(1, 4).toolTip()
