"""Fake clouds on real sockets, and Hybridge settings that point at them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from router_core.records import RequestRecord
from router_core.service import RouterService
from router_core.settings import Settings
from tests.fakes.fake_anthropic import FakeAnthropic, FakeAnthropicState
from tests.fakes.fake_openai_cloud import FakeOpenAICloud, FakeOpenAIState
from tests.support.servers import ThreadedServer, make_settings


@contextmanager
def fake_anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


@contextmanager
def fake_openai_cloud() -> Iterator[tuple[FakeOpenAICloud, str]]:
    fake = FakeOpenAICloud()
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


def reset(fake: FakeAnthropic | FakeOpenAICloud) -> None:
    fake.state = FakeAnthropicState() if isinstance(fake, FakeAnthropic) else FakeOpenAIState()  # type: ignore[assignment]


def cloud_settings(name: str, provider: dict[str, Any], cloud_model: str, **extra: Any) -> Settings:
    """Shipped defaults plus one cloud provider serving `cloud` (the local default stays Ollama)."""
    return make_settings({"routing": {"cloud_model": cloud_model}, "providers": {name: provider}, **extra})


class Records:
    """Collects RequestRecords a running service emits (held strongly: signals keep weak refs)."""

    def __init__(self, service: RouterService) -> None:
        self.items: list[RequestRecord] = []
        service.events.request_finished.connect(self.add)

    def add(self, record: RequestRecord) -> None:
        self.items.append(record)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[RequestRecord]:
        # The record is emitted just after the last byte goes out.
        deadline = time.monotonic() + timeout
        while len(self.items) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.items
