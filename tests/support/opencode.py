"""Real OpenCode from npm (`opencode-ai`, pinned), installed once into a cache folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support import needs
from tests.support.llama import CACHE_DIR

OPENCODE_VERSION = "1.18.33"
PREFIX = CACHE_DIR / f"opencode-{OPENCODE_VERSION}"


def opencode_binary() -> Path:
    """The pinned `opencode` binary, installing it from npm on first use."""
    binary = PREFIX / "node_modules" / ".bin" / "opencode"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is missing: install Node.js (scripts/test.sh needs it for OpenCode)")
        PREFIX.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX), f"opencode-ai@{OPENCODE_VERSION}"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    if version != OPENCODE_VERSION:
        raise RuntimeError(f"expected opencode {OPENCODE_VERSION}, found {version!r} at {binary}")
    return binary


def opencode_config(base_url: str, *, output_limit: int = 32, extra: dict[str, Any] | None = None) -> str:
    """A project `opencode.json` that points OpenCode at Hybridge (small outputs: the test
    model never stops on its own)."""
    needs.require("e2e", "OpenCode")
    model = {"tool_call": True, "limit": {"context": 32768, "output": output_limit}}
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "hybridge": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Hybridge",
                "options": {"baseURL": base_url},
                "models": {"auto": {"name": "Auto", **model}, "local": {"name": "Local", **model}},
            }
        },
        "model": "hybridge/auto",
        "small_model": "hybridge/local",
        **(extra or {}),
    }
    return json.dumps(config, indent=2)


def run_opencode(
    project: Path, home: Path, prompt: str, timeout: float = 300, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`opencode run [ARGS...] PROMPT` with a temp HOME (ARGS e.g. `--agent plan`)."""
    env = {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(opencode_binary()), "run", *args, prompt],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
