"""The environment that points Claude Code at Hybridge's Anthropic Messages endpoint.

Claude Code is configured by environment variables (code.claude.com/docs/en/env-vars,
/llm-gateway and /model-config): `ANTHROPIC_BASE_URL` is the gateway root without `/v1`
(Claude Code appends `/v1/messages`), `ANTHROPIC_AUTH_TOKEN` is sent as
`Authorization: Bearer`, and `ANTHROPIC_DEFAULT_{OPUS,SONNET,HAIKU}_MODEL` rename the model
tiers to Hybridge's virtual models: opus -> `cloud` (`auto` while no cloud is configured),
sonnet -> `auto` (the session's model, through `ANTHROPIC_MODEL=sonnet`), haiku (Claude
Code's background model; older versions read `ANTHROPIC_SMALL_FAST_MODEL`) -> `local`.
`CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC` keeps Claude Code's own telemetry and update
checks off the network, in the spirit of a local router.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from router_core.clients.agent_update import read_timeout_s
from router_core.clients.model_limits import local_facts, local_limits
from router_core.clients.opencode_config import base_url
from router_core.settings import Settings, write_atomic

# Claude Code will not start a session without some credential; with no server token any
# value does (Hybridge ignores it), and this one says where it came from.
NO_TOKEN_PLACEHOLDER = "hybridge-no-token"
FIRST_BYTE_TIMEOUT_MS = 600_000


def claude_code_env(settings: Settings, *, port: int | None = None, token: str | None = None) -> dict[str, str]:
    """The variables, in the order they are printed."""
    opus = "cloud" if settings.routing.cloud_model else "auto"
    return {
        "ANTHROPIC_BASE_URL": base_url(settings, port).removesuffix("/v1"),
        "ANTHROPIC_AUTH_TOKEN": token or NO_TOKEN_PLACEHOLDER,
        # Claude Code's own default is opus, which is mapped to the cloud: start on sonnet
        # (-> auto, local first) and let `/model opus` be the way to ask for the cloud.
        "ANTHROPIC_MODEL": "sonnet",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": opus,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "auto",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "local",
        "ANTHROPIC_SMALL_FAST_MODEL": "local",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        # Hybridge sends response headers with the first token (so a failing candidate can
        # still fall back), and a local model may read Claude Code's ~20k-token prompt for
        # minutes first: Claude Code's own first-byte window (3 min) would give up on it.
        # No less than Hybridge itself waits on a silent upstream (the providers' read timeout).
        "CLAUDE_STREAM_FIRST_BYTE_TIMEOUT_MS": str(max(FIRST_BYTE_TIMEOUT_MS, int(read_timeout_s(settings) * 1000))),
        # Claude Code's per-conversation attribution block comes first in the system prompt,
        # so every conversation would miss the local prompt cache (Ollama's launcher sets 0 too).
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "0",
        # Compact before the local window is full (the one context figure, model_limits.py).
        "CLAUDE_CODE_AUTO_COMPACT_WINDOW": str(local_limits(settings, local_facts(settings, None)).context),
        # Subagents (Task tool) run on the session's routed model, local first.
        "CLAUDE_CODE_SUBAGENT_MODEL": "auto",
    }


def render_env(env: dict[str, str], *, cloud_configured: bool) -> str:
    """A POSIX-shell file to `source` (bash, zsh, sh)."""
    lines = [
        "# Claude Code through Hybridge, written by `hybridge claude-code`.",
        "# Load it into your shell with:  . THIS_FILE   (then run `claude`)",
    ]
    if not cloud_configured:
        lines.append("# No cloud model is configured in Hybridge, so opus maps to `auto` as well.")
    if env.get("ANTHROPIC_AUTH_TOKEN") == NO_TOKEN_PLACEHOLDER:
        lines.append("# Hybridge needs no token (server.token is empty); Claude Code still wants a value.")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    return "\n".join(lines) + "\n"


def write_env_file(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only (it may hold the server token)."""
    write_atomic(path, text)
    path.chmod(0o600)
