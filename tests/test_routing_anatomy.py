"""What the agent is acting on: routing decisions on bodies real Claude Code 2.1.330 and
OpenCode 1.18.33 sent (tests/support/claude_code_bodies.py, opencode_bodies.py)."""

from __future__ import annotations

import pytest

from router_core.errors import EscalationRefused
from router_core.routing.anatomy import instruction_text, system_body
from router_core.routing.decide import decide
from router_core.routing.state import RoutingState
from router_core.server.anthropic_request import parse_messages_request
from tests.support import claude_code_bodies as cc
from tests.support import opencode_bodies as oc
from tests.support.servers import make_settings

SONNET = "anthropic/claude-sonnet-4-6"
OPUS = "anthropic/claude-opus-4-7"
LOCAL = "ollama/qwen3:30b-a3b"
SETTINGS = make_settings(
    {
        "providers": {"anthropic": {"kind": "anthropic"}},
        "routing": {"cloud_model": SONNET, "heavy_model": OPUS, "local_context_tokens": 40960},
    }
)
GREP = "server/auth/login.py:12: log.info('login')\nbilling/plans.tsx:3: // plans"


def cc_plan(body: dict, state: RoutingState | None = None):  # type: ignore[no-untyped-def]
    request = parse_messages_request(body, cc.headers())
    return decide(request, SETTINGS, state or RoutingState())


def test_claude_md_in_a_system_reminder_tags_nothing() -> None:
    body = cc.recorded("turn")[1]
    assert "src/auth/" in str(body["messages"][0]["content"])  # the recorded CLAUDE.md names it
    plan = cc_plan(body)
    assert plan.candidates[0].id == LOCAL and plan.rule == "default" and not plan.tags


def test_the_instruction_before_trailing_system_reminders_is_the_latest_user_message() -> None:
    readme = f"{cc.PROJECT}/README.md"
    body = cc.turn_body(
        f"Fix the session bug in {cc.PROJECT}/src/auth/session.py",
        steps=[cc.tool_step([("Read", {"file_path": readme}, "1\tx")], 1, reminder=True)],
    )
    plan = cc_plan(body)
    assert plan.rule == "heavy"
    assert "src/auth/session.py in the latest user instruction" in dict(plan.tag_sources)["auth"]
    assert plan.matches[0].where == "latest user instruction"


def test_paths_only_in_tool_results_tag_nothing() -> None:
    steps = [cc.tool_step([("Bash", {"command": "grep -rn log ."}, GREP)], 1, reminder=True)]
    plan = cc_plan(cc.turn_body("Add logging to the handler", steps=steps))
    assert plan.rule == "default" and plan.candidates[0].id == LOCAL
    oc_body = oc.agent_body("Fix the typo in README.md", turn=[("grep", {"pattern": "log"}, GREP)])
    assert decide(oc.chat_request(oc_body), SETTINGS).rule == "default"


def test_a_write_target_weighs_most_and_explain_says_where() -> None:
    login = f"{cc.PROJECT}/src/auth/login.py"
    steps = [cc.tool_step([("Edit", {"file_path": login, "old_string": "a", "new_string": "b"}, "ok")], 1)]
    plan = cc_plan(cc.turn_body("Make the failing test pass (see src/auth/README)", steps=steps))
    assert plan.rule == "heavy"
    match = next(m for m in plan.matches if m.tag == "auth")
    assert match.where == "Edit call (write)" and match.path.endswith("src/auth/login.py")


def test_a_read_counts() -> None:
    login = f"{cc.PROJECT}/src/auth/login.py"
    plan = cc_plan(cc.turn_body("Why is this slow?", steps=[cc.tool_step([("Read", {"file_path": login}, "x")], 1)]))
    assert plan.rule == "heavy" and plan.matches[0].where == "Read call"


def test_haiku_background_requests_are_small_work() -> None:
    for model in ("claude-haiku-4-5-20251001", "local"):
        plan = cc_plan(cc.small_body("Fix the login in src/auth/login.py", model=model))
        assert plan.rule == "small-model" and plan.small_task == "background"
        assert all(c.route == "local" for c in plan.candidates)


def test_the_bare_summarize_prefix_no_longer_pins_an_agent() -> None:
    body = oc.agent_body(f"edit {oc.PROJECT}/src/auth/x.ts", system="Summarize less, do more: you are a coder.")
    assert decide(oc.chat_request(body), SETTINGS).rule == "heavy"


def test_claude_code_compaction_prompt_after_its_preamble_is_small_work() -> None:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.6f5;"},
        {"type": "text", "text": "You are a helpful AI assistant tasked with summarizing conversations."},
    ]
    plan = cc_plan(cc.turn_body("Your task is to create a detailed summary", system=system))
    assert plan.rule == "small-model" and plan.small_task == "compaction"


def test_small_work_too_long_for_local_escalates_unless_privacy() -> None:
    body = oc.compaction_body("You are a helpful AI assistant tasked with summarizing conversations.", history=60)
    plan = decide(oc.chat_request(body), SETTINGS)
    assert plan.rule == "long-context" and plan.candidates[0].id == SONNET
    assert "small-model work (compaction) too long" in plan.reason
    kept = decide(oc.chat_request(body), SETTINGS, RoutingState(privacy=True, privacy_escalation="refuse"))
    assert kept.kept_local and all(c.route == "local" for c in kept.candidates)


def test_refuse_mode_refuses_only_flagged_work() -> None:
    refuse = RoutingState(privacy=True, privacy_escalation="refuse")
    assert cc_plan(cc.recorded("after_edit")[1], refuse).candidates[0].route == "local"
    with pytest.raises(EscalationRefused):
        cc_plan(cc.turn_body(f"edit {cc.PROJECT}/db/migrations/0004.sql"), refuse)


@pytest.mark.parametrize(
    ("system", "prompt", "where"),
    [
        ("You are a code reviewer. Report bugs; do not edit.", "please review this diff", "agent prompt"),
        (None, "/review 12", "instruction"),
    ],
)
def test_reviews_from_the_clients_own_signals(system: str | None, prompt: str, where: str) -> None:
    plan = decide(oc.chat_request(oc.agent_body(prompt, system=system)), SETTINGS)
    assert plan.rule == "review" and plan.candidates[0].id == SONNET
    assert dict(plan.tag_sources)["review"].startswith(f"review signal: {where}")


def test_claude_code_review_command() -> None:
    command = [
        {
            "type": "text",
            "text": "<command-message>review is running…</command-message>\n<command-name>/review</command-name>",
        }
    ]
    plan = cc_plan(cc.turn_body(command))
    assert plan.rule == "review"


def test_review_signals_are_configurable() -> None:
    off = make_settings(
        {"providers": {"anthropic": {"kind": "anthropic"}}, "routing": {"cloud_model": SONNET, "review_signals": []}}
    )
    assert decide(oc.chat_request(oc.agent_body("/review 12")), off).rule == "default"


def test_context_blocks() -> None:
    assert instruction_text("<system-reminder>\nCLAUDE.md: src/auth/\n</system-reminder>") == ""
    assert instruction_text("fix it <system-reminder>src/auth/</system-reminder> now") == "fix it  now"
    assert (
        system_body(
            "x-anthropic-billing-header: a\nYou are a Claude agent, built on Anthropic's Claude "
            "Agent SDK.\nYou are a title generator"
        )
        == "You are a title generator"
    )
