"""The tray app driven through its real objects with real traffic: live figures, the table,
the privacy switch in the tray menu, and the cloud/privacy tray states."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import local_settings
from tests.fakes.fake_openai_cloud import API_KEY
from tests.support.app_shell import chat, running_shell
from tests.support.clouds import fake_openai_cloud

pytestmark = pytest.mark.real_model


def _rate(line: str) -> float:
    match = re.match(r"([\d.]+) tok/s", line)
    assert match, line
    return float(match.group(1))


def test_a_request_moves_the_live_figure_and_adds_a_table_row(qtbot, fake_ollama, tmp_path: Path) -> None:
    settings = local_settings(fake_ollama.url)
    with running_shell(qtbot, settings, tmp_path) as shell:
        tray, dashboard = shell.tray, shell.dashboard
        tray.rebuild_menu()
        assert tray.action("live").text().startswith("0.0 tok/s · saved $0.00 today")
        assert dashboard.requests.rowCount() == 0

        response = chat(qtbot, shell.bridge.endpoint_url, max_tokens=12)
        assert response.status_code == 200, response.text
        assert response.headers["x-hybridge-route"] == "local"

        qtbot.waitUntil(lambda: dashboard.requests.rowCount() == 1, timeout=5000)
        row = dashboard.requests.rows[0]
        assert (row.route, row.model, row.outcome) == ("local", "ollama/gemma3:270m", "ok")
        assert row.output_tokens > 0 and row.client == "opencode/1.0.0 test"
        # The savings against the baseline model show up in the table and today's figure.
        assert row.savings_usd is not None and row.savings_usd > 0
        qtbot.waitUntil(lambda: shell.bridge.live_rate() > 0 and (shell.bridge.saved_today() or 0) > 0, timeout=3000)
        tray.rebuild_menu()
        live_line = tray.action("live").text()
        assert _rate(live_line) > 0, live_line
        assert "saved $0.00 today" not in live_line
        assert live_line.split(" · ")[0] in tray.icon.toolTip()
        latest = dashboard.live_chart.latest()
        assert latest is not None and latest[0] > 0  # the local series moved
        assert dashboard.savings_chart.total_saved() == pytest.approx(row.savings_usd)
        # The dashboard says how the baseline is computed, in the words `hybridge stats` uses.
        from router_core.ledger.baseline import describe

        assert describe(shell.bridge.baseline_model()) in dashboard.live_label.toolTip()

        # The filter narrows the table; an unknown word hides the row.
        dashboard.filter_text.setText("gemma3")
        assert dashboard.requests_filter.rowCount() == 1
        dashboard.filter_text.setText("no-such-model")
        assert dashboard.requests_filter.rowCount() == 0
        dashboard.filter_text.clear()
        dashboard.filter_route.setCurrentIndex(dashboard.filter_route.findData("cloud"))
        assert dashboard.requests_filter.rowCount() == 0


def test_privacy_from_the_tray_menu_keeps_flagged_work_local(
    qtbot, fake_ollama, tmp_path: Path, memory_keyring
) -> None:
    memory_keyring.set_password("hybridge", "openai", API_KEY)
    with fake_openai_cloud() as (cloud, cloud_url):
        settings = local_settings(
            fake_ollama.url,
            routing={"cloud_model": "openai/gpt-4.1"},
            providers={"openai": {"kind": "openai", "base_url": f"{cloud_url}/v1"}},
            # Any cloud spend crosses the warning share of this cap (and none reaches it).
            budget={"daily_usd": 1.0, "warn_at": 0.000001},
        )
        with running_shell(qtbot, settings, tmp_path) as shell:
            tray, bridge = shell.tray, shell.bridge
            url = bridge.endpoint_url

            # Flagged work goes to the cloud while privacy mode is off; the tray turns blue.
            before = chat(qtbot, url, tags="schema")
            assert before.status_code == 200, before.text
            assert before.headers["x-hybridge-route"] == "cloud"
            assert len(cloud.state.requests) == 1
            qtbot.waitUntil(lambda: tray.state == "cloud", timeout=3000)
            qtbot.waitUntil(lambda: any(n.title == "Cloud budget" for n in tray.notices), timeout=5000)
            budget = next(n for n in tray.notices if n.title == "Cloud budget")
            assert budget.level == "warning" and budget.message.startswith("daily cloud budget 0% used: $0.00 of $1.00")

            tray.rebuild_menu()
            privacy = tray.action("privacy")
            assert privacy.isCheckable() and not privacy.isChecked()
            with qtbot.waitSignal(bridge.privacy_changed, timeout=5000):
                privacy.trigger()
            assert bridge.privacy_enabled and tray.state == "privacy"
            # Switching on applies at once, then saves (router_core/privacy/switch.py).
            qtbot.waitUntil((tmp_path / "config.toml").exists, timeout=5000)
            saved = tomllib.loads((tmp_path / "config.toml").read_text())
            assert saved["privacy"]["enabled"] is True

            after = chat(qtbot, url, tags="schema")
            assert after.status_code == 200, after.text
            assert after.headers["x-hybridge-route"] == "local"
            assert "privacy" in after.headers["x-hybridge-reason"]
            assert len(cloud.state.requests) == 1  # nothing more reached the cloud
            qtbot.waitUntil(lambda: shell.dashboard.requests.rowCount() == 2, timeout=5000)
            assert shell.dashboard.requests.rows[0].route == "local"
            assert any(n.title == "Privacy mode" for n in tray.notices)

            tray.rebuild_menu()
            assert tray.action("privacy").isChecked()
            assert shell.dashboard.privacy_box.isChecked()
            # And off again from the dashboard's own switch.
            with qtbot.waitSignal(bridge.privacy_changed, timeout=5000):
                shell.dashboard.privacy_box.click()
            assert not bridge.privacy_enabled
