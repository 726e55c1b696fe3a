"""Issue 14: one stable context per model, output room, keep_alive, truncate, the estimate.

Pure rules first (tables), then Hybridge over real sockets against the Ollama test engine
(tests/support/fake_ollama.py: real llama-server runners that reload on changed options).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from router_core.errors import SettingsError, UpstreamError
from router_core.inventory.context import choose_context, planned_context
from router_core.inventory.prompt_tokens import SessionTokens, conservative_tokens, text_tokens
from router_core.providers.ollama_translate import keep_alive_value
from router_core.settings import ContextSettings
from tests.support.fake_ollama import FakeModel, FakeOllama, keep_alive_seconds
from tests.support.servers import ThreadedServer, make_settings, run_hybridge

CTX = ContextSettings()


def test_the_planned_context_is_the_fit_within_the_model_and_the_setting() -> None:
    assert planned_context(CTX, 262_144, 200_000) == 65_536  # the setting caps a huge window
    assert planned_context(CTX, 40_960, 200_000) == 40_960  # the model's own maximum
    assert planned_context(CTX, 131_072, 30_720) == 30_720  # what fits beside the weights
    assert planned_context(CTX, None, None) == 65_536


def test_output_room_is_the_smaller_of_max_tokens_and_the_reserve() -> None:
    assert CTX.output_room(32_000) == 8_192  # Claude Code's 32k
    assert CTX.output_room(512) == 512
    assert CTX.output_room(None) == CTX.default_output_tokens  # no max_tokens: the default room, within the reserve


def test_a_27k_claude_code_prompt_fits_a_40k_context() -> None:
    choice = choose_context(27_000, 32_000, CTX, 40_960, None)
    assert (choice.num_ctx, choice.num_predict) == (40_960, 40_960 - 27_000)


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "loaded", "num_ctx", "reused"),
    [
        (500, 100, 40_960, 40_960, True),  # a title never shrinks a loaded runner
        (20_000, 8_000, 32_768, 32_768, True),  # reuse the loaded runner when it fits
        (30_000, 8_000, 16_384, 40_960, False),  # does not fit: grow straight to the plan, once
        (1_000, 100, None, 40_960, False),  # nothing loaded: the plan
        (50_000, 100, 65_536, 65_536, True),  # a bigger runner someone else loaded is reused
    ],
)
def test_context_rules(prompt: int, max_tokens: int, loaded: int | None, num_ctx: int, reused: bool) -> None:
    choice = choose_context(prompt, max_tokens, CTX, 40_960, loaded)
    assert (choice.num_ctx, choice.reused) == (num_ctx, reused)
    assert choice.num_predict == min(max_tokens, num_ctx - prompt)


def test_a_prompt_beyond_every_context_is_a_context_overflow() -> None:
    with pytest.raises(UpstreamError) as caught:
        choose_context(40_000, 32_000, CTX, 40_960, None)
    assert caught.value.kind == "context_overflow"
    assert str(caught.value) == "long context: ~40,000 prompt + 8,192 output tokens > 40,960 local"


def test_an_opencode_like_session_asks_for_one_num_ctx() -> None:
    """The issue's traffic: titles between turns, history growing ~1.5k a turn: 0 changes."""
    loaded: int | None = None
    sizes = []
    for turn in range(20):
        prompt, max_tokens = (600, 100) if turn % 4 == 0 else (10_000 + 1_500 * turn, 32_000)
        choice = choose_context(prompt, max_tokens, CTX, 65_536, loaded)
        loaded = choice.num_ctx
        sizes.append(choice.num_ctx)
    assert set(sizes) == {65_536}


def test_dense_text_is_not_under_sized() -> None:
    chinese = "这是一个关于数据库索引的长篇说明，" * 1500  # 25,500 characters
    assert len(chinese) == 25_500
    assert text_tokens(chinese) >= 25_500  # a tokenizer gives 17k-25k; chars ÷ 3 said 8,500
    assert text_tokens("def f(x):\n    return x\n") == 23 // 3  # ASCII: characters ÷ 3


def test_the_session_estimate_adds_only_the_new_messages_to_the_last_count() -> None:
    tokens = SessionTokens()
    turn1 = [{"role": "system", "content": "x" * 30_000}, {"role": "user", "content": "hi"}]
    tokens.record("s", turn1, 9_000)  # the engine counted 9,000 (the rule said ~10,000)
    turn2 = [*turn1, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "more " * 30}]
    assert tokens.estimate("s", turn2, None) == 9_000 + conservative_tokens(turn2[2:], None)
    changed = [{"role": "system", "content": "y"}, *turn2[1:]]
    assert tokens.estimate("s", changed, None) == conservative_tokens(changed, None)  # prefix differs


