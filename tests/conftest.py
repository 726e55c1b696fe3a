"""Session fixtures: the real local model and the Ollama-API test server in front of it, and
the same engine in canned mode (no model) for the fast suite.

Markers: a test that uses the `llama_server` fixture (the `fake_ollama` engine uses it) is
marked `real_model` here; a test that starts llama-server or a real client any other way
carries the marker itself, and tests/support/needs.py stops it if it does not.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keyring
import pytest

from router_core.settings import Settings
from tests.support import needs, suite
from tests.support.fake_ollama import FakeOllama
from tests.support.llama import LlamaServer
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import ThreadedServer, free_port, make_settings

# Qt tests run without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never read or write the real user's settings and data (the model cache stays shared).
_ISOLATED = tempfile.mkdtemp(prefix="hybridge-tests-")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_ISOLATED, "config")
os.environ["XDG_DATA_HOME"] = os.path.join(_ISOLATED, "data")
os.environ["XDG_STATE_HOME"] = os.path.join(_ISOLATED, "state")
# Subprocesses (`hybridge serve`, `hybridge keys`) get a keyring that refuses everything.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"


def pytest_configure(config: pytest.Config) -> None:
    # The fast suite leaves out the real model (tests/support/suite.py): fewer generated cases.
    markexpr = " ".join(str(config.getoption("markexpr") or "").split())
    suite.fast = "not real_model" in markexpr


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "llama_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_model)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before the test's fixtures start anything: what its markers allow it to start.
    for marker in needs.allowed:
        needs.allowed[marker] = item.get_closest_marker(marker) is not None


@pytest.fixture(autouse=True)
def memory_keyring() -> MemoryKeyring:
    """Every test gets an empty in-memory keyring: the user's real one is never touched."""
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """llama.cpp's llama-server with the Gemma 3 270M GGUF on a free loopback port."""
    server = LlamaServer(free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RunningFakeOllama:
    fake: FakeOllama
    server: ThreadedServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state(self) -> Any:
        return self.fake.state


@pytest.fixture(scope="session")
def fake_ollama(llama_server: LlamaServer) -> Iterator[RunningFakeOllama]:
    """The Ollama-API test server (tests/support/fake_ollama.py) backed by llama_server."""
    fake = FakeOllama(llama_server.url)
    server = ThreadedServer(fake.app).start()
    try:
        yield RunningFakeOllama(fake, server)
    finally:
        server.stop()
        fake.close()  # its runners are llama-server processes of their own


CANNED_REPLY = "Canned answer from the Ollama test engine."


@pytest.fixture(scope="session")
def canned_ollama() -> Iterator[RunningFakeOllama]:
    """The Ollama-API test engine in canned mode: Ollama's API, validation and scheduler
    bookkeeping, every answer CANNED_REPLY, no llama-server (tests/support/fake_ollama.py)."""
    fake = FakeOllama(canned=CANNED_REPLY)
    server = ThreadedServer(fake.app).start()
    try:
        yield RunningFakeOllama(fake, server)
    finally:
        server.stop()


LOCAL_MODEL = "gemma3:270m"


def local_settings(ollama_url: str, llama_url: str | None = None, **extra: Any) -> Settings:
    """Settings with `auto`/`local` on the Ollama-API test server (and llama-server as
    an OpenAI-compatible local provider `llamacpp` when `llama_url` is given)."""
    data: dict[str, Any] = {
        "routing": {"local_model": f"ollama/{LOCAL_MODEL}"},
        "providers": {"ollama": {"kind": "ollama", "base_url": ollama_url}},
    }
    if llama_url:
        data["providers"]["llamacpp"] = {"kind": "openai-local", "base_url": f"{llama_url}/v1"}
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return make_settings(data)
