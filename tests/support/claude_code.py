"""Real Claude Code from npm (`@anthropic-ai/claude-code`, pinned), installed once into a cache folder.

The npm package ships the native `claude` binary in a per-platform optional dependency
(`@anthropic-ai/claude-code-linux-x64` here); `node_modules/.bin/claude` runs it. It runs
offline against a gateway given by ANTHROPIC_BASE_URL.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import needs
from tests.support.llama import CACHE_DIR

CLAUDE_CODE_VERSION = "2.1.330"
PREFIX = CACHE_DIR / f"claude-code-{CLAUDE_CODE_VERSION}"


def claude_binary() -> Path:
    """The pinned `claude` binary, installing it from npm on first use."""
    binary = PREFIX / "node_modules" / ".bin" / "claude"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is missing: install Node.js (scripts/test.sh needs it for Claude Code)")
        PREFIX.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(PREFIX),
                f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    if not version.startswith(CLAUDE_CODE_VERSION):
        raise RuntimeError(f"expected Claude Code {CLAUDE_CODE_VERSION}, found {version!r} at {binary}")
    return binary


def clean_env(home: Path) -> dict[str, str]:
    """A temp HOME and nothing of the real user's Anthropic settings."""
    needs.require("e2e", "Claude Code")
    return {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "DISABLE_AUTOUPDATER": "1",
        "NO_COLOR": "1",
    }


def run_claude(
    env_file: Path,
    project: Path,
    home: Path,
    prompt: str,
    *,
    args: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
    timeout: float = 400,
) -> subprocess.CompletedProcess[str]:
    """`claude -p PROMPT ARGS...` in a shell that has sourced `env_file` (as a user would)."""
    env = {**clean_env(home), **(extra_env or {})}
    script = '. "$1" && shift && exec "$@"'
    return subprocess.run(
        ["/bin/sh", "-c", script, "sh", str(env_file), str(claude_binary()), "-p", prompt, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
