"""What every provider offers the executor and the runtime.

Chat (list, complete, stream) and the capabilities past it are all here, so nothing above
asks what class a provider is: a provider without a capability says so (None, or it does
nothing), as an OpenAI-compatible server has no token-counting endpoint and no inventory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from router_core.inventory.context import TruncationWarning
from router_core.inventory.ollama_inventory import OllamaStatus
from router_core.types import ChatRequest, ChunkStream, Completion, ModelInfo


class Provider(Protocol):
    name: str
    is_local: bool

    async def list_models(self) -> list[ModelInfo]:
        """The models this provider serves now (may raise UpstreamError)."""
        ...

    async def complete(self, request: ChatRequest, model: str) -> Completion:
        """One whole answer in OpenAI's `chat.completion` shape."""
        ...

    def stream(self, request: ChatRequest, model: str) -> ChunkStream:
        """OpenAI chunk dicts as they arrive, then exactly one Usage.

        Closing the iterator early (client gone) must abort the upstream request.
        """
        ...

    async def count_tokens(self, request: ChatRequest, model: str) -> int | None:
        """The upstream's own prompt count (Anthropic's count_tokens endpoint); None where
        the upstream has none (may raise UpstreamError)."""
        ...

    def use_inventory(self, status: OllamaStatus | None, fits: Mapping[str, int]) -> None:
        """What the machine inventory read of this provider's server (Ollama: its models,
        what is loaded, the context each model fits); a provider that sizes nothing ignores it."""
        ...

    def watch_truncation(self, listener: Callable[[TruncationWarning], object]) -> None:
        """Who hears of a prompt the upstream cut (a local model read far fewer tokens than
        were sent); a provider that cannot tell never calls it."""
        ...

    async def aclose(self) -> None: ...
