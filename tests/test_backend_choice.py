"""Backend pools without sockets: the ranking rules (routing/backends.py), the engines'
/metrics read as they print it, the pool settings, and the run-time state (providers/pool.py)."""

from __future__ import annotations

from typing import Any

import pytest

from router_core.errors import SettingsError, UpstreamError
from router_core.inventory.backends import BackendStatus, ServedModel, address_of, busy_figures, metrics_engine
from router_core.privacy.state import PrivacyState
from router_core.providers.pool import BackendPools
from router_core.routing.backends import BackendView, rank
from router_core.routing.cooldowns import Cooldowns
from router_core.routing.rules import rules_for
from router_core.types import ChatRequest
from tests.support.servers import make_settings


def _view(provider: str, **kw: Any) -> BackendView:
    return BackendView(provider=provider, model="m", **kw)


def _order(members: list[BackendView], need: int | None = 1000, sticky: str | None = None) -> list[str]:
    return [r.view.provider for r in rank("p", members, need_tokens=need, sticky=sticky).order]


def test_the_backend_with_the_model_loaded_comes_first_whatever_its_place() -> None:
    members = [_view("a", loaded=False), _view("b", loaded=True, loaded_context=8192)]
    assert _order(members) == ["b", "a"]


def test_a_model_loaded_with_too_little_context_counts_as_not_loaded() -> None:
    members = [
        _view("a", loaded=True, loaded_context=4096, busy=0),
        _view("b", loaded=True, loaded_context=32768, busy=1),
    ]
    ranking = rank("p", members, need_tokens=20000)
    assert [r.view.provider for r in ranking.order] == ["b", "a"]
    assert "too little context (4,096 < 20,000)" in ranking.order[1].why


def test_then_the_least_busy_then_the_best_fit_then_the_pool_order() -> None:
    loaded = {"loaded": True, "loaded_context": 8192}
    assert _order([_view("a", busy=2, **loaded), _view("b", busy=1, **loaded)]) == ["b", "a"]
    assert _order([_view("a", fit_context=8192), _view("b", fit_context=32768)]) == ["b", "a"]
    assert _order([_view("a", fit_context=8192), _view("b", fit_context=8192)]) == ["a", "b"]


def test_a_backend_with_every_slot_busy_yields_to_an_idle_one_that_must_load() -> None:
    members = [_view("a", loaded=True, busy=1, slots=1), _view("b", loaded=False, busy=0, slots=1)]
    assert _order(members) == ["b", "a"]
    # With room left in its slots, the loaded one stays first.
    members = [_view("a", loaded=True, busy=1, slots=4), _view("b", loaded=False, busy=0, slots=1)]
    assert _order(members) == ["a", "b"]


def test_down_untrusted_and_missing_backends_are_skipped_with_their_reasons() -> None:
    members = [
        _view("down", down="connect failed at 10:00:00"),
        _view("lan", untrusted="privacy mode: 192.168.1.9:11434 is not in privacy.trusted_hosts"),
        _view("empty", installed=False),
        _view("ok"),
    ]
    ranking = rank("p", members, need_tokens=None)
    assert [r.view.provider for r in ranking.order] == ["ok"]
    reasons = dict(ranking.skipped)
    assert reasons["down/m"].startswith("down (connect failed at 10:00:00)")
    assert "trusted_hosts" in reasons["lan/m"] and reasons["empty/m"] == "does not have m"


def test_a_session_keeps_its_backend_unless_it_is_cooling_down() -> None:
    members = [_view("a", loaded=True), _view("b", loaded=True, busy=3, slots=1)]
    ranking = rank("p", members, need_tokens=100, sticky="b")
    assert [r.view.provider for r in ranking.order] == ["b", "a"]
    assert ranking.order[0].why.startswith("this session's backend")
    cooling = [_view("a", loaded=True), _view("b", loaded=True, cooling=True)]
    assert _order(cooling, sticky="b") == ["a", "b"]


LLAMA_METRICS = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 33065
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 1
# HELP llamacpp:requests_deferred Number of requests deferred
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 2
"""
# vLLM labels its gauges per engine and model (vllm/v1/metrics/loggers.py).
VLLM_METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-Coder"} 3.0
vllm:num_requests_running{engine="1",model_name="Qwen/Qwen3-Coder"} 2.0
vllm:num_requests_running{engine="0",model_name="other"} 7.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen3-Coder"} 4.0
"""


