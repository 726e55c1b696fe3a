"""Parameters a cloud vendor rejects, rewritten before the body leaves (one step, per preset).

OpenAI's reasoning models (gpt-5*, the o-series) refuse `max_tokens` ("Unsupported
parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'
instead.", platform.openai.com/docs/guides/reasoning) and any `temperature` / `top_p` but
the default 1 ("Unsupported value: ... Only the default (1) value is supported."). Clients
such as OpenCode send both; OpenRouter and the other OpenAI-compatible vendors accept them.
"""

from __future__ import annotations

import re

from router_core.types import JSON

_OPENAI_REASONING = re.compile(r"^(gpt-5|o\d)")
_DEFAULT_ONLY = ("temperature", "top_p")


def _openai(model: str, body: JSON) -> JSON:
    if not _OPENAI_REASONING.match(model.lower()):
        return body
    if "max_tokens" in body:
        limit = body.pop("max_tokens")
        body.setdefault("max_completion_tokens", limit)
    for name in _DEFAULT_ONLY:
        if name in body and body[name] != 1:
            del body[name]  # the vendor's default (1) is the only value it takes
    return body


VENDORS = {"openai": _openai}


def apply_quirks(vendor: str, model: str, body: JSON) -> JSON:
    """`body` (the provider's own copy) fit for `vendor`'s `model`; unchanged for others."""
    fix = VENDORS.get(vendor)
    return fix(model, body) if fix else body
