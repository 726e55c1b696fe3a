"""A planned change to one agent's config file: shown as a diff, written with a backup.

The same steps as OpenCode's writer (opencode_config.py: unified diff, refusal when the file
changed since, a timestamped backup, an atomic write), for every agent `hybridge setup`
configures; the secret in a new text never reaches the diff.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from router_core.clients.opencode_config import OpenCodeConfigError, OpenCodeUpdate, unified_diff
from router_core.settings import Settings

AgentUpdate = OpenCodeUpdate


def plan_update(
    path: Path, edit: Callable[[str], str], *, secret: str | None = None, notes: tuple[str, ...] = ()
) -> AgentUpdate:
    """Read `path` (absent: empty), apply `edit`, and return old and new text and the diff."""
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as exc:
        raise OpenCodeConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise OpenCodeConfigError(f"{path}: not UTF-8 text") from None
    new = edit(old)
    diff = unified_diff(path, old, new)
    if secret:
        diff = diff.replace(secret, "<server token>")
    return AgentUpdate(path, old, new, diff, notes)


def read_timeout_s(settings: Settings) -> float:
    """The longest silence Hybridge waits out from an upstream (the largest provider
    `read_timeout_s`): an agent's own first-byte or idle window should be no shorter."""
    return max((p.read_timeout_s for p in settings.providers.values()), default=300.0)
