"""A running Hybridge in front of one scripted upstream that plays Ollama, an OpenAI-compatible
server and Anthropic at once (tests/fakes/scripted_upstream.py), for garbage-in tests."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from router_core.keys import KEYRING_SERVICE
from router_core.service import RouterService
from tests.fakes.scripted_upstream import ScriptedUpstream
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import ThreadedServer, make_settings, run_hybridge

# provider name → (the path it calls, the model to ask for)
PATHS = {"ollama": "/api/chat", "oai": "/v1/chat/completions", "ant": "/v1/messages"}
ANT_KEY = "sk-ant-test-0000"


@dataclass
class Rig:
    service: RouterService
    upstream: ScriptedUpstream
    ledger: Path
    client: httpx.Client
    keys: MemoryKeyring

    @property
    def root(self) -> str:
        return self.service.status().base_url.removesuffix("/v1")

    def chat(
        self, provider: str, *, stream: bool, api: str = "openai", body: dict[str, Any] | None = None
    ) -> httpx.Response:
        import keyring

        # tests/conftest.py gives every test a fresh keyring: put this rig's back.
        self.keys.set_password(KEYRING_SERVICE, "ant", ANT_KEY)
        keyring.set_keyring(self.keys)
        model = f"{provider}/m"
        if api == "anthropic":
            payload = body or {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
            return self.client.post(f"{self.root}/v1/messages", json={**payload, "stream": stream})
        payload = body or {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return self.client.post(f"{self.root}/v1/chat/completions", json={**payload, "stream": stream})

    def ledger_rows(self) -> int:
        with sqlite3.connect(self.ledger) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])

    def wait_rows(self, count: int, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        rows = self.ledger_rows()
        while rows < count and time.monotonic() < deadline:
            time.sleep(0.02)
            rows = self.ledger_rows()
        return rows

    def last_error_kind(self) -> str | None:
        with sqlite3.connect(self.ledger) as conn:
            row = conn.execute("SELECT error_kind FROM requests ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else row[0]

    def healthy(self) -> bool:
        return self.client.get(f"{self.root}/health").status_code == 200


@contextmanager
def garbage_rig(tmp: Path, keys: MemoryKeyring, **provider_options: Any) -> Iterator[Rig]:
    import keyring

    keys.set_password(KEYRING_SERVICE, "ant", ANT_KEY)
    keyring.set_keyring(keys)
    upstream = ScriptedUpstream()
    server = ThreadedServer(upstream.app).start()
    ledger = tmp / "ledger.sqlite3"
    settings = make_settings(
        {
            "routing": {"local_model": "ollama/m", "cloud_model": "ant/m"},
            "providers": {
                "ollama": {"kind": "ollama", "base_url": server.url, **provider_options},
                "oai": {"kind": "openai-local", "base_url": f"{server.url}/v1", **provider_options},
                "ant": {"kind": "anthropic", "base_url": server.url, "api_key": "keyring:ant", **provider_options},
            },
            "ledger": {"path": str(ledger)},
        }
    )
    try:
        with (
            run_hybridge(settings, ledger_options={"path": ledger, "power": None}) as service,
            httpx.Client(trust_env=False, timeout=30) as client,
        ):
            yield Rig(service, upstream, ledger, client, keys)
    finally:
        upstream.release()
        server.stop()


def sse_events(text: str) -> list[Any]:
    """The JSON payloads of an event stream's `data:` lines ([DONE] left out)."""
    out = []
    # SSE lines end at CR, LF or CRLF only (WHATWG HTML, "Parsing an event stream"), not at
    # the other breaks str.splitlines knows (U+2028, U+0085...), which JSON strings may hold raw.
    for line in re.split(r"\r\n|\r|\n", text):
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            out.append(orjson.loads(line[5:].strip()))
    return out
