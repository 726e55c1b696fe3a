"""Codex CLI's `config.toml` pointed at Hybridge's Responses endpoint.

Codex (github.com/openai/codex, docs/config.md) reads `$CODEX_HOME/config.toml`
(`~/.codex`): `model_provider` names a `[model_providers.NAME]` table with `base_url`
(Codex appends `/responses`), `wire_api = "responses"` (the only API current Codex speaks),
`experimental_bearer_token` (sent as `Authorization: Bearer`) and `stream_idle_timeout_ms`;
`model_context_window` sizes its compaction (0.171 ignores `model_max_output_tokens`). With privacy mode
on, the switches that make Codex itself reach OpenAI at start are written off: analytics,
the update check, and the plugin/app sync features. The user's other settings and comments
stay (tomlkit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tomlkit

from router_core.clients.model_limits import ModelLimits

PROVIDER = "hybridge"
# Codex features that call OpenAI's servers at start (plugin and app sync).
PHONE_HOME_FEATURES = ("plugins", "remote_plugin", "apps", "plugin_sharing", "tool_suggest")


@dataclass(frozen=True, slots=True)
class CodexSetup:
    base_url: str
    token: str | None
    limits: ModelLimits
    idle_timeout_ms: int
    privacy: bool
    model: str = "auto"


def phone_home_off() -> dict[str, Any]:
    """The settings that keep Codex's own traffic to OpenAI off (also used by the tests)."""
    return {
        "check_for_update_on_startup": False,
        "analytics": {"enabled": False},
        "features": dict.fromkeys(PHONE_HOME_FEATURES, False),
    }


def _table(doc: Any, name: str) -> Any:
    if name not in doc or not isinstance(doc[name], dict):
        doc[name] = tomlkit.table()
    return doc[name]


def _merge(doc: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _merge(_table(doc, key), value)
        elif doc.get(key) != value:
            doc[key] = value


def edit(text: str, setup: CodexSetup) -> str:
    doc = tomlkit.parse(text)
    top: dict[str, Any] = {
        "model": setup.model,
        "model_provider": PROVIDER,
        "model_context_window": setup.limits.context,
    }
    provider: dict[str, Any] = {
        "name": "Hybridge",
        "base_url": setup.base_url,
        "wire_api": "responses",
        "stream_idle_timeout_ms": setup.idle_timeout_ms,
    }
    if setup.token:
        provider["experimental_bearer_token"] = setup.token
    values: dict[str, Any] = {**top, **(phone_home_off() if setup.privacy else {})}
    _merge(doc, values)
    providers = _table(doc, "model_providers")
    _merge(_table(providers, PROVIDER), provider)
    return tomlkit.dumps(doc)
