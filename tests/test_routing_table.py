"""The routing decision table: OpenCode-shaped requests -> expected first candidate, rule and reason.

Bodies come from requests real OpenCode sent (tests/support/opencode_bodies.py): its
~9.5k-character system prompt, its 10 tools, tool calls naming files.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from router_core.errors import BadRequest, EscalationRefused, HybridgeError, ModelNotFound, NoRoute
from router_core.routing.decide import decide
from router_core.routing.plan import RoutePlan
from router_core.routing.state import RoutingState
from router_core.settings import Settings
from router_core.types import ChatRequest
from tests.support.opencode_bodies import (
    PROJECT,
    agent_body,
    chat_request,
    compaction_body,
    headers,
    read_result,
    recorded,
    title_body,
)
from tests.support.servers import make_settings

QWEN = "ollama/qwen3:30b-a3b"
DEVSTRAL = "ollama/devstral:24b"
SONNET = "anthropic/claude-sonnet-4-6"
OPUS = "anthropic/claude-opus-4-7"
GEMINI = "gemini/gemini-3-pro"

FULL = make_settings(
    {
        "providers": {"anthropic": {"kind": "anthropic"}, "gemini": {"preset": "gemini"}},
        "routing": {
            "cloud_model": SONNET,
            "heavy_model": OPUS,
            "ui_model": GEMINI,
            "long_context_model": GEMINI,
            "fallback_chain": [QWEN, DEVSTRAL, SONNET, OPUS],
        },
    }
)
LOCAL_ONLY = make_settings({})
NO_REVIEW = make_settings(
    {
        "providers": {"anthropic": {"kind": "anthropic"}},
        "routing": {"cloud_model": SONNET, "heavy_model": OPUS, "review_strategy": "off"},
    }
)

MIGRATION = f"{PROJECT}/db/migrations/0003_add_index.sql"
AUTH_FILE = f"{PROJECT}/src/auth/session.ts"
WIDGET = f"{PROJECT}/src/components/cart.tsx"


def read_of(path: str, lines: list[str] | None = None) -> tuple[str, dict[str, Any], str]:
    return ("read", {"filePath": path}, read_result(path, lines or ["// placeholder"]))


def glob_of(pattern: str, paths: list[str]) -> tuple[str, dict[str, Any], str]:
    return ("glob", {"pattern": pattern}, "\n".join(paths))


def edit_of(path: str) -> tuple[str, dict[str, Any], str]:
    args = {"filePath": path, "oldString": "a", "newString": "b"}
    return ("edit", args, "Edit applied successfully.")


def writer(model: str, session: str | None = None) -> RoutingState:
    sid = session or headers()["x-session-id"]
    return RoutingState(recent_writer={sid: model})


def sized(body: dict[str, Any]) -> dict[str, str]:
    """Headers as the server passes them: with the body's content-length."""
    return {**headers(), "content-length": str(len(orjson.dumps(body)))}


@dataclass
class Case:
    id: str
    body: dict[str, Any]
    expect: str | type[HybridgeError]  # the first candidate's model id, or the error raised
    rule: str = ""
    reason: str = ""  # a substring of the first candidate's reason
    hdrs: dict[str, str] | None = None
    settings: Settings = FULL
    state: RoutingState = field(default_factory=RoutingState)
    check: Callable[[RoutePlan, ChatRequest], None] | None = None


def all_local(plan: RoutePlan, _: ChatRequest) -> None:
    assert all(c.route == "local" for c in plan.candidates), plan.candidates


def order(*ids: str) -> Callable[[RoutePlan, ChatRequest], None]:
    def check(plan: RoutePlan, _: ChatRequest) -> None:
        assert tuple(c.id for c in plan.candidates) == ids

    return check


def forwarded_user(text: str) -> Callable[[RoutePlan, ChatRequest], None]:
    def check(plan: RoutePlan, request: ChatRequest) -> None:
        users = [m for m in request.body["messages"] if m["role"] == "user"]
        assert users[-1]["content"] == text
        assert "hybridge_tags" not in request.body

    return check


