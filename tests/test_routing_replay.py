"""Replay of OpenCode and Claude Code sessions through `hybridge serve` (a real subprocess,
real uvicorn, real sockets), with the Ollama-API test engine (tests/support/fake_ollama.py
in canned mode: routing is under test, not the model's words) and a fake OpenAI cloud
(tests/fakes/fake_openai_cloud.py) behind three cloud providers, one per escalation target,
so the model a request went to names the rule that sent it.

Every request is labelled with its expected route (tests/replay_sessions.py). The test
prints accuracy per label, the share of tokens served locally, flagged requests escalated,
and false heavy escalations (heavy-model requests whose heavy paths were only in tool
results or context blocks), for privacy off, privacy on (keep-local) and privacy on
(refuse).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from tests.fakes.fake_openai_cloud import API_KEY, FakeOpenAICloud
from tests.replay_sessions import FLAGGED, ReplayRequest, all_requests, size_tokens
from tests.support.cli import HybridgeProcess
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.servers import ThreadedServer

LOCAL = "ollama/qwen3:30b-a3b"
EXPECTED = {
    "small": LOCAL,
    "local": LOCAL,
    "heavy": "heavy/gpt-4.1",
    "cloud": "main/gpt-4.1",
    "review": "main/gpt-4.1",  # reviewer: the cloud model (the local default wrote the code)
    "long-context": "long/gpt-4.1",
}
LOCAL_CONTEXT = 40_960


@pytest.fixture(scope="module")
def backends() -> Iterator[tuple[FakeOllama, FakeOpenAICloud, str, str]]:
    # Canned replies: the engine runs no llama-server.
    ollama = FakeOllama(
        models=[
            FakeModel(
                "qwen3:30b-a3b", context_length=LOCAL_CONTEXT, capabilities=["completion", "tools"], loaded_vram=0
            )
        ],
        canned="Done.",
    )
    cloud = FakeOpenAICloud()
    cloud.state.context_window = 1_000_000
    o, c = ThreadedServer(ollama.app).start(), ThreadedServer(cloud.app).start()
    try:
        yield ollama, cloud, o.url, c.url
    finally:
        o.stop()
        c.stop()


def _config(tmp: Path, ollama_url: str, cloud_url: str, privacy: dict[str, Any]) -> Path:
    provider = {"kind": "openai", "base_url": f"{cloud_url}/v1", "api_key": "env:REPLAY_CLOUD_KEY"}
    data = {
        "providers": {
            "ollama": {"kind": "ollama", "base_url": ollama_url},
            "main": provider,
            "heavy": provider,
            "long": provider,
        },
        "routing": {
            "local_model": LOCAL,
            "cloud_model": "main/gpt-4.1",
            "heavy_model": "heavy/gpt-4.1",
            "long_context_model": "long/gpt-4.1",
            "local_context_tokens": LOCAL_CONTEXT,
        },
        "privacy": privacy,
    }
    path = tmp / "config.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def _replay(
    backends: tuple[FakeOllama, FakeOpenAICloud, str, str], tmp: Path, privacy: dict[str, Any]
) -> list[tuple[ReplayRequest, int, str, str]]:
    _, _, ollama_url, cloud_url = backends
    env = {
        **os.environ,
        "REPLAY_CLOUD_KEY": API_KEY,
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_STATE_HOME": str(tmp / "state"),
    }
    results = []
    with HybridgeProcess(_config(tmp, ollama_url, cloud_url, privacy), env) as hb, httpx.Client(timeout=60) as client:
        root = hb.base_url.removesuffix("/v1").removesuffix("/")
        for request in all_requests():
            response = client.post(root + request.path, json=request.body, headers=request.headers)
            results.append(
                (
                    request,
                    response.status_code,
                    response.headers.get("x-hybridge-route", ""),
                    response.headers.get("x-hybridge-model", ""),
                )
            )
    return results


def _report(name: str, results: list[tuple[ReplayRequest, int, str, str]]) -> dict[str, Any]:
    per_label: dict[str, Counter[str]] = defaultdict(Counter)
    tokens = Counter[str]()
    for request, status, route, model in results:
        key = f"{request.client}/{request.label}"
        per_label[key]["n"] += 1
        per_label[key]["right"] += status == 200 and model == EXPECTED[request.label]
        tokens["all"] += size_tokens(request)
        tokens["local"] += size_tokens(request) if status == 200 and route == "local" else 0
    flagged = [r for r in results if r[0].flagged]
    report = {
        "requests": len(results),
        "accuracy": {k: f"{v['right']}/{v['n']}" for k, v in sorted(per_label.items())},
        "tokens_local_share": round(tokens["local"] / tokens["all"], 4),
        "flagged_escalated": f"{sum(r[2] == 'cloud' for r in flagged)}/{len(flagged)}",
        "false_heavy": sum(r[3] == EXPECTED["heavy"] and r[0].label != "heavy" for r in results),
        "false_heavy_from_decoys": sum(
            r[3] == EXPECTED["heavy"] and r[0].label != "heavy" and r[0].decoy_paths for r in results
        ),
        "refused": Counter(r[0].label for r in results if r[1] == 403),
        "errors": Counter(f"{r[0].label}:{r[1]}" for r in results if r[1] not in (200, 403)),
    }
    print(f"\nreplay, {name}: {report}")
    return report


def test_replay_privacy_off(backends: tuple[FakeOllama, FakeOpenAICloud, str, str], tmp_path: Path) -> None:
    results = _replay(backends, tmp_path, {"enabled": False})
    report = _report("privacy off", results)
    assert report["requests"] >= 300
    assert {r[0].client for r in results} == {"opencode", "claude-code"}
    assert not report["errors"] and not report["refused"]
    assert report["tokens_local_share"] >= 0.85
    flagged = [r for r in results if r[0].label in FLAGGED]
    assert all(route == "cloud" for _, _, route, _ in flagged)
    assert report["false_heavy"] == 0
    wrong = [(r[0].session, r[0].label, r[3]) for r in results if r[3] != EXPECTED[r[0].label]]
    assert wrong == []


@pytest.mark.parametrize("escalation", ["keep-local", "refuse"])
def test_replay_privacy_on(
    backends: tuple[FakeOllama, FakeOpenAICloud, str, str], tmp_path: Path, escalation: str
) -> None:
    cloud = backends[1]
    before = len(cloud.state.requests)
    results = _replay(backends, tmp_path, {"enabled": True, "escalation": escalation})
    report = _report(f"privacy on, {escalation}", results)
    assert len(cloud.state.requests) == before  # not one request reached a cloud
    assert all(route in ("local", "") for _, _, route, _ in results)
    refused = [r for r in results if r[1] == 403]
    if escalation == "refuse":
        assert {r[0].label for r in refused} <= FLAGGED  # no unflagged request refused
        # Work flagged for the cloud is refused; a review finds no local reviewer other than
        # the writer and is served locally (the review rule never picks a forbidden model).
        assert len(refused) == sum(r[0].label in ("heavy", "cloud") for r in results)
    else:
        assert refused == []
    # Too long for the local model, and privacy forbids escalating it: a clear 400
    # (context_length_exceeded), not a refusal.
    assert set(report["errors"]) <= {"long-context:400"}
