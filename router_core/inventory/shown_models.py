"""`/api/show` answers of one Ollama server, shared by its inventory reader and its provider.

Both need a model's facts (context maximum, capabilities, KV size): the provider on the first
request that uses a model, the inventory on its rounds. Whichever asks first keeps the
answer here and the other takes it, so each model is asked about once per server, not once
per reader. The inventory knows each model's digest (`/api/tags`) and asks again when it
changes: the model was pulled anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def full_name(model: str) -> str:
    """A name without a tag means `:latest` (ollama types/model/name.go)."""
    tail = model.rsplit("/", 1)[-1]
    return model if ":" in tail else f"{model}:latest"


@dataclass(slots=True)
class _Answer:
    body: dict[str, Any]
    digest: str | None  # None: read before the digest was known (by the provider)


class ShownModels:
    def __init__(self) -> None:
        self._answers: dict[str, _Answer] = {}

    def get(self, model: str, digest: str | None = None) -> dict[str, Any] | None:
        """The kept answer; with a digest, only an answer read for that digest (or before any was known)."""
        answer = self._answers.get(full_name(model))
        if answer is None:
            return None
        if digest is not None:
            if answer.digest not in (None, digest):
                return None
            answer.digest = digest
        return answer.body

    def put(self, model: str, body: dict[str, Any], digest: str | None = None) -> None:
        self._answers[full_name(model)] = _Answer(body, digest)
