"""Take an async iterator's next item now if it is already there, else say it is not.

The stream loop (routed.py) writes a translated stream's events to the client. Several
events often come out of one socket read (an Ollama NDJSON piece with many lines, an
upstream that sends faster than we write); writing each with its own send() is a system
call per event. `step` runs the iterator's `__anext__` up to its first real suspension:
when it finishes without one, the item was already there and the loop just adds its
bytes to the pending write; when it suspends, the loop writes what it holds, then awaits
the rest of that same `__anext__` (`Pending`). Nothing is lost or reordered, and a stream
that trickles (one event per read) is written exactly as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Pending(Generic[T]):
    """The rest of an `__anext__` that suspended once: awaiting it resumes it."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, T]:
        return self._drive(None)

    def throw(self, exc: BaseException) -> Generator[Any, Any, T]:
        """Deliver `exc` where the iterator waits (so its own cleanup runs, awaits and all),
        as if it had been raised while awaiting it; use as `await Thrown(pending, exc)`."""
        return self._drive(exc)

    def _drive(self, exc: BaseException | None) -> Generator[Any, Any, T]:
        coro = self._coro
        try:
            # The future it first waited on goes to the task now; then it runs as awaited.
            yielded = coro.throw(exc) if exc is not None else self._yielded
            while True:
                try:
                    sent = yield yielded
                except BaseException as raised:
                    yielded = coro.throw(raised)
                else:
                    yielded = coro.send(sent)
        except StopIteration as stop:
            result: T = stop.value
            return result


class Thrown(Generic[T]):
    """Awaitable that throws an exception into a Pending (see Pending.throw)."""

    __slots__ = ("_exc", "_pending")

    def __init__(self, pending: Pending[T], exc: BaseException) -> None:
        self._pending = pending
        self._exc = exc

    def __await__(self) -> Generator[Any, Any, T]:
        return self._pending.throw(self._exc)


def step(items: AsyncIterator[T]) -> tuple[T, None] | tuple[None, Pending[T]]:
    """(item, None) when the next item is there already, else (None, Pending).

    StopAsyncIteration (the end) and the iterator's errors propagate as from `anext`.
    """
    coro: Any = items.__anext__()
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        item: T = stop.value
        return item, None
    return None, Pending(coro, yielded)
