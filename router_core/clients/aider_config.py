"""Aider's `.aider.conf.yml` and `.aider.model.metadata.json` pointed at Hybridge.

Aider (aider.chat/docs/config/aider_conf.html, /docs/llms/openai-compat.html) reads
`.aider.conf.yml` from the git root (then the home folder): `openai-api-base` and
`openai-api-key` for an OpenAI-compatible server, models named `openai/<name>` (LiteLLM's
prefix), `weak-model` for commit messages and summaries. Context limits come from a LiteLLM
metadata file (`model-metadata-file`, /docs/config/adv-model-settings.html). With privacy
mode on, Aider's own traffic is switched off: `analytics-disable` (PostHog) and
`check-update` (PyPI).

The config file is flat `key: value` YAML; the keys written here are replaced in place
and the user's other lines and comments are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from router_core.clients.model_limits import ModelLimits

METADATA_FILE = ".aider.model.metadata.json"
NO_TOKEN_PLACEHOLDER = "hybridge-no-token"


@dataclass(frozen=True, slots=True)
class AiderSetup:
    base_url: str
    token: str | None
    auto: ModelLimits
    local: ModelLimits
    privacy: bool


def phone_home_off() -> dict[str, str]:
    """Aider's switches for its own traffic (also used by the tests)."""
    return {"analytics-disable": "true", "check-update": "false"}


def conf_values(setup: AiderSetup) -> dict[str, str]:
    values = {
        "model": "openai/auto",
        "weak-model": "openai/local",
        "openai-api-base": setup.base_url,
        "openai-api-key": setup.token or NO_TOKEN_PLACEHOLDER,
        "model-metadata-file": METADATA_FILE,
        "show-model-warnings": "false",
    }
    return {**values, **(phone_home_off() if setup.privacy else {})}


def _scalar(value: str) -> str:
    return value if value in ("true", "false") or value.isdigit() else json.dumps(value)


def edit_conf(text: str, values: dict[str, str]) -> str:
    lines = text.splitlines()
    todo = dict(values)
    for i, line in enumerate(lines):
        key = line.split(":", 1)[0].strip()
        if not line.startswith((" ", "#", "-")) and ":" in line and key in todo:
            lines[i] = f"{key}: {_scalar(todo.pop(key))}"
    if todo and not lines:
        lines.append("# Aider through Hybridge, written by `hybridge setup aider`.")
    lines += [f"{key}: {_scalar(value)}" for key, value in todo.items()]
    return "\n".join(lines) + "\n"


def edit_metadata(text: str, setup: AiderSetup) -> str:
    data = json.loads(text) if text.strip() else {}
    for name, limits in (("openai/auto", setup.auto), ("openai/local", setup.local)):
        data[name] = {
            **data.get(name, {}),
            "max_input_tokens": limits.context,
            "max_output_tokens": limits.output,
            # Spent money is in Hybridge's ledger: Aider's own estimate would be a guess.
            "input_cost_per_token": 0,
            "output_cost_per_token": 0,
            "litellm_provider": "openai",
            "mode": "chat",
        }
    return json.dumps(data, indent=2) + "\n"
