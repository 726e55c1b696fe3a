"""A canary key: put a unique key in the keyring, drive errors and cloud calls through the
router, then search everything it wrote (logs at DEBUG, every response body, the ledger
database and its WAL, the settings file) for it. It must appear zero times.

The cloud is the fake OpenAI cloud (tests/fakes/fake_openai_cloud.py) scripted to misbehave
the way real upstreams do: echoing the key in errors, failing mid-stream, rate limiting.
"""

from __future__ import annotations

import io
import logging
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from router_core.redact import install_log_redaction
from router_core.service import RouterService
from tests.conftest import RunningFakeOllama, local_settings
from tests.fakes.fake_openai_cloud import FakeOpenAICloud, Fault, Reply
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import ThreadedServer, run_hybridge


@pytest.fixture
def canary_key(memory_keyring: MemoryKeyring) -> str:
    key = "sk-canary-" + secrets.token_hex(16)
    memory_keyring.set_password("hybridge", "cloud", key)
    return key


@pytest.fixture
def all_logs() -> Iterator[io.StringIO]:
    """Every record from every logger at DEBUG, formatted with tracebacks, as a user's log file would be."""
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def leaky_cloud(key: str) -> FakeOpenAICloud:
    fake = FakeOpenAICloud()
    fake.state.api_key = key
    fake.state.script = [
        Fault(400, f"Invalid request made with key {key}", "invalid_request_error", None),
        Fault(429, f"Rate limit reached for key {key}", "tokens", "rate_limit_exceeded", retry_after="1"),
        Fault(500, f"internal error; request had Authorization: Bearer {key}", "server_error", None),
        Reply(text="a real answer"),
        Reply(text="one two three four five", error_after_chunks=2),
        Reply(text="streamed fine"),
    ]
    return fake


def test_the_canary_key_appears_nowhere(
    canary_key: str, all_logs: io.StringIO, canned_ollama: RunningFakeOllama, tmp_path: Path
) -> None:
    fake = leaky_cloud(canary_key)
    cloud = ThreadedServer(fake.app).start()
    # An upstream naming its own address (error bodies never carry upstream URLs).
    fake.state.script.insert(
        0, Fault(400, f"no such route on {cloud.url}/v1; see {cloud.url}/docs", "invalid_request_error", None)
    )
    ledger = tmp_path / "ledger.sqlite3"
    config = tmp_path / "config.toml"
    cloud_conf = {"kind": "openai", "base_url": f"{cloud.url}/v1", "api_key": "keyring:cloud"}
    settings = local_settings(
        canned_ollama.url,
        providers={"cloud": cloud_conf, "downcloud": {**cloud_conf, "base_url": "http://127.0.0.1:9/v1"}},
        routing={"cloud_model": "cloud/gpt-4.1"},
        ledger={"enabled": True, "path": str(ledger)},
    )
    config.write_text(tomli_w.dumps({"providers": {"cloud": cloud_conf}}))
    bodies: list[bytes] = []
    files: dict[str, bytes] = {}
    try:
        with run_hybridge(settings, ledger_options={"path": ledger, "power": None}) as service:
            bodies += drive(service, canary_key)
            for path in (ledger, Path(f"{ledger}-wal")):
                if path.exists():
                    files[path.name] = path.read_bytes()
    finally:
        cloud.stop()
    for path in tmp_path.iterdir():
        if path.is_file():
            files[f"after: {path.name}"] = path.read_bytes()

    assert len(fake.state.requests) >= 7  # the cloud really was called with the key
    assert all(h["authorization"] == f"Bearer {canary_key}" for h, _ in fake.state.requests)
    errors = [b for b in bodies if b"error" in b]
    assert len(errors) >= 6
    assert "ledger.sqlite3-wal" in files and "ledger.sqlite3" in files
    with sqlite3.connect(ledger) as db:
        rows = db.execute("select count(*) from requests").fetchone()[0]
    assert rows >= 9  # every request was recorded
    needle = canary_key.encode()
    assert [b for b in bodies if needle in b] == []
    assert [b for b in errors if cloud.url.encode() in b] == []
    assert [name for name, data in files.items() if needle in data] == []
    logs = all_logs.getvalue()
    assert "Traceback" in logs  # the injected bug was logged with its traceback...
    assert canary_key not in logs  # ...without the key
    assert canary_key[-12:] not in logs


def drive(service: RouterService, key: str) -> list[bytes]:
    """Errors of every kind and successful cloud calls, streamed and not; all response bytes."""
    out: list[bytes] = []
    runtime = service.runtime
    assert runtime is not None

    def ask(c: httpx.Client, model: str, stream: bool = False, **extra: Any) -> None:
        body = {
            "model": model,
            "stream": stream,
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "hello"}],
            **extra,
        }
        response = c.post("/v1/chat/completions", json=body)
        out.append(response.content + str(response.headers).encode())

    with httpx.Client(base_url=service.status().base_url.removesuffix("/v1"), trust_env=False, timeout=60) as c:
        for _ in range(4):  # 400 naming the upstream URL; 400, 429, 500 echoing the key
            ask(c, "cloud/gpt-4.1")
        ask(c, "cloud")  # a real answer
        ask(c, "cloud", stream=True)  # fails after two chunks
        ask(c, "cloud", stream=True)
        ask(c, "downcloud/gpt-4.1")  # nothing listening
        ask(c, "cloud", api_key=key)  # a client trying to pass a key
        out.append(c.post("/v1/chat/completions", content=b"{broken").content)
        # A bug of ours whose exception message carries the key.
        provider = runtime.providers["cloud"]

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"bug while sending with {key}")

        original = provider.complete
        provider.complete = broken  # type: ignore[method-assign]
        try:
            ask(c, "cloud")
        finally:
            provider.complete = original  # type: ignore[method-assign]
        out.append(c.get("/v1/models").content)
        out.append(c.get("/hybridge/privacy").content)
    return out