@pytest.mark.parametrize(
    ("setting", "sent", "seconds"),
    [("30m", "30m", 1800.0), ("-1", -1, None), ("0", 0, 0.0), ("1h30m", "1h30m", 5400.0), ("90", 90, 90.0)],
)
def test_keep_alive_is_sent_as_ollama_reads_it(setting: str, sent: Any, seconds: float | None) -> None:
    assert keep_alive_value(setting) == sent
    assert keep_alive_seconds(sent) == seconds  # api/types.go Duration, as the engine parses it


def test_a_bad_keep_alive_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="keep_alive"):
        make_settings({"context": {"keep_alive": "forever"}})


# --- over real sockets ------------------------------------------------------------------

MODEL = "gemma3:270m"


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[FakeOllama, str]]:
    fake = FakeOllama(
        models=[
            FakeModel(MODEL, capabilities=["completion", "tools"], context_length=8192),
            FakeModel("tinythinker:latest", capabilities=["completion", "thinking"], context_length=8192),
        ],
        threads=1,
    )
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()
        fake.close()


def _settings(url: str, **context: Any) -> Any:
    return make_settings(
        {
            "routing": {"local_model": f"ollama/{MODEL}"},
            "providers": {"ollama": {"kind": "ollama", "base_url": url}},
            "context": {"max_context_tokens": 8192, **context},
        }
    )


def _chat(base: str, content: str, max_tokens: int, model: str = "local", **extra: Any) -> httpx.Response:
    body = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "system", "content": "You write short notes."}, {"role": "user", "content": content}],
        **extra,
    }
    return httpx.post(f"{base}/chat/completions", json=body, timeout=300)


@pytest.mark.real_model
@pytest.mark.timeout(600)
def test_a_session_of_small_and_large_requests_loads_the_model_once(engine: tuple[FakeOllama, str]) -> None:
    fake, url = engine
    fake.close()
    loads, seen = len(fake.state.loads), len(fake.state.requests)
    with run_hybridge(_settings(url, output_reserve=1024)) as service:
        base = service.status().base_url
        for content, max_tokens in [("a title", 8), ("notes " * 300, 6), ("a title", 8), ("notes " * 600, 4)]:
            response = _chat(base, content, max_tokens)
            assert response.status_code == 200, response.text
    sent = fake.state.requests[seen:]
    assert {b["options"]["num_ctx"] for b in sent} == {8192}
    assert fake.state.loads[loads:] == [(MODEL, 8192)]  # the first load only
    assert {b["keep_alive"] for b in sent} == {"30m"} and {b["truncate"] for b in sent} == {False}
    assert [b["options"]["num_predict"] for b in sent] == [8, 6, 8, 4]  # min(max_tokens, num_ctx - prompt)


@pytest.mark.real_model
@pytest.mark.timeout(600)
def test_an_overflow_is_an_error_not_a_silent_cut(engine: tuple[FakeOllama, str]) -> None:
    fake, url = engine
    fake.close()  # nothing loaded: a bigger loaded runner would rightly be reused
    with run_hybridge(_settings(url, max_context_tokens=2048)) as service:
        # ~700 tokens estimated, far more in the engine's count: dense digits.
        response = _chat(service.status().base_url, "1234567890" * 250, 4, model="ollama/" + MODEL)
    assert response.status_code == 400, response.text
    assert "context length" in response.json()["error"]["message"]
    assert fake.state.requests[-1]["truncate"] is False


@pytest.mark.real_model
@pytest.mark.timeout(600)
def test_a_name_without_a_tag_is_latest_and_thinking_comes_back(engine: tuple[FakeOllama, str]) -> None:
    fake, url = engine
    with run_hybridge(_settings(url)) as service:
        base = service.status().base_url
        off = _chat(base, "hi", 6, model="ollama/tinythinker", reasoning_effort="none")
        on = _chat(base, "hi", 12, model="ollama/tinythinker")
        anthropic = httpx.post(
            f"{base}/messages",
            json={
                "model": "ollama/tinythinker",
                "max_tokens": 12,
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "messages": [{"role": "user", "content": "hi"}],
            },
            timeout=300,
        )
        plain = _chat(base, "hi", 4, model=f"ollama/{MODEL}", reasoning_effort="high")
    assert off.status_code == on.status_code == anthropic.status_code == plain.status_code == 200
    assert fake.state.requests[-4]["think"] is False
    assert "reasoning_content" not in off.json()["choices"][0]["message"]
    assert "think" not in fake.state.requests[-3]  # the model's default: it thinks
    assert on.json()["choices"][0]["message"]["reasoning_content"]
    assert fake.state.requests[-2]["think"] is True
    blocks = anthropic.json()["content"]
    assert blocks[0]["type"] == "thinking" and blocks[0]["thinking"]
    assert "think" not in fake.state.requests[-1]  # never sent to a model without the capability


