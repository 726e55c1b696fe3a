"""Qwen Code's `~/.qwen/settings.json` pointed at Hybridge (OpenAI-compatible).

Qwen Code (github.com/QwenLM/qwen-code, docs/cli/configuration.md; keys checked in the
0.24.4 npm bundle) reads `security.auth.selectedType = "openai"` with
`security.auth.baseUrl` / `apiKey`, and `model.name`. With privacy mode on, its own
traffic is switched off: `privacy.usageStatisticsEnabled` (usage statistics sent to
Alibaba), `telemetry.enabled` and `general.enableAutoUpdate`. The user's other settings stay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NO_TOKEN_PLACEHOLDER = "hybridge-no-token"


@dataclass(frozen=True, slots=True)
class QwenSetup:
    base_url: str
    token: str | None
    privacy: bool
    model: str = "auto"


def phone_home_off() -> dict[str, Any]:
    return {
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False},
    }


def _merge(into: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            if not isinstance(into.get(key), dict):
                into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value


def edit(text: str, setup: QwenSetup) -> str:
    data = json.loads(text) if text.strip() else {}
    values: dict[str, Any] = {
        "security": {
            "auth": {"selectedType": "openai", "baseUrl": setup.base_url, "apiKey": setup.token or NO_TOKEN_PLACEHOLDER}
        },
        "model": {"name": setup.model},
    }
    _merge(data, values)
    if setup.privacy:
        _merge(data, phone_home_off())
    return json.dumps(data, indent=2) + "\n"
