"""Ready-made cloud provider settings: `[providers.NAME]` with `preset = "NAME"` (or a table
named after a preset with no `kind`) gets the kind, base URL and key lookup below.

Base URLs are the documented OpenAI-compatible roots (chat goes to `<base>/chat/completions`);
Anthropic's is its Messages API root. `key_env` is the variable each vendor's own SDK reads,
consulted when no key is stored in the keyring (see router_core/keys.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    kind: str
    base_url: str
    key_env: str
    docs: str
    # The vendor prefix of this provider's models in resources/prices.toml (the settings
    # dialog's cloud picker offers those); "" for none, "*" for every vendor's (OpenRouter
    # names models `<vendor>/<model>`).
    vendor: str = ""


PRESETS: dict[str, Preset] = {
    "openai": Preset(
        "openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "platform.openai.com/docs/api-reference", "openai"
    ),
    "anthropic": Preset(
        "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY", "docs.claude.com/en/api", "anthropic"
    ),
    "openrouter": Preset(
        "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openrouter.ai/docs/api-reference", "*"
    ),
    "gemini": Preset(
        "openai",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "GEMINI_API_KEY",
        "ai.google.dev/gemini-api/docs/openai",
        "google",
    ),
    "deepseek": Preset(
        "openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "api-docs.deepseek.com", "deepseek"
    ),
    "groq": Preset("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "console.groq.com/docs/openai"),
    "moonshot": Preset(
        "openai", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", "platform.moonshot.ai/docs", "moonshotai"
    ),
}


def preset_env(name: str) -> str:
    """The key variable of preset `name`, or "" when there is no such preset."""
    preset = PRESETS.get(name)
    return preset.key_env if preset else ""
