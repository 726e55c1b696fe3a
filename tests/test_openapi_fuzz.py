"""Schemathesis against a live Hybridge, driven by its own OpenAPI document.

Each operation in resources/openapi.json (also served at /openapi.json) gets up to 25
generated cases (bodies, query and header parameters; valid and invalid: schemathesis's
positive and negative modes), sent over real sockets. Every answer must be no 5xx and what
the document promises for that operation: status code, content type, headers and body
schema. Schemathesis generates only the documented operations; the last test checks that
the app serves exactly the documented paths and methods, no more.

The upstream is the fake OpenAI cloud (tests/fakes/fake_openai_cloud.py), registered both as
a local OpenAI-compatible server and as a cloud: it answers at once whatever the generated
max_tokens, so the run tests Hybridge's edge, not a model's speed. The Ollama provider
points at a closed port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from router_core.server.app import create_app
from router_core.service import RouterService
from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud
from tests.support.memory_keyring import MemoryKeyring
from tests.support.servers import ThreadedServer, make_settings, run_hybridge
from tests.support.suite import examples

# The checkout's own document (the served one comes from the installed package's data,
# which in a shared environment may be another checkout's).
DOCUMENT = orjson.loads((Path(__file__).resolve().parent.parent / "resources" / "openapi.json").read_bytes())
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def hybridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterService]:
    import keyring

    keys = MemoryKeyring()
    keys.set_password("hybridge", "fast", API_KEY)
    previous = keyring.get_keyring()
    keyring.set_keyring(keys)
    upstream = ThreadedServer(FakeOpenAICloud().app).start()
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    conf = {"base_url": f"{upstream.url}/v1", "api_key": "keyring:fast"}
    settings_ = make_settings(
        {
            "routing": {"local_model": "fastlocal/gpt-4.1", "cloud_model": "fastcloud/gpt-4.1"},
            "providers": {
                "fastlocal": {"kind": "openai-local", **conf},
                "fastcloud": {"kind": "openai", **conf},
                "ollama": {"kind": "ollama", "base_url": "http://127.0.0.1:9"},
            },
            "ledger": {"path": str(tmp / "ledger.sqlite3")},
        }
    )
    try:
        with run_hybridge(settings_, ledger_options={"path": tmp / "ledger.sqlite3", "power": None}) as service:
            assert service.runtime is not None
            service.runtime.config_path = tmp / "config.toml"
            yield service
    finally:
        upstream.stop()
        keyring.set_keyring(previous)


@pytest.fixture
def base_url(hybridge: RouterService, memory_keyring: MemoryKeyring) -> str:
    # The router thread reads keys through the keyring module: keep the module's backend.
    memory_keyring.set_password("hybridge", "fast", API_KEY)
    return hybridge.status().base_url.removesuffix("/v1")


def test_the_document_is_served(base_url: str) -> None:
    import httpx

    served = httpx.get(f"{base_url}/openapi.json", trust_env=False).json()
    assert served["openapi"].startswith("3.") and "/v1/chat/completions" in served["paths"]


@SCHEMA.parametrize()
@settings(max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case, base_url: str) -> None:
    # Beyond "no 5xx": every answer's status, content type, headers and body are the ones the
    # document promises for that operation.
    case.call_and_validate(
        base_url=base_url,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )


def test_app_routes_equal_the_documented_paths(hybridge: RouterService) -> None:
    """Every route the app serves is in the document, and every documented path is served."""
    from starlette.routing import Route

    assert hybridge.runtime is not None
    app = create_app(hybridge.runtime)
    served: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, Route):
            served.setdefault(route.path, set()).update(m.lower() for m in (route.methods or ()) if m != "HEAD")
    documented = {
        path: {m for m in ops if m in ("get", "post", "put", "patch", "delete")}
        for path, ops in DOCUMENT["paths"].items()
    }
    assert served == documented
