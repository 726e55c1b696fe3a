"""Requests being answered right now, by route, so they can be stopped from outside.

Switching privacy mode on stops every cloud answer still streaming: the prompt already
left, but nothing more is read from the cloud, and the client gets a clear error event.
The switch may be flipped from another thread (the tray), so stopping goes through the
request's own event loop.

A tracked block is a cancel scope on plain asyncio (as asyncio.timeout is one): stopping it
cancels the request's task where it waits inside the block, and the block absorbs that
cancellation, and only that one (counted with Task.cancelling/uncancel, so a client's
disconnect or a shutdown arriving as well still propagates). anyio's CancelScope did the
same at several microseconds a request, on every request's path.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType


class InFlightRequest:
    """One tracked block (`with in_flight.track(route) as item:`)."""

    __slots__ = ("_cancelled", "_cancelling", "_loop", "_open", "_owner", "_task", "route", "stopped")

    def __init__(self, owner: InFlight, route: str) -> None:
        # Updated by the request as it learns which candidate answers.
        self.route = route
        # After the block: the reason when it was stopped.
        self.stopped: str | None = None
        self._owner = owner
        self._task: asyncio.Task[object] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open = False
        self._cancelled = False
        self._cancelling = 0

    def __enter__(self) -> InFlightRequest:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("InFlight.track is used inside a task")
        self._task, self._loop = task, task.get_loop()
        self._cancelling = task.cancelling()
        self._open = True
        with self._owner._lock:
            self._owner._items.add(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._open = False
        with self._owner._lock:
            self._owner._items.discard(self)
        if self._cancelled and self._task is not None:
            # Ours to absorb only when no one else asked to cancel the task meanwhile.
            return self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError
        return False

    def stop(self, reason: str) -> None:
        self.stopped = reason
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        # In the loop's thread, between two steps of the task: while the block is open, the
        # task waits at an await inside it, which is where the cancellation lands.
        if self._open and not self._cancelled and self._task is not None:
            self._cancelled = True
            self._task.cancel()


class InFlight:
    def __init__(self) -> None:
        self._items: set[InFlightRequest] = set()
        self._lock = threading.Lock()

    def track(self, route: str) -> InFlightRequest:
        """A block that `stop_route` can stop (use as `with in_flight.track(route) as item:`).

        After the block, `item.stopped` holds the reason when it was stopped.
        """
        return InFlightRequest(self, route)

    def stop_route(self, route: str, reason: str) -> int:
        """Stop every request now on `route`; how many were stopped."""
        with self._lock:
            chosen = [item for item in self._items if item.route == route and item.stopped is None]
        for item in chosen:
            item.stop(reason)
        return len(chosen)

    def count(self, route: str | None = None) -> int:
        with self._lock:
            return sum(1 for item in self._items if route is None or item.route == route)