def test_the_engines_busy_figures_are_read_from_their_metrics() -> None:
    assert metrics_engine(LLAMA_METRICS) == "llama.cpp" and metrics_engine(VLLM_METRICS) == "vllm"
    assert busy_figures(LLAMA_METRICS, "llama.cpp") == (1, 2)
    assert busy_figures(VLLM_METRICS, "vllm", "Qwen/Qwen3-Coder") == (5, 4)
    assert busy_figures(VLLM_METRICS, "vllm") == (12, 4)
    assert busy_figures("", "ollama") == (None, None)


def test_addresses_carry_no_user_info_or_path() -> None:
    assert address_of("http://user:secret@192.168.1.5:8080/v1") == "192.168.1.5:8080"
    assert address_of("https://gpu.lan/v1") == "gpu.lan:443"
    assert address_of("http://[::1]:11434") == "[::1]:11434"


def _pool_settings(**routing: Any) -> Any:
    return make_settings(
        {
            "routing": {"local_model": "a/m", "pools": {"p": ["a/m", "b/m:7b", "c/m"]}, **routing},
            "providers": {
                "a": {"kind": "ollama", "base_url": "http://127.0.0.1:11434"},
                "b": {"kind": "ollama", "base_url": "http://192.168.1.20:11434"},
                "c": {"kind": "openai-local", "base_url": "http://127.0.0.1:8080/v1"},
            },
        }
    )