# --- capabilities in routing ------------------------------------------------------------


def _plan_first(body: dict[str, Any], caps: dict[str, tuple[str, ...]]) -> str:
    from router_core.routing.decide import decide
    from router_core.routing.state import RoutingState
    from router_core.server.openai_request import parse_chat_request

    settings = make_settings(
        {
            "routing": {"local_model": "ollama/gemma3:270m", "fallback_chain": ["ollama/qwen3:8b"]},
            "providers": {"ollama": {"kind": "ollama", "base_url": "http://127.0.0.1:11434"}},
        }
    )
    plan = decide(parse_chat_request(body, {}), settings, RoutingState(capabilities=caps))
    return plan.candidates[0].id


TOOLS = [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}]
IMAGE = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]}]


def test_tools_never_go_to_a_local_model_without_tools() -> None:
    caps = {"ollama/gemma3:270m": ("completion",), "ollama/qwen3:8b": ("completion", "tools", "thinking")}
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS}
    assert _plan_first(body, caps) == "ollama/qwen3:8b"
    assert _plan_first({**body, "tools": None}, caps) == "ollama/gemma3:270m"


def test_images_go_only_to_vision_models() -> None:
    caps = {"ollama/gemma3:270m": ("completion", "vision"), "ollama/qwen3:8b": ("completion", "tools")}
    assert _plan_first({"model": "auto", "messages": IMAGE}, caps) == "ollama/gemma3:270m"
    caps = {"ollama/gemma3:270m": ("completion",), "ollama/qwen3:8b": ("completion", "tools")}
    from router_core.errors import NoRoute

    with pytest.raises(NoRoute, match="lacks vision"):
        _plan_first({"model": "auto", "messages": IMAGE}, caps)


def test_tool_call_ids_are_kept_both_ways(engine: tuple[FakeOllama, str]) -> None:
    """The engine names each call (api/types.go ToolCall.ID); the id reaches the client and comes back."""
    fake, url = engine
    fake.state.script.append([{"content": "", "tool_calls": [{"function": {"name": "read", "arguments": {"p": "a"}}}]}])
    with run_hybridge(_settings(url)) as service:
        base = service.status().base_url
        first = _chat(base, "read a", 8, model=f"ollama/{MODEL}", tools=TOOLS)
        assert first.status_code == 200, first.text
        (call,) = first.json()["choices"][0]["message"]["tool_calls"]
        assert call["id"].startswith("call_")
        fake.state.script.append([{"content": "done"}])
        body = {
            "model": f"ollama/{MODEL}",
            "max_tokens": 4,
            "tools": TOOLS,
            "messages": [
                {"role": "user", "content": "read a"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": "text of a"},
            ],
        }
        second = httpx.post(f"{base}/chat/completions", json=body, timeout=300)
    assert second.status_code == 200, second.text
    sent = fake.state.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call["id"]
    assert sent[2]["tool_call_id"] == call["id"] and sent[2]["tool_name"] == "read"


@pytest.mark.real_model
@pytest.mark.timeout(600)
def test_small_model_work_is_answered_without_thinking(engine: tuple[FakeOllama, str]) -> None:
    """A title request (OpenCode's title agent prompt) to a thinking model: think false."""
    fake, url = engine
    with run_hybridge(_settings(url)) as service:
        response = httpx.post(
            f"{service.status().base_url}/chat/completions",
            json={
                "model": "ollama/tinythinker",
                "max_tokens": 6,
                "messages": [
                    {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
                    {"role": "user", "content": "fix the login bug"},
                ],
            },
            timeout=300,
        )
    assert response.status_code == 200, response.text
    assert fake.state.requests[-1]["think"] is False
    assert "reasoning_content" not in response.json()["choices"][0]["message"]


def test_small_model_work_takes_the_lowest_level_where_thinking_cannot_be_off() -> None:
    from router_core.providers.ollama_translate import think_value

    caps = ("completion", "thinking")
    assert think_value({}, None, caps, False, small_task="title") is False
    assert think_value({}, None, caps, True, small_task="compaction") == "low"  # gpt-oss
    assert think_value({}, None, ("completion",), False, small_task="title") is None  # no capability: never sent
    assert think_value({"reasoning_effort": "high"}, None, caps, True) == "high"