def kept_local(plan: RoutePlan, request: ChatRequest) -> None:
    assert plan.kept_local
    all_local(plan, request)


def tags(*expected: str) -> Callable[[RoutePlan, ChatRequest], None]:
    def check(plan: RoutePlan, request: ChatRequest) -> None:
        assert set(expected) <= plan.tags
        assert request.tags == plan.tags

    return check


LONG_BODY = agent_body("Summarize what the widgets share", history=12, file_lines=200)

CASES = [
    # --- the default: local -------------------------------------------------------------
    Case(
        "plain agent turn stays local",
        agent_body("Why does the cart badge flicker?"),
        QWEN,
        "default",
        "local default",
        check=order(QWEN, DEVSTRAL, SONNET, OPUS),
    ),
    Case("recorded OpenCode agent turn", recorded("agent_turn")[1], OPUS, "heavy", "db/migrations/0003_add_index.sql"),
    Case("ordinary file in the turn stays local", agent_body("Fix the cart", turn=[read_of(WIDGET)]), QWEN, "default"),
    Case(
        "history mentioning migrations, current turn not",
        agent_body("Now tidy the README", turn=[read_of(f"{PROJECT}/README.md")], system=None),
        QWEN,
        "default",
    ),
    Case(
        "paths in the system prompt are not scanned",
        agent_body(
            "hello",
            system=recorded("agent_turn")[1]["messages"][0]["content"] + "\nProject rules: db/migrations/ is"
            " append-only; see src/auth/README.",
        ),
        QWEN,
        "default",
    ),
    Case("auth-like word is not an auth path", agent_body("Update docs/authentication.md wording"), QWEN, "default"),
    Case("CSS id is not a marker", agent_body("Style #layout and #cloudy-header in cart.css"), QWEN, "default"),
    Case(
        "no cloud configured: heavy work stays local",
        agent_body(f"Edit {MIGRATION}"),
        QWEN,
        "heavy",
        "no cloud model configured",
        settings=LOCAL_ONLY,
    ),
    # --- explicit local / cloud ---------------------------------------------------------
    Case(
        "model local",
        agent_body("#cloud fix the login", model="local"),
        QWEN,
        "local",
        "asked for model 'local'",
        check=all_local,
    ),
    Case(
        "#local marker beats a heavy path",
        agent_body(f"#local add an index in {MIGRATION}"),
        QWEN,
        "local",
        "marker #local",
        check=forwarded_user(f"add an index in {MIGRATION}"),
    ),
    Case(
        "#cloud marker",
        agent_body("#cloud explain the checkout flow"),
        SONNET,
        "cloud",
        "marker #cloud",
        check=forwarded_user("explain the checkout flow"),
    ),
    Case(
        "#cloud at the end of the message",
        agent_body("explain the checkout flow #cloud"),
        SONNET,
        "cloud",
        check=forwarded_user("explain the checkout flow"),
    ),
    Case(
        "model cloud",
        agent_body("explain", model="cloud"),
        SONNET,
        "cloud",
        "asked for model 'cloud'",
        check=order(SONNET, QWEN, DEVSTRAL, OPUS),
    ),
    Case(
        "#cloud in a quoted `opencode run` prompt",
        agent_body('"#cloud explain the checkout flow"'),
        SONNET,
        "cloud",
        check=forwarded_user('"explain the checkout flow"'),
    ),
    Case("model cloud without a cloud", agent_body("explain", model="cloud"), NoRoute, settings=LOCAL_ONLY),
    Case(
        "header tag cloud",
        agent_body("explain"),
        SONNET,
        "cloud",
        "header x-hybridge-tags",
        hdrs=headers(**{"x-hybridge-tags": "cloud"}),
    ),
    Case(
        "body hybridge_tags local (OpenCode agent options)",
        agent_body(f"edit {MIGRATION}", extra={"hybridge_tags": ["local"]}),
        QWEN,
        "local",
        "body field hybridge_tags",
        check=forwarded_user(f"edit {MIGRATION}"),
    ),
    Case("named cloud model, no fallbacks", agent_body("hi", model=OPUS), OPUS, "named", "by name", check=order(OPUS)),
    Case("named local model", agent_body("hi", model=DEVSTRAL), DEVSTRAL, "named"),
    Case("unknown model", agent_body("hi", model="gpt-4o"), ModelNotFound),
    Case("unknown provider", agent_body("hi", model="nope/x"), ModelNotFound),
    # --- small-model work ---------------------------------------------------------------
    Case(
        "recorded OpenCode title request",
        recorded("title")[1],
        QWEN,
        "small-model",
        "small-model work (title)",
        check=all_local,
    ),
    Case(
        "title on the main model",
        title_body("refactor auth in src/auth/session.ts", model="auto"),
        QWEN,
        "small-model",
        "title",
        check=all_local,
    ),
    Case(
        "title whose first message says #cloud",
        title_body("#cloud design the billing page", model="auto"),
        QWEN,
        "small-model",
        check=all_local,
    ),
    Case("title asked of a cloud model by name", title_body("hi", model=SONNET), QWEN, "small-model"),
    Case(
        "compaction (old prompt)",
        compaction_body("You are a helpful AI assistant tasked with summarizing conversations."),
        QWEN,
        "small-model",
        "compaction",
        check=all_local,
    ),
    Case(
        "compaction (new prompt)",
        compaction_body("You are summarizing a conversation for continuation by another agent."),
        QWEN,
        "small-model",
        "compaction",
    ),
    Case(
        "session summary",
        compaction_body("Summarize what was done in this conversation. Write like a pull request description."),
        QWEN,
        "small-model",
        "summary",
    ),
    Case(
        "haiku background work arrives as model local",
        agent_body(f"look at {MIGRATION}", model="local"),
        QWEN,
        "local",
        check=all_local,
    ),
    # --- heavy tags ---------------------------------------------------------------------
    Case(
        "migration path in the user message",
        agent_body(f"Add an index in {MIGRATION}"),
        OPUS,
        "heavy",
        "convention '**/*.sql' matched",
        check=tags("migration", "schema"),
    ),
    Case(
        "relative migration path",
        agent_body("look at db/migrations/0003_add_index.sql"),
        OPUS,
        "heavy",
        "db/migrations/0003_add_index.sql",
    ),
    Case("recorded step after reading a migration", recorded("agent_after_tool")[1], OPUS, "heavy"),
    Case(
        "auth file read in the current turn",
        agent_body("Why is login slow?", turn=[read_of(AUTH_FILE)]),
        OPUS,
        "heavy",
        "convention '**/auth/**' matched /home/dev/shop/src/auth/session.ts",
    ),
    Case("edit of an auth file", agent_body("apply the fix", turn=[edit_of(AUTH_FILE)]), OPUS, "heavy"),
    Case(
        "a path only in a glob result tags nothing",
        agent_body("find the schema", turn=[glob_of("**/*.sql", ["prisma/schema.sql", "README.md"])]),
        QWEN,
        "default",
    ),
    Case("billing directory", agent_body("refactor src/billing/invoice.ts"), OPUS, "heavy", "billing"),
    Case(
        "windows path in tool arguments",
        agent_body("go", turn=[("read", {"filePath": "C:\\shop\\db\\migrations\\0004.sql"}, "ok")]),
        OPUS,
        "heavy",
    ),
    Case(
        "windows auth path, JSON-escaped in tool arguments",
        agent_body("go", turn=[("read", {"filePath": "C:\\shop\\src\\auth\\session.ts"}, "ok")]),
        OPUS,
        "heavy",
        "/shop/src/auth/session.ts",
    ),
    Case("a glob pattern is not a path", agent_body("find them", turn=[glob_of("**/*.sql", [])]), QWEN, "default"),
    Case("case-insensitive paths", agent_body("see DB/Migrations/0005_Users.SQL"), OPUS, "heavy"),
    Case(
        "header tag billing",
        agent_body("fix totals"),
        OPUS,
        "heavy",
        "header x-hybridge-tags",
        hdrs=headers(**{"x-hybridge-tags": "billing, review"}),
    ),
    Case(
        "#tag:security marker",
        agent_body("harden the session cookie #tag:security"),
        OPUS,
        "heavy",
        "marker #tag:security",
        check=forwarded_user("harden the session cookie"),
    ),
    Case(
        "body hybridge_tags string",
        agent_body("x", extra={"hybridge_tags": "auth"}),
        OPUS,
        "heavy",
        "body field hybridge_tags",
    ),
    Case(
        "virtual model auto:migration", agent_body("x", model="auto:migration"), OPUS, "heavy", "model 'auto:migration'"
    ),
    Case("bad tag in the header", agent_body("x"), BadRequest, hdrs=headers(**{"x-hybridge-tags": "ok, bad/tag"})),
    Case("bad hybridge_tags type", agent_body("x", extra={"hybridge_tags": 5}), BadRequest),
    # --- UI tags ------------------------------------------------------------------------
    Case(
        "ui tag from the header",
        agent_body("mock the cart page"),
        GEMINI,
        "ui",
        "ui tag 'ui-mock'",
        hdrs=headers(**{"x-hybridge-tags": "ui-mock"}),
    ),
    Case("#tag:design", agent_body("#tag:design rework the header"), GEMINI, "ui", "marker #tag:design"),
    Case("heavy beats ui", agent_body(f"#tag:layout touch {MIGRATION}"), OPUS, "heavy"),
    # --- reviews ------------------------------------------------------------------------
    Case(
        "review, writer unknown: not the local default",
        agent_body("#tag:review check the diff"),
        SONNET,
        "review",
        "ollama/qwen3:30b-a3b is the default writer",
    ),
    Case(
        "review, sonnet wrote it",
        agent_body("#tag:review check the diff"),
        OPUS,
        "review",
        "anthropic/claude-sonnet-4-6 wrote this session's code",
        state=writer(SONNET),
    ),
    Case("review, opus wrote it", agent_body("#tag:review check the diff"), SONNET, "review", state=writer(OPUS)),
    Case(
        "review of heavy work written by the heavy model",
        agent_body(f"#tag:review check {MIGRATION}"),
        SONNET,
        "heavy",
        "review: anthropic/claude-opus-4-7 wrote the code",
        state=writer(OPUS),
    ),
    Case(
        "review with strategy off",
        agent_body("#tag:review check"),
        "ollama/qwen3:30b-a3b",
        "default",
        settings=NO_REVIEW,
    ),
    Case(
        "review under privacy picks another local model",
        agent_body("#tag:review check"),
        DEVSTRAL,
        "review",
        state=RoutingState(privacy=True, recent_writer={headers()["x-session-id"]: QWEN}),
        check=all_local,
    ),
    Case(
        "another session's writer does not count",
        agent_body("#tag:review check"),
        OPUS,
        "review",
        state=RoutingState(recent_writer={"ses_other": OPUS, headers()["x-session-id"]: SONNET}),
    ),
    # --- long context -------------------------------------------------------------------
    Case("long history goes to the long-context model", LONG_BODY, GEMINI, "long-context", "long context: ~"),
    Case("long history, sized by the server", LONG_BODY, GEMINI, "long-context", hdrs=sized(LONG_BODY)),
    Case("short request sized by the server", agent_body("hi"), QWEN, "default", hdrs=sized(agent_body("hi"))),
    Case("a big machine holds it", LONG_BODY, QWEN, "default", state=RoutingState(local_context_limit=200_000)),
    # Claude Code asks for 32k; only min(max_tokens, context.output_reserve) must fit (issue 14).
    Case(
        "max_tokens counts only up to context.output_reserve",
        agent_body("write the whole module", extra={"max_tokens": 30_000}),
        QWEN,
        "default",
    ),
    Case(
        "output reserve pushes it over",
        agent_body("write the whole module", extra={"max_tokens": 30_000}),
        GEMINI,
        "long-context",
        "8,192 output",
        state=RoutingState(local_context_limit=9_000),
    ),
    # --- privacy, budget ----------------------------------------------------------------
    Case(
        "privacy keeps heavy work local",
        agent_body(f"edit {MIGRATION}"),
        QWEN,
        "heavy",
        "kept local (privacy mode): heavy tag",
        state=RoutingState(privacy=True),
        check=kept_local,
    ),
    Case(
        "privacy, refuse",
        agent_body(f"edit {MIGRATION}"),
        EscalationRefused,
        state=RoutingState(privacy=True, privacy_escalation="refuse"),
    ),
    Case(
        "privacy, refuse, unflagged work still served",
        agent_body("hi"),
        QWEN,
        "default",
        state=RoutingState(privacy=True, privacy_escalation="refuse"),
        check=all_local,
    ),
    Case(
        "privacy, named cloud model",
        agent_body("hi", model=OPUS),
        QWEN,
        "named",
        "kept local (privacy mode)",
        state=RoutingState(privacy=True),
        check=kept_local,
    ),
    Case("privacy, #cloud", agent_body("#cloud hi"), QWEN, "cloud", state=RoutingState(privacy=True), check=kept_local),
    Case(
        "budget spent keeps #cloud local",
        agent_body("#cloud hi"),
        QWEN,
        "cloud",
        "cloud budget reached",
        state=RoutingState(budget_exhausted=True),
        check=all_local,
    ),
    Case(
        "budget spent, refuse",
        agent_body(f"edit {MIGRATION}"),
        EscalationRefused,
        state=RoutingState(budget_exhausted=True, budget_action="refuse"),
    ),
    # --- cooldowns ----------------------------------------------------------------------
    Case(
        "heavy model cooling: next in the chain first",
        agent_body(f"edit {MIGRATION}"),
        QWEN,
        "heavy",
        "anthropic/claude-opus-4-7 is cooling down, so fallback chain",
        state=RoutingState(cooling=frozenset({OPUS})),
        check=order(QWEN, DEVSTRAL, SONNET, OPUS),
    ),
    Case(
        "local default cooling",
        agent_body("hi"),
        DEVSTRAL,
        "default",
        state=RoutingState(cooling=frozenset({QWEN})),
        check=order(DEVSTRAL, SONNET, OPUS, QWEN),
    ),
    Case(
        "everything cooling keeps the order",
        agent_body("hi"),
        QWEN,
        "default",
        state=RoutingState(cooling=frozenset({QWEN, DEVSTRAL, SONNET, OPUS})),
        check=order(QWEN, DEVSTRAL, SONNET, OPUS),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_routing_table(case: Case) -> None:
    body = copy.deepcopy(case.body)
    original = copy.deepcopy(body)
    request = chat_request(body, case.hdrs)
    if isinstance(case.expect, type):
        with pytest.raises(case.expect):
            decide(request, case.settings, case.state)
        return
    plan = decide(request, case.settings, case.state)
    first = plan.candidates[0]
    assert first.id == case.expect, (first, plan.rule)
    assert plan.rule == case.rule
    assert case.reason in first.reason, first.reason
    assert first.reason.isascii()
    if case.check:
        case.check(plan, request)
    # The client's own body is never changed (markers go from a copy).
    assert body == original


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40


def test_decide_twice_on_one_request_gives_the_same_plan() -> None:
    request = chat_request(agent_body("#tag:security harden it", extra={"hybridge_tags": ["review"]}))
    first = decide(request, FULL)
    second = decide(request, FULL)
    assert [c.id for c in first.candidates] == [c.id for c in second.candidates]
    assert first.tags == second.tags == {"security", "review"}
