"""`kill -9` in the middle of ledger writes, again and again: the file stays sound
(`PRAGMA integrity_check` ok) and loses at most the row in flight."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from router_core.ledger.schema import connect

# Runs our own commands as subprocesses (conftest: e2e, not in the fast suite).
pytestmark = pytest.mark.e2e

RUNS = 8


def test_kill_9_mid_writes_keeps_the_ledger_sound_and_loses_at_most_one_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    rng = random.Random(7)
    for run in range(RUNS):
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.support.ledger_writer", str(path), str(run)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
        )  # fmt: skip
        assert writer.stdout is not None
        # Let it write a while, then kill it at a moment that lands amid a write.
        want = rng.randint(20, 120)
        confirmed = 0
        for line in writer.stdout:
            confirmed = int(line)
            if confirmed >= want:
                break
        assert confirmed >= want, writer.stderr.read() if writer.stderr else ""
        time.sleep(rng.uniform(0, 0.005))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        assert writer.returncode == -signal.SIGKILL
        # Lines printed after `confirmed` but not read yet are committed rows too.
        rest = writer.stdout.read().split()
        confirmed = int(rest[-1]) if rest else confirmed

        raw = sqlite3.connect(path)
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        raw.close()
        conn = connect(path)  # reopens (and would migrate) like the next start of Hybridge
        seqs = sorted(int(r[0].split("-")[1]) for r in conn.execute(
            "SELECT request_id FROM requests WHERE session = ?", (f"run{run}",)))  # fmt: skip
        # Every confirmed row is there, in order, and at most the one in flight beyond it.
        assert seqs == list(range(1, len(seqs) + 1))
        assert confirmed <= len(seqs) <= confirmed + 1
        # Rows are whole: each has its two tags and its cost.
        tags = conn.execute("SELECT COUNT(*) FROM request_tags WHERE request_id LIKE ?", (f"run{run}-%",)).fetchone()[0]
        assert tags == 2 * len(seqs)
        assert conn.execute(
            "SELECT COUNT(*) FROM requests WHERE session = ? AND cost_usd > 0", (f"run{run}",)
        ).fetchone()[0] == len(seqs)
        conn.close()
    # Each run reopened the file its predecessor was killed writing, and wrote on.
    total = connect(path).execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    assert total >= RUNS * 20