@pytest.mark.parametrize(
    ("pools", "problem"),
    [
        ({"p": ["nope/m"]}, "no provider named 'nope'"),
        ({"p": []}, "list at least one"),
        ({"p": ["a/m", "a/other"]}, "provider 'a' is listed twice"),
        ({"p": ["a/m"], "q": ["a/m"]}, "already in pool 'p'"),
        ({"p": ["cloud/gpt"]}, "is not a local provider"),
        ({"a/b": ["a/m"]}, "cannot be empty or hold '/'"),
    ],
)
def test_bad_pools_are_refused_naming_the_problem(pools: dict[str, list[str]], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        make_settings(
            {
                "routing": {"local_model": "a/m", "pools": pools},
                "providers": {"a": {"kind": "ollama"}, "cloud": {"kind": "openai", "base_url": "https://x.test/v1"}},
            }
        )
    assert problem in str(caught.value.problems)


def test_members_of_one_pool_are_one_model_to_review_routing() -> None:
    rules = rules_for(_pool_settings())
    assert rules.same("a/m", "b/m:7b") and rules.same("c/m", "a/m") and not rules.same("a/m", "a/x")


def _request(session: str = "s1") -> ChatRequest:
    messages = [{"role": "user", "content": "hi"}]
    body = {"model": "local", "messages": messages}
    return ChatRequest("local", messages, False, 16, None, body, {"x-session-id": session})


def _up(provider: str, engine: Any = "ollama", **kw: Any) -> BackendStatus:
    return BackendStatus(provider, engine, "127.0.0.1:1", up=True, **kw)


def test_the_pool_state_counts_in_flight_and_the_engines_figures_beyond_ours() -> None:
    pools = BackendPools(_pool_settings(), PrivacyState(), Cooldowns())
    pools.apply(_up("a", loaded=(ServedModel("m:latest", 8192),), installed=("m:latest",)))
    pools.apply(_up("b", loaded=(ServedModel("m:7b", 8192),), installed=("m:7b",)))
    pools.apply(_up("c", "llama.cpp", loaded=(ServedModel("*", 8192),), serves_any=True, running=0, waiting=0, slots=2))
    assert [r.view.provider for r in pools.choose("p", _request()).order] == ["a", "b", "c"]
    pools.begin("a")
    assert [r.view.provider for r in pools.choose("p", _request()).order] == ["b", "c", "a"]
    pools.begin("b")
    pools.begin("c")
    # The engine reports 3 running: ours (1, in flight when it was read) and 2 of others.
    pools.apply(_up("c", "llama.cpp", loaded=(ServedModel("*", 8192),), serves_any=True, running=3, waiting=0, slots=2))
    states = {s.provider: s for s in pools.states()}
    assert (states["c"].in_flight, states["c"].busy, states["a"].busy) == (1, 3, 1)
    pools.end("c")
    assert {s.provider: s.busy for s in pools.states()}["c"] == 2


def test_a_connect_failure_keeps_a_backend_out_until_a_poll_sees_it_up() -> None:
    pools = BackendPools(_pool_settings(), PrivacyState(), Cooldowns())
    pools.failed("a", UpstreamError("a: cannot connect", kind="connect", status=502))
    ranking = pools.choose("p", _request())
    assert "a" not in [r.view.provider for r in ranking.order]
    assert ranking.skipped[0][0] == "a/m" and "connect failed at" in ranking.skipped[0][1]
    pools.failed("b", UpstreamError("b: timed out", kind="timeout", status=504))  # slow, not down
    assert "b" in [r.view.provider for r in pools.choose("p", _request()).order]
    pools.apply(_up("a"))
    assert "a" in [r.view.provider for r in pools.choose("p", _request()).order]


def test_privacy_mode_skips_an_untrusted_lan_backend_until_it_is_trusted() -> None:
    privacy = PrivacyState(enabled=True)
    pools = BackendPools(_pool_settings(), privacy, Cooldowns())
    skipped = dict(pools.choose("p", _request()).skipped)
    assert skipped == {"b/m:7b": "privacy mode: 192.168.1.20:11434 is not in privacy.trusted_hosts"}
    privacy.update(trusted_hosts=["192.168.1.0/24"])
    assert pools.choose("p", _request()).skipped == ()


def test_a_pooled_member_cools_the_plan_only_when_its_whole_pool_is_out() -> None:
    pools = BackendPools(_pool_settings(), PrivacyState(), Cooldowns())
    assert pools.plan_cooling(frozenset({"a/m", "x/y"})) == {"x/y"}
    pools.failed("b", UpstreamError("b: cannot connect", kind="connect", status=502))
    assert pools.plan_cooling(frozenset({"a/m", "c/m"})) == {"a/m", "c/m"}


def test_explain_shows_the_pool_order_and_what_was_skipped() -> None:
    from router_core.routing.explain import render_text
    from router_core.routing.plan import Candidate, RoutePlan
    from router_core.runtime import pool_choices

    pools = BackendPools(_pool_settings(), PrivacyState(enabled=True), Cooldowns())
    pools.apply(_up("a", loaded=(ServedModel("m:latest", 8192),), installed=("m:latest",)))
    planned = Candidate("a", "m", "local", "local default")
    choices = pool_choices(pools, RoutePlan((planned,), rule="default"), _request())
    assert choices == [
        {
            "candidate": "a/m",
            "pool": "p",
            "order": [
                {"backend": "a/m", "why": "has it loaded (context 8,192), 0 busy of 1 slot"},
                {"backend": "c/m", "why": "0 busy"},
            ],
            "skipped": [
                {"backend": "b/m:7b", "why": "privacy mode: 192.168.1.20:11434 is not in privacy.trusted_hosts"}
            ],
        }
    ]
    # A member asked for by name is that backend: no pool choice.
    assert pool_choices(pools, RoutePlan((planned,), rule="named"), _request()) == []
    data = {
        "model_asked": "local",
        "route": "local",
        "model": "a/m",
        "rule": "default",
        "reason": "local default",
        "small_task": None,
        "kept_local": False,
        "budget_kept_local": False,
        "tags": [],
        "prompt_tokens": 3,
        "output_tokens": 16,
        "local_context_tokens": 8192,
        "state": {
            "privacy": True,
            "privacy_escalation": "keep-local",
            "budget_exhausted": False,
            "budget_action": "keep-local",
            "cooling": [],
        },
        "candidates": [{"route": "local", "model": "a/m", "reason": "local default"}],
        "backends": choices,
    }
    text = render_text(data)
    assert "pool         p serves a/m; its backends, as chosen now:" in text
    assert "  1. a/m  - has it loaded (context 8,192), 0 busy of 1 slot" in text
    assert "  skipped b/m:7b  - privacy mode: 192.168.1.20:11434 is not in privacy.trusted_hosts" in text


def test_sessions_without_an_id_are_told_apart_by_their_opening() -> None:
    pools = BackendPools(_pool_settings(), PrivacyState(), Cooldowns())
    system = {"role": "system", "content": "You are opencode."}

    def opening(text: str, session: str | None = None) -> ChatRequest:
        messages = [system, {"role": "user", "content": text}]
        headers = {"x-session-id": session} if session else {}
        return ChatRequest("local", messages, False, 16, None, {"model": "local", "messages": messages}, headers)

    assert pools.session("p", opening("fix a")) != pools.session("p", opening("fix b"))  # one system prompt, two tasks
    later = opening("fix a")
    later.messages.append({"role": "assistant", "content": "done"})
    assert pools.session("p", later) == pools.session("p", opening("fix a"))
    assert pools.session("p", opening("fix a", "s1")) == pools.session("p", opening("other", "s1")) == "p\0s1"
