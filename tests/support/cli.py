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
        self.output: deque[str] = deque(maxlen=KEEP_LINES)
        self._readers: list[threading.Thread] = []

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line)

    def __enter__(self) -> HybridgeProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "router_core", "serve", "--port", "0", "--config", str(self.config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        deadline = time.monotonic() + 30
        line = self.process.stdout.readline()
        if "serving on" not in line or time.monotonic() > deadline:
            self.process.kill()
            raise RuntimeError(f"hybridge serve did not start: {line!r} {self.process.stderr.read()}")
        self.base_url = line.rsplit(" ", 1)[1].strip()
        for stream in (self.process.stdout, self.process.stderr):
            reader = threading.Thread(target=self._drain, args=(stream,), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for reader in self._readers:
            reader.join(5)
