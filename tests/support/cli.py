"""`hybridge serve` as a real subprocess, the way users and clients run it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO

# Lines of the server's output kept for a failing test's message (the rest is read and dropped).
KEPT_LINES = 400


class HybridgeProcess:
    """Runs `hybridge serve --port 0` and reads its output for as long as it runs.

    The output must be read: `serve` logs a line per request, and a pipe nobody drains fills
    at 64 KiB, after which the server blocks in its next write (a replay of ~300 requests hung
    that way). The last `KEPT_LINES` lines of each stream stay in `stdout_tail`/`stderr_tail`.
    """

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.stdout_tail: deque[str] = deque(maxlen=KEPT_LINES)
        self.stderr_tail: deque[str] = deque(maxlen=KEPT_LINES)
        self._drains: list[threading.Thread] = []

    def _drain(self, stream: IO[str], into: deque[str]) -> None:
        for line in stream:
            into.append(line)

    def __enter__(self) -> HybridgeProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "router_core", "serve", "--port", "0", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        err = threading.Thread(target=self._drain, args=(self.process.stderr, self.stderr_tail), daemon=True)
        err.start()
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line or "serving on" in line:
                break
            self.stdout_tail.append(line)  # the first-run checklist prints before the address
        if "serving on" not in line:
            self.process.kill()
            err.join(5)
            raise RuntimeError(f"hybridge serve did not start: {line!r} {''.join(self.stderr_tail)}")
        self.base_url = line.rsplit(" ", 1)[1].strip()
        out = threading.Thread(target=self._drain, args=(self.process.stdout, self.stdout_tail), daemon=True)
        out.start()
        self._drains = [err, out]
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15) -> tuple[int, str, str]:
        """Send `sig`, wait for the exit; (exit code, the kept stdout, the kept stderr)."""
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout_s)
        for drain in self._drains:
            drain.join(5)  # the pipes close with the process: the drains finish
        return code, "".join(self.stdout_tail), "".join(self.stderr_tail)

    def __exit__(self, *exc: object | TracebackType) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for drain in self._drains:
            drain.join(5)
