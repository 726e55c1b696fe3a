"""Real Codex CLI from npm (`@openai/codex`, pinned), installed once into a cache folder.

The npm package's `codex` launcher runs the native binary shipped in its per-platform
optional dependency. `run_codex` gives it a temp CODEX_HOME and HOME, so the user's own
config and login are never read.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import needs
from tests.support.llama import CACHE_DIR

CODEX_VERSION = "0.171.0"
PREFIX = CACHE_DIR / f"codex-{CODEX_VERSION}"


def codex_binary() -> Path:
    """The pinned `codex` binary, installing it from npm on first use."""
    binary = PREFIX / "node_modules" / ".bin" / "codex"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is missing: install Node.js (scripts/test.sh needs it for Codex)")
        PREFIX.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX), f"@openai/codex@{CODEX_VERSION}"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    if not version.endswith(CODEX_VERSION):
        raise RuntimeError(f"expected codex {CODEX_VERSION}, found {version!r} at {binary}")
    return binary


def codex_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "NO_COLOR": "1",
        "RUST_LOG": "warn",
    }


def run_codex(
    project: Path, home: Path, prompt: str, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`codex exec --json ARGS... PROMPT` in `project` with a temp HOME/CODEX_HOME."""
    needs.require("e2e", "Codex")
    command = [
        str(codex_binary()),
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--ephemeral",
        "-s",
        "read-only",
        *args,
        prompt,
    ]
    return subprocess.run(
        command,
        cwd=project,
        env=codex_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
