"""Run ASGI apps and Hybridge itself on real loopback sockets (port 0) for tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from router_core.service import RouterService
from router_core.settings import Settings, merge, shipped_defaults, validate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadedServer:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a thread with its own loop.

    `host`: another address of this machine to listen on (a stand-in for a LAN backend)."""

    def __init__(self, app: Any, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.host = host
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port; yields its base URL."""
    server = ThreadedServer(app).start()
    try:
        yield server.url
    finally:
        server.stop()


def make_settings(overrides: dict[str, Any]) -> Settings:
    """Shipped defaults with `overrides` merged in, validated like a user's file."""
    return validate(merge(shipped_defaults(), overrides))


@contextmanager
def run_hybridge(settings: Settings, **kwargs: Any) -> Iterator[RouterService]:
    """Hybridge's RouterService on port 0 in its background thread; yields the service.

    `service.status().base_url` is the `/v1` URL clients use.
    """
    service = RouterService(settings, port=0, **kwargs)
    service.start()
    if not service.wait_started(15):
        raise RuntimeError(f"hybridge did not start: {service.status().error}")
    try:
        yield service
    finally:
        service.stop()
