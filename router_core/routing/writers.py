"""Which model wrote each session's code, for review_strategy = "alternate".

Every answer passes through Hybridge, so the model that served a session's last request
is known when it finishes. When the session's next request shows that answer (its latest
assistant message) calling a write tool (edit, write, patch...), that model wrote code:
it becomes the session's writer, and routing sends the session's reviews elsewhere.
Sessions are named by the client's `x-session-id`; the oldest are forgotten past a bound.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from router_core.types import JSON, ChatRequest

MAX_SESSIONS = 4096


def writes_code(message: JSON, write_tools: frozenset[str]) -> bool:
    for call in message.get("tool_calls") or ():
        name = (call.get("function") or {}).get("name") if isinstance(call, dict) else None
        if isinstance(name, str) and name.lower() in write_tools:
            return True
    return False


def _latest_assistant(messages: list[JSON]) -> JSON | None:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "assistant":
            return messages[i]
    return None


class SessionWriters:
    def __init__(self, write_tools: Iterable[str], max_sessions: int = MAX_SESSIONS) -> None:
        self.write_tools = frozenset(t.lower() for t in write_tools)
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._last_served: OrderedDict[str, str] = OrderedDict()
        self._writers: dict[str, str] = {}
        self._view: Mapping[str, str] = MappingProxyType(self._writers)

    def served(self, session: str | None, model: str) -> None:
        """`model` (`<provider>/<model>`) answered a request of `session`."""
        if not session or not model:
            return
        with self._lock:
            self._last_served[session] = model
            self._last_served.move_to_end(session)
            while len(self._last_served) > self.max_sessions:
                old, _ = self._last_served.popitem(last=False)
                self._writers.pop(old, None)

    def _new_writer(self, request: ChatRequest) -> tuple[str, str] | None:
        """(session, model) when the previous answer of the request's session wrote code."""
        session = request.session_id
        if not session or session not in self._last_served:
            return None
        latest = _latest_assistant(request.messages)
        if latest is not None and writes_code(latest, self.write_tools):
            model = self._last_served.get(session)
            if model:
                return session, model
        return None

    def note_request(self, request: ChatRequest) -> None:
        """Before routing: if the previous answer wrote code, its model is the writer."""
        found = self._new_writer(request)
        if found is not None:
            with self._lock:
                self._writers[found[0]] = found[1]

    def preview(self, request: ChatRequest) -> Mapping[str, str]:
        """The view as `note_request(request)` would leave it, changing nothing (dry runs)."""
        found = self._new_writer(request)
        if found is None or self._writers.get(found[0]) == found[1]:
            return self._view
        return MappingProxyType({**self._writers, found[0]: found[1]})

    def view(self) -> Mapping[str, str]:
        """A read-only live view: session -> writer."""
        return self._view
