"""Context and output limits of the models Hybridge serves, for client configs.

The local figure is `usable_context` (inventory/context.py, planned_context within): the
same one context the Ollama provider sends as num_ctx and doctor and the Models tab show,
so a client compacts exactly where the local model's window ends.

A client that is told a model's real window can compact a conversation before it
overflows (OpenCode switches that off when `limit.context` is 0, so a limit here is never
0). The local model's window comes from the inventory: the largest context that fits on
this machine beside its weights. Cloud windows are the vendors' published figures, kept
on the conservative side: a real window larger than the one written only means the client
compacts a little early.
"""

from __future__ import annotations

from dataclasses import dataclass

from router_core.inventory.context import planned_context
from router_core.inventory.machine import InventorySnapshot
from router_core.settings import Settings

# Output room written for a local model: a quarter of its window, at most this many tokens.
# The client sends it as max_tokens, and Hybridge sizes num_ctx to prompt + max_tokens, so
# a bigger figure costs VRAM on every request.
LOCAL_OUTPUT_CAP = 8192
# A cloud model none of the prefixes below matches.
DEFAULT_CLOUD = (128_000, 16_384)
# Model-id prefix (after the last "/", lower case) -> (context, output), longest prefix wins.
CLOUD_LIMITS: dict[str, tuple[int, int]] = {
    "claude-": (200_000, 32_000),  # 200k window; every Claude 4.x model writes at least 32k
    "claude-3-5-haiku": (200_000, 8_192),
    "gpt-5": (400_000, 128_000),
    "gpt-4.1": (1_047_576, 32_768),
    "gpt-4o": (128_000, 16_384),
    "gemini-": (1_048_576, 65_536),
    "deepseek": (128_000, 8_192),
    "kimi-": (131_072, 16_384),
    "moonshot": (131_072, 16_384),
}


@dataclass(frozen=True, slots=True)
class ModelLimits:
    context: int
    output: int
    source: str  # where the figures come from, for the notes printed beside a diff


@dataclass(frozen=True, slots=True)
class LocalModelFacts:
    """What the inventory knows of routing.local_model (all None/empty when it knows nothing)."""

    context: int | None
    capabilities: tuple[str, ...] | None
    source: str


def local_output(context: int) -> int:
    return max(256, min(LOCAL_OUTPUT_CAP, context // 4))


def local_facts(settings: Settings, snapshot: InventorySnapshot | None) -> LocalModelFacts:
    """The local model's usable context and capabilities, as far as the inventory knows them."""
    default = settings.routing.local_context_tokens
    ref = settings.routing.local_model
    provider, _, model = ref.partition("/")
    status = snapshot.ollama.get(provider) if snapshot else None
    found = status.model(model) if status else None
    if snapshot is None or status is None:
        return LocalModelFacts(None, None, f"routing.local_context_tokens ({default:,}): no inventory of '{provider}'")
    if not status.up or found is None:
        why = status.problem or f"'{model}' is not installed"
        return LocalModelFacts(None, None, f"routing.local_context_tokens ({default:,}): {why}")
    caps = found.capabilities if found.details else None
    fit = snapshot.fit(provider, model)
    usable = snapshot.usable_context(provider, model, settings.context)
    if fit is not None and usable:
        return LocalModelFacts(usable, caps, f"inventory: {fit.note or 'fits this machine'}")
    if found.max_context:
        context = planned_context(settings.context, found.max_context, None)
        return LocalModelFacts(context, caps, "the model's own maximum, capped by context.max_context_tokens")
    return LocalModelFacts(None, caps, f"routing.local_context_tokens ({default:,}): no context figure for '{model}'")


def local_limits(settings: Settings, facts: LocalModelFacts) -> ModelLimits:
    context = facts.context or settings.routing.local_context_tokens
    return ModelLimits(context, local_output(context), facts.source)


def cloud_limits(model_ref: str) -> ModelLimits:
    """Published limits of a `<provider>/<model>` cloud model (a default for unknown ones)."""
    name = model_ref.rpartition("/")[2].lower()
    matches = [prefix for prefix in CLOUD_LIMITS if name.startswith(prefix)]
    if not matches:
        context, output = DEFAULT_CLOUD
        return ModelLimits(context, output, f"default for a model not in Hybridge's table ({model_ref})")
    context, output = CLOUD_LIMITS[max(matches, key=len)]
    return ModelLimits(context, output, f"published limits of {model_ref}")
