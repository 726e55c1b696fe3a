"""Size a local request's context window (`num_ctx`) so nothing is silently truncated."""

from __future__ import annotations

from dataclasses import dataclass

from router_core.errors import UpstreamError
from router_core.inventory.fit import ModelFit
from router_core.settings import ContextSettings


def planned_context(settings: ContextSettings, model_max: int | None, fit_max: int | None) -> int:
    """The one context a local model gets, chosen once: what fits beside its weights (`fit_max`,
    from total memory minus reserves, so it does not drift), within the model's own maximum,
    capped by `context.max_context_tokens`. `hybridge opencode` / `claude-code` and doctor
    write the same figure (router_core/clients/model_limits.py)."""
    return min([settings.max_context_tokens, *(v for v in (model_max, fit_max) if v)])


def usable_context(settings: ContextSettings, model_max: int | None, fit: ModelFit | None) -> int | None:
    """The usable context of a model on this machine, the one figure doctor's table, the
    Models tab, `hybridge setup` and the router all show and use: planned_context for a model
    that runs here; None when it cannot run here or its KV-cache size is unknown."""
    if fit is None or not fit.runs_locally or not fit.max_context:
        return None
    return planned_context(settings, model_max, fit.max_context)


@dataclass(frozen=True, slots=True)
class ContextChoice:
    num_ctx: int
    num_predict: int
    reused: bool  # the loaded runner's context, so Ollama keeps the runner (no reload)


def choose_context(
    prompt_tokens: int, max_tokens: int | None, settings: ContextSettings, planned: int, loaded: int | None
) -> ContextChoice:
    """num_ctx and num_predict for one request, so a steady session never reloads the model.

    Ollama reloads a runner whenever num_ctx changes (server/sched.go needsReload), which
    throws away the KV cache. So: the loaded runner's context whenever the request fits in it
    (never shrink for a small request), else the planned context (grow once, straight to the
    most that fits), else a `context_overflow` error so the executor falls back to
    `long_context_model` instead of the engine dropping the start of the prompt.
    num_predict = min(max_tokens, num_ctx - prompt).
    """
    need = prompt_tokens + settings.output_room(max_tokens)
    if loaded and need <= loaded:
        num_ctx, reused = loaded, True
    elif need <= planned:
        num_ctx, reused = planned, loaded == planned
    else:
        limit = max(planned, loaded or 0)
        raise UpstreamError(
            f"long context: ~{prompt_tokens:,} prompt + {settings.output_room(max_tokens):,} output tokens "
            f"> {limit:,} local",
            kind="context_overflow",
            status=400,
        )
    room = max(num_ctx - prompt_tokens, 1)
    return ContextChoice(num_ctx, min(max_tokens, room) if max_tokens else room, reused)


def size_num_ctx(
    prompt_tokens: int,
    max_tokens: int | None,
    settings: ContextSettings,
    model_max: int | None,
    fit_max: int | None = None,
) -> int:
    """The planned context for a request with no loaded runner (see choose_context)."""
    planned = planned_context(settings, model_max, fit_max)
    return choose_context(prompt_tokens, max_tokens, settings, planned, None).num_ctx


@dataclass(frozen=True, slots=True)
class TruncationWarning:
    """A local model read far fewer prompt tokens than were sent: its engine dropped some."""

    provider: str
    model: str
    estimated_tokens: int
    prompt_eval_count: int
    num_ctx: int

    @property
    def message(self) -> str:
        return (
            f"{self.provider}/{self.model} read {self.prompt_eval_count:,} prompt tokens of about "
            f"{self.estimated_tokens:,} sent (num_ctx {self.num_ctx:,}): the start of the prompt was probably dropped"
        )


# An engine can only drop what overflows its context, and no engine runs a model with less
# than 2,048 tokens of it (Ollama's smallest default num_ctx; Hybridge asks for
# context.minimum, 8,192 by default). A prompt estimated at or under this was read whole, so
# a short count there only means the estimate ran high (a chat template's tokens, a
# tokenizer that packs words tighter): no evidence of truncation. A 5-token prompt never warns.
TRUNCATION_FLOOR_TOKENS = 2048


def check_truncation(
    provider: str, model: str, estimated: int, prompt_eval_count: int | None, num_ctx: int, ratio: float
) -> TruncationWarning | None:
    """A warning when `prompt_eval_count` falls short of `ratio` × the estimate, for a prompt
    long enough to have overflowed a context (TRUNCATION_FLOOR_TOKENS).

    No count (Ollama omits it on some cached answers) is no evidence either way.
    """
    if estimated <= TRUNCATION_FLOOR_TOKENS:
        return None
    if not prompt_eval_count or prompt_eval_count >= estimated * ratio:
        return None
    return TruncationWarning(provider, model, estimated, prompt_eval_count, num_ctx)
