"""Provider-neutral request, usage and result types shared by every layer.

The lingua franca inside Hybridge is OpenAI's chat-completions shape: requests keep the
client's validated body so OpenAI-compatible upstreams get it untouched, and providers
stream OpenAI `chat.completion.chunk` dicts. Usage is kept separately in `Usage`, which
holds more than OpenAI's shape can (cache writes) and is rendered per client format.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

JSON = dict[str, Any]

VIRTUAL_MODELS = ("auto", "local", "cloud")
Route = Literal["local", "cloud"]
# What flagged (cloud-bound) work gets when privacy mode or a spent budget forbids the cloud:
# served locally, or refused. One literal for settings, routing, the ledger and the views.
EscalationAction = Literal["keep-local", "refuse"]
ESCALATION_ACTIONS: tuple[EscalationAction, ...] = get_args(EscalationAction)


@dataclass(slots=True)
class ChatRequest:
    """A validated chat request. `body` is the client's OpenAI-shaped JSON object."""

    model: str
    messages: list[JSON]
    stream: bool
    max_tokens: int | None
    tools: list[JSON] | None
    body: JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    # Filled by routing (issue: routing policy); empty until then.
    tags: frozenset[str] = frozenset()
    # Small-model work ("title", "compaction", ...) as classify found it; None: an agent turn.
    # Local providers answer it without thinking: a title needs no chain of thought.
    small_task: str | None = None
    # The client's own Anthropic Messages body when it spoke that API (`/v1/messages`): an
    # Anthropic upstream sends it on nearly as-is, keeping what the OpenAI shape cannot hold
    # (thinking signatures, the client's cache_control breakpoints, documents).
    anthropic_body: JSON | None = None
    # The prompt-size estimate (routing/tokens.py) when routing worked it out: the local
    # provider sizes its context with it rather than walking the history again.
    prompt_tokens: int | None = None

    @property
    def session_id(self) -> str | None:
        return self.headers.get("x-session-id")

    @property
    def user_agent(self) -> str:
        return self.headers.get("user-agent", "")


@dataclass(slots=True)
class Usage:
    """Token counts of one response.

    `input_tokens` counts prompt tokens that were neither read from nor written to a
    prompt cache, so the prompt total is input + cache_read + cache_write (Anthropic's
    convention; OpenAI's `prompt_tokens` is that total).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # Decode speed reported by the engine itself (Ollama eval_duration, llama.cpp timings).
    decode_tokens_per_second: float | None = None

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def to_openai(self) -> JSON:
        usage: JSON = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.prompt_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cache_read_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }
        return usage

    def to_anthropic(self) -> JSON:
        """Anthropic's `usage`: input_tokens excludes the cache reads and writes."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(slots=True)
class Completion:
    """A whole (non-streamed) answer: an OpenAI `chat.completion` body plus its usage."""

    body: JSON
    usage: Usage


# What a provider's stream yields: OpenAI chunk dicts to forward, then exactly one Usage.
StreamPart = JSON | Usage
ChunkStream = AsyncGenerator[StreamPart, None]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A concrete model one provider offers, listed as `<provider>/<name>`."""

    provider: str
    name: str
    is_local: bool
    context_length: int | None = None
    # Served elsewhere although listed by a local server (Ollama's `-cloud` models).
    remote: bool = False

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.name}"
