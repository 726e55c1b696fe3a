"""Properties of classify + decide over generated OpenCode-shaped requests and router states."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from router_core.errors import EscalationRefused, HybridgeError, ModelNotFound, NoRoute
from router_core.routing.conventions import compile_conventions, match_texts
from router_core.routing.decide import decide
from router_core.routing.markers import find_markers, strip_markers
from router_core.routing.rules import rules_for
from router_core.routing.state import RoutingState
from router_core.settings import Settings
from router_core.types import ChatRequest
from tests.support.opencode_bodies import PROJECT, agent_body, chat_request, headers, history_turn, read_result
from tests.support.servers import make_settings
from tests.support.suite import examples

QWEN, DEVSTRAL = "ollama/qwen3:30b-a3b", "ollama/devstral:24b"
SONNET, OPUS, GEMINI = "anthropic/claude-sonnet-4-6", "anthropic/claude-opus-4-7", "gemini/gemini-3-pro"
MODELS = [QWEN, DEVSTRAL, SONNET, OPUS, GEMINI]
CLOUD = {"providers": {"anthropic": {"kind": "anthropic"}, "gemini": {"preset": "gemini"}}}
SETTINGS: list[Settings] = [
    make_settings(
        {
            **CLOUD,
            "routing": {
                "cloud_model": SONNET,
                "heavy_model": OPUS,
                "ui_model": GEMINI,
                "long_context_model": GEMINI,
                "fallback_chain": [QWEN, DEVSTRAL, SONNET, OPUS],
            },
        }
    ),
    make_settings({**CLOUD, "routing": {"cloud_model": SONNET, "fallback_chain": [SONNET, QWEN]}}),
    make_settings({**CLOUD, "routing": {"cloud_model": OPUS, "review_strategy": "off", "local_context_tokens": 4096}}),
    make_settings({}),
]
SESSION = headers()["x-session-id"]

SMALL_PROMPTS = [
    "You are a title generator. You output ONLY a thread title. Nothing else.",
    "You are summarizing a conversation for continuation by another agent.",
    "You are a helpful AI assistant tasked with summarizing conversations.",
    "Summarize what was done in this conversation. Write like a pull request description.",
]
PATHS = [
    f"{PROJECT}/db/migrations/0003_add_index.sql",
    f"{PROJECT}/src/auth/session.ts",
    "src/billing/invoice.ts",
    f"{PROJECT}/src/components/cart.tsx",
    "README.md",
    "prisma/schema.sql",
]
TAGS = ["schema", "migration", "auth", "ui-mock", "design", "review", "local", "cloud", "perf"]
WORDS = ["fix", "the", "cart", "please", "index", "users.email", "why", "slow", "#layout", "e.g.", "v1.2"]

words = st.lists(st.sampled_from(WORDS), max_size=6)
markers = st.lists(st.sampled_from(["#local", "#cloud", *(f"#tag:{t}" for t in TAGS)]), max_size=1)
paths = st.lists(st.sampled_from(PATHS), max_size=2)


@st.composite
def user_texts(draw: st.DrawFn) -> str:
    parts = draw(words) + draw(markers) + draw(paths)
    return " ".join(draw(st.permutations(parts))) or "hello"


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str]]:
    # About one request in four is small-model work.
    system = draw(st.sampled_from([None] * 12 + SMALL_PROMPTS))
    turn = [("read", {"filePath": p}, read_result(p, ["x"])) for p in draw(paths)]
    extra: dict[str, Any] = {}
    if draw(st.booleans()):
        extra["hybridge_tags"] = draw(st.lists(st.sampled_from(TAGS), max_size=2))
    if draw(st.booleans()):
        extra["max_tokens"] = draw(st.integers(1, 40_000))
    model = draw(st.sampled_from(["auto"] * 8 + ["local", "cloud", "auto:review", "auto:ui-mock", *MODELS]))
    body = agent_body(draw(user_texts()), system=system, turn=turn, model=model, extra=extra)
    hdrs = headers()
    header_tags = draw(st.lists(st.sampled_from(TAGS), max_size=2))
    if header_tags:
        hdrs["x-hybridge-tags"] = ", ".join(header_tags)
    return body, hdrs


@st.composite
def states(draw: st.DrawFn, privacy: bool | None = None) -> RoutingState:
    writer = draw(st.one_of(st.none(), st.sampled_from(MODELS)))
    return RoutingState(
        privacy=draw(st.booleans()) if privacy is None else privacy,
        privacy_escalation=draw(st.sampled_from(["keep-local", "refuse"])),
        budget_exhausted=draw(st.booleans()),
        budget_action=draw(st.sampled_from(["keep-local", "refuse"])),
        cooling=frozenset(draw(st.lists(st.sampled_from(MODELS), max_size=3))),
        local_context_limit=draw(st.one_of(st.none(), st.integers(2048, 262_144))),
        recent_writer={SESSION: writer} if writer else {},
    )


PROPERTY = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def is_small_work(body: dict[str, Any]) -> bool:
    first = body["messages"][0]
    return body["model"] == "local" or (first["role"] == "system" and first["content"] in SMALL_PROMPTS)


def names_missing_provider(model: str, conf: Settings) -> bool:
    """`<provider>/<model>` with a provider these settings lack (`auto:TAG` is never a name)."""
    return "/" in model and not model.startswith("auto:") and model.partition("/")[0] not in conf.providers


def asks_for_a_missing_cloud(request: ChatRequest, state: RoutingState, conf: Settings) -> bool:
    """Model `cloud` with no cloud model set (privacy mode would keep it local, and so does
    small-model work or a `local` tag, whatever the model). `request` has been classified:
    its tags are set."""
    return (
        request.model == "cloud"
        and not conf.routing.cloud_model
        and not state.privacy
        and not request.small_task
        and "local" not in request.tags
    )


def refuses(state: RoutingState) -> bool:
    return (state.privacy and state.privacy_escalation == "refuse") or (
        state.budget_exhausted and state.budget_action == "refuse"
    )


def assert_case_calls_for(
    exc: HybridgeError, body: dict[str, Any], request: ChatRequest, state: RoutingState, conf: Settings
) -> None:
    """The error is one this very case calls for (`body` as the client sent it, `request` as
    decide left it); any other error fails the property, so the properties cannot pass by
    every case raising."""
    if isinstance(exc, ModelNotFound):
        assert names_missing_provider(body["model"], conf), exc.message
    elif isinstance(exc, EscalationRefused):
        assert refuses(state), exc.message
        assert not is_small_work(body), exc.message
        assert "long context" not in exc.message  # an escalation for size alone is never refused
    elif isinstance(exc, NoRoute):
        assert asks_for_a_missing_cloud(request, state, conf), exc.message
    else:
        raise AssertionError(f"unexpected {type(exc).__name__}: {exc.message}") from exc


def assert_plan_was_due(body: dict[str, Any], request: ChatRequest, state: RoutingState, conf: Settings) -> None:
    """A plan came back: no error was due (a model of a provider these settings lack is one)."""
    assert not names_missing_provider(body["model"], conf), body["model"]
    assert not asks_for_a_missing_cloud(request, state, conf), body["model"]


def route_of(settings_: Settings, model_id: str) -> str:
    return "local" if settings_.providers[model_id.partition("/")[0]].is_local else "cloud"


@PROPERTY
@given(req=requests(), state=states(), conf=st.sampled_from(SETTINGS))
def test_plans_are_well_formed_and_respect_state(
    req: tuple[dict[str, Any], dict[str, str]], state: RoutingState, conf: Settings
) -> None:
    body, hdrs = req
    original = copy.deepcopy(body)
    request = chat_request(body, hdrs)
    try:
        plan = decide(request, conf, state)
    except HybridgeError as exc:
        assert_case_calls_for(exc, original, request, state, conf)
        return
    assert_plan_was_due(original, request, state, conf)
    ids = [c.id for c in plan.candidates]
    assert ids and len(ids) == len(set(ids))
    for candidate in plan.candidates:
        assert candidate.reason
        assert candidate.route == route_of(conf, candidate.id)
    # Privacy on (or a spent budget kept local): nothing leaves the machine.
    if state.privacy or state.budget_exhausted:
        assert all(c.route == "local" for c in plan.candidates), ids
    # Small-model work is served locally, first and throughout, unless it cannot fit there.
    if is_small_work(original) and plan.rule != "long-context":
        assert all(c.route == "local" for c in plan.candidates), ids
    if plan.rule == "long-context":
        assert plan.prompt_tokens is not None
        limit = state.local_context_limit or conf.routing.local_context_tokens
        output = min(request.max_tokens or conf.context.default_output_tokens, conf.context.output_reserve)
        assert plan.prompt_tokens + output > limit
    # Models in cooldown never go before one that is not.
    cooling = [c.id in state.cooling for c in plan.candidates]
    assert cooling == sorted(cooling)
    # A review never goes to the session's writer when the review rule chose.
    writer = state.recent_writer.get(SESSION)
    if plan.rule == "review" and writer:
        assert plan.candidates[0].id != writer
    # The client's body is untouched; the forwarded one has no markers and no hybridge_tags.
    assert body == original
    forwarded_user = [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]
    assert find_markers(forwarded_user) == []
    assert "hybridge_tags" not in request.body
    assert request.tags == plan.tags


@PROPERTY
@given(req=requests(), state=states(privacy=True), conf=st.sampled_from(SETTINGS))
def test_privacy_on_means_no_cloud_candidate(
    req: tuple[dict[str, Any], dict[str, str]], state: RoutingState, conf: Settings
) -> None:
    body, hdrs = req
    original = copy.deepcopy(body)
    request = chat_request(body, hdrs)
    try:
        plan = decide(request, conf, state)
    except HybridgeError as exc:
        assert_case_calls_for(exc, original, request, state, conf)
        return
    assert_plan_was_due(original, request, state, conf)
    assert plan.candidates
    assert all(c.route == "local" for c in plan.candidates), [c.id for c in plan.candidates]
    # Work that would have gone to the cloud says it was kept local.
    if plan.kept_local:
        assert plan.candidates[0].reason.startswith("kept local (privacy mode)")


@PROPERTY
@given(req=requests(), state=states(), conf=st.sampled_from(SETTINGS))
def test_decide_is_deterministic(
    req: tuple[dict[str, Any], dict[str, str]], state: RoutingState, conf: Settings
) -> None:
    body, hdrs = req
    outcomes = []
    for _ in range(2):
        try:
            request = chat_request(copy.deepcopy(body), dict(hdrs))
            plan = decide(request, conf, state)
            outcomes.append((plan.rule, [(c.id, c.reason) for c in plan.candidates], plan.tags))
        except HybridgeError as exc:
            assert_case_calls_for(exc, body, request, state, conf)
            outcomes.append((type(exc).__name__, exc.message, None))  # type: ignore[arg-type]
    assert outcomes[0] == outcomes[1]


@PROPERTY
@given(
    system=st.sampled_from(SMALL_PROMPTS),
    text=user_texts(),
    state=states(),
    conf=st.sampled_from(SETTINGS),
    model=st.sampled_from(["auto", "local", "cloud", SONNET, OPUS]),
)
def test_small_model_work_goes_local_first(
    system: str, text: str, state: RoutingState, conf: Settings, model: str
) -> None:
    assume("/" not in model or model.partition("/")[0] in conf.providers)
    request = chat_request(agent_body(text, system=system, model=model))
    plan = decide(request, conf, state)
    if plan.rule == "long-context":  # too long for the local model: escalated for its size
        assert plan.prompt_tokens is not None
        limit = state.local_context_limit or conf.routing.local_context_tokens
        output = min(request.max_tokens or conf.context.default_output_tokens, conf.context.output_reserve)
        assert plan.prompt_tokens + output > limit
        if state.privacy or state.budget_exhausted:  # escalation forbidden: kept local
            assert all(c.route == "local" for c in plan.candidates)
        return
    assert plan.rule == "small-model"
    assert plan.candidates[0].route == "local"
    assert all(c.route == "local" for c in plan.candidates)


@PROPERTY
@given(pieces=st.lists(st.sampled_from([*"ab #:,.\n-", "#cloud", "#local", "#tag:auth", "#tag:a,b"]), max_size=30))
def test_stripping_leaves_no_marker(pieces: list[str]) -> None:
    text = "".join(pieces)
    stripped = strip_markers(text)
    assert find_markers(stripped) == []
    if not find_markers(text):
        assert stripped == text


segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)


@PROPERTY
@given(
    head=st.lists(segment, max_size=4),
    tail=st.lists(segment, max_size=3),
    name=segment,
    before=st.sampled_from(["", "see ", "`", "(", '{"filePath": "', "<path>"]),
    after=st.sampled_from(["", " now", "`", ")", '"}', ".", ":12"]),
    windows=st.booleans(),
)
def test_a_path_under_a_convention_is_found_wherever_it_is_written(
    head: list[str], tail: list[str], name: str, before: str, after: str, windows: bool
) -> None:
    path = "/".join([*head, "migrations", *tail, name + ".sql"])
    written = path.replace("/", "\\\\") if windows else path
    conventions = compile_conventions({"**/migrations/**": "migration", "**/*.sql": "schema"})
    matches = match_texts(conventions, [before + written + after])
    assert {m.tag for m in matches} == {"migration", "schema"}
    assert all(m.path.endswith(name + ".sql") for m in matches)


@pytest.mark.parametrize("conf", SETTINGS)
def test_rules_are_compiled_once_per_settings(conf: Settings) -> None:
    assert rules_for(conf) is rules_for(conf)


@PROPERTY
@given(req=requests(), state=states(), conf=st.sampled_from(SETTINGS), turns=st.integers(0, 12))
def test_the_body_size_shortcut_never_changes_a_plan(
    req: tuple[dict[str, Any], dict[str, str]], state: RoutingState, conf: Settings, turns: int
) -> None:
    """With content-length (as the server passes it) routing may skip the full estimate; same plan."""
    body, hdrs = req
    body["messages"][1:1] = [m for n in range(turns) for m in history_turn(n, 120)]
    sized = {**hdrs, "content-length": str(len(orjson.dumps(body)))}
    outcomes = []
    for headers_ in (hdrs, sized):
        try:
            request = chat_request(copy.deepcopy(body), headers_)
            plan = decide(request, conf, state)
            outcomes.append([(c.id, c.reason) for c in plan.candidates])
        except HybridgeError as exc:
            assert_case_calls_for(exc, body, request, state, conf)
            outcomes.append([(type(exc).__name__, exc.message)])
    assert outcomes[0] == outcomes[1]
