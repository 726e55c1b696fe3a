"""`hybridge serve` as a real subprocess, the way users and clients run it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO

# Lines of the server's output kept for a failing test to show (the rest is read and dropped).
KEEP_LINES = 2000


class HybridgeProcess:
    """`hybridge serve` on a free port. Its stdout and stderr are read all the time it runs:
    it logs a line per request, and a pipe nobody reads fills up (64 KiB on Linux), after
    which the server blocks on its next log line and every request hangs."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        # The last lines of each stream (read by threads while it runs).
        self.stdout: deque[str] = deque(maxlen=KEEP_LINES)
        self.stderr: deque[str] = deque(maxlen=KEEP_LINES)
        self._readers: list[threading.Thread] = []

    @staticmethod
    def _drain(stream: IO[str], into: deque[str]) -> None:
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
        deadline = time.monotonic() + 30
        line = self.process.stdout.readline()
        if "serving on" not in line or time.monotonic() > deadline:
            self.process.kill()
            raise RuntimeError(f"hybridge serve did not start: {line!r} {self.process.stderr.read()}")
        self.base_url = line.rsplit(" ", 1)[1].strip()
        for stream, into in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            reader = threading.Thread(target=self._drain, args=(stream, into), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def stop(self) -> tuple[str, str]:
        """Stop it (SIGTERM, then SIGKILL after 10 s); what it wrote: (stdout, stderr)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for reader in self._readers:
            reader.join(5)
        return "".join(self.stdout), "".join(self.stderr)

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()
