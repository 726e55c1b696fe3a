"""Real Aider from PyPI (`aider-chat`, pinned), installed once into its OWN virtual
environment under the cache folder: it pins many packages (litellm, openai, numpy...) that
must not touch the project's venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import needs
from tests.support.llama import CACHE_DIR

AIDER_VERSION = "0.86.2"
VENV = CACHE_DIR / f"aider-{AIDER_VERSION}"


def aider_binary() -> Path:
    """The pinned `aider` script, installing it with pip into its own venv on first use."""
    binary = VENV / "bin" / "aider"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=300)
        subprocess.run(
            [
                str(VENV / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"aider-chat=={AIDER_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=1800,
        )
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=120).stdout.strip()
    if not version.endswith(AIDER_VERSION):
        raise RuntimeError(f"expected aider {AIDER_VERSION}, found {version!r} at {binary}")
    return binary


def aider_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": f"{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "NO_COLOR": "1",
        "TERM": "dumb",
        # LiteLLM (inside Aider) fetches its model price map from GitHub at import unless told not to.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }


def run_aider(
    project: Path, home: Path, message: str, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`aider --message MESSAGE` in `project`, non-interactive, reading the project's config."""
    needs.require("e2e", "Aider")
    command = [
        str(aider_binary()),
        "--message",
        message,
        "--yes-always",
        "--no-git",
        "--no-pretty",
        "--no-fancy-input",
        "--no-show-release-notes",
        *args,
    ]
    return subprocess.run(
        command,
        cwd=project,
        env=aider_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
