"""Replay sessions for tests/test_routing_replay.py: OpenCode and Claude Code requests, each
labelled with the route it should take, built from the recorded bodies
(tests/support/opencode_bodies.py, tests/support/claude_code_bodies.py).

Labels: `small` (small-model work, local), `local` (an ordinary turn, local), `heavy`
(flagged by a path the agent acts on), `cloud` (`#cloud`), `review` (a review signal),
`long-context` (small work too long for the local model). Ordinary sessions are full of
paths the agent is *not* acting on: CLAUDE.md naming src/auth/, a listing showing
billing/plans.tsx, grep output naming server/auth/login.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support import claude_code_bodies as cc
from tests.support import opencode_bodies as oc

JSON = dict[str, Any]
FLAGGED = frozenset({"heavy", "cloud", "review"})
LISTING = "README.md\nbilling/\nbilling/plans.tsx\ndb/migrations/0003_add_index.sql\nsrc/\nsrc/auth/session.ts\n"
GREP = (
    "server/auth/login.py:12:    log.info('login for %s', user)\n"
    "server/http/handler.py:40:    log.debug('request %s', path)\n"
)


@dataclass
class ReplayRequest:
    client: str  # "opencode" | "claude-code"
    session: str
    label: str
    path: str  # endpoint
    body: JSON
    headers: dict[str, str]
    # Heavy-directory paths that appear only in tool results or context blocks.
    decoy_paths: bool = False

    @property
    def flagged(self) -> bool:
        return self.label in FLAGGED


# A step: (tool calls [(name, args, result)], label from this step on, has decoys)
Step = tuple[list[tuple[str, JSON, str]], str, bool]


def _oc_tasks(n: int) -> list[tuple[str, str, str, list[Step], str | None]]:
    """(name, instruction, first label, steps, system) for OpenCode sessions, variant n."""
    p = oc.PROJECT
    readme = f"{p}/README.md"
    handler = f"{p}/server/http/handler_{n}.py"
    button = f"{p}/src/components/button_{n}.tsx"
    invoice = f"{p}/src/billing/invoice_{n}.ts"
    reviewer = (
        "You are a code reviewer. Review the changes the user points you at and report bugs, risks and "
        "missing tests. Do not edit files.\n\n" + oc.system_prompt()
    )
    return [
        (
            "typo",
            f"Fix the typo in README.md (variant {n})",
            "local",
            [
                ([("bash", {"command": "ls -R"}, LISTING)], "local", True),
                ([("grep", {"pattern": "log"}, GREP)], "local", True),
                ([("read", {"filePath": readme}, oc.read_result(readme, ["# Shop", "A smal shop."]))], "local", False),
                (
                    [
                        (
                            "edit",
                            {"filePath": readme, "oldString": "smal", "newString": "small"},
                            "Edit applied successfully.",
                        )
                    ],
                    "local",
                    False,
                ),
            ],
            None,
        ),
        (
            "logging",
            f"Add debug logging to the request handler {n}",
            "local",
            [
                ([("grep", {"pattern": "log\\.", "include": "*.py"}, GREP)], "local", True),
                (
                    [
                        (
                            "read",
                            {"filePath": handler},
                            oc.read_result(handler, ["def handle(path):", "    return path"]),
                        )
                    ],
                    "local",
                    False,
                ),
                (
                    [
                        (
                            "edit",
                            {"filePath": handler, "oldString": "return", "newString": "log.debug(path)\n    return"},
                            "Edit applied successfully.",
                        )
                    ],
                    "local",
                    False,
                ),
            ],
            None,
        ),
        (
            "props",
            f"Rename the Button props in button_{n}.tsx",
            "local",
            [
                ([("glob", {"pattern": "**/*"}, LISTING)], "local", True),
                (
                    [("read", {"filePath": button}, oc.read_result(button, ["export const B = (p) => <b>{p.x}</b>;"]))],
                    "local",
                    False,
                ),
                (
                    [
                        (
                            "edit",
                            {"filePath": button, "oldString": "p.x", "newString": "p.label"},
                            "Edit applied successfully.",
                        )
                    ],
                    "local",
                    False,
                ),
            ],
            None,
        ),
        (
            "session-bug",
            f"Fix the expiry bug in {p}/src/auth/session.ts (variant {n})",
            "heavy",
            [
                ([("read", {"filePath": f"{p}/src/auth/session.ts"}, oc.read_result("s", ["x"]))], "heavy", False),
            ],
            None,
        ),
        (
            "invoice",
            f"Make the failing invoice test {n} pass",
            "local",
            [
                ([("bash", {"command": "npm test"}, "FAIL test/invoice.test.ts\n  expected 10 got 9")], "local", False),
                (
                    [("read", {"filePath": invoice}, oc.read_result(invoice, ["export const total = 9;"]))],
                    "heavy",
                    False,
                ),
                (
                    [
                        (
                            "edit",
                            {"filePath": invoice, "oldString": "9", "newString": "10"},
                            "Edit applied successfully.",
                        )
                    ],
                    "heavy",
                    False,
                ),
            ],
            None,
        ),
        (
            "tests",
            f"Add unit tests for the cart totals {n}",
            "local",
            [
                ([("glob", {"pattern": "src/cart/**"}, LISTING)], "local", True),
                (
                    [
                        (
                            "read",
                            {"filePath": f"{p}/src/cart/total.ts"},
                            oc.read_result("t", ["export const t = 1;"] * 30),
                        )
                    ],
                    "local",
                    False,
                ),
                (
                    [
                        (
                            "write",
                            {"filePath": f"{p}/test/cart_{n}.test.ts", "content": "test('t', () => {});"},
                            "Wrote file.",
                        )
                    ],
                    "local",
                    False,
                ),
                ([("bash", {"command": "npm test"}, "PASS test/cart.test.ts\n" + GREP)], "local", True),
                ([("todowrite", {"todos": [{"content": "tests", "status": "completed"}]}, "ok")], "local", False),
            ],
            None,
        ),
        ("explain", f"#cloud explain how the checkout flow works (variant {n})", "cloud", [], None),
        (
            "review",
            f"please review this diff (variant {n})",
            "review",
            [
                (
                    [("bash", {"command": "git diff"}, "diff --git a/README.md b/README.md\n-smal\n+small")],
                    "review",
                    False,
                ),
            ],
            reviewer,
        ),
    ]


def _oc_messages(system: str | None, history: int, instruction: str, steps: list[Step]) -> list[JSON]:
    body = oc.agent_body(instruction, history=history, system=system)
    messages: list[JSON] = body["messages"]
    for i, (calls, _, _) in enumerate(steps):
        messages += oc.step(calls, start=9000 + 10 * i)
    return messages


def _included(first_label: str, steps: list[Step], n: int) -> bool:
    """Flagged work is the minority of real sessions: heavy ones in every other variant,
    reviews and #cloud in every third."""
    labels = {first_label, *(label for _, label, _ in steps)}
    if labels & {"review", "cloud"}:
        return n % 3 == 0
    if "heavy" in labels:
        return n % 2 == 0
    return True


def opencode_requests(variants: int = 6) -> list[ReplayRequest]:
    out: list[ReplayRequest] = []
    for n in range(variants):
        history = n * 2
        for name, instruction, first_label, steps, system in _oc_tasks(n):
            if not _included(first_label, steps, n):
                continue
            session = f"oc-{name}-{n}"
            hdrs = {**oc.headers(), "x-session-id": session, "x-session-affinity": session}
            out.append(
                ReplayRequest("opencode", session, "small", "/v1/chat/completions", oc.title_body(instruction), hdrs)
            )
            for k in range(len(steps) + 1):
                label = steps[k - 1][1] if k else first_label
                body = oc.agent_body(instruction, history=history, system=system)
                body["messages"] = _oc_messages(system, history, instruction, steps[:k])
                body["stream"] = False
                body.pop("stream_options", None)
                decoys = any(d for _, _, d in steps[:k])
                out.append(ReplayRequest("opencode", session, label, "/v1/chat/completions", body, hdrs, decoys))
        # Compaction of the session so far: fits, and one that does not.
        compaction = "You are a helpful AI assistant tasked with summarizing conversations."
        sizes = [("small", 3, 40)] + ([("long-context", 22, 90)] if n == 0 else [])
        for label, turns, lines in sizes:
            body = oc.compaction_body(compaction, history=turns + n)
            body["messages"][1:-1] = [m for t in range(turns + n) for m in oc.history_turn(t, lines)]
            body["stream"] = False
            out.append(
                ReplayRequest("opencode", f"oc-compaction-{n}", label, "/v1/chat/completions", body, oc.headers())
            )
    return out


def _cc_tasks(n: int) -> list[tuple[str, list[JSON] | str, str, list[Step]]]:
    p = cc.PROJECT
    readme = f"{p}/README.md"
    handler = f"{p}/server/http/handler_{n}.py"
    login = f"{p}/src/auth/login_{n}.py"
    migration = f"{p}/db/migrations/00{n}4_add_plan.sql"
    review = [
        {
            "type": "text",
            "text": "<command-message>review is running…</command-message>\n"
            "<command-name>/review</command-name>\n<command-args>12</command-args>",
        }
    ]
    return [
        (
            "typo",
            f"Fix the typo in README.md (variant {n})",
            "local",
            [
                ([("Bash", {"command": "ls -R", "description": "List files"}, LISTING)], "local", True),
                ([("Bash", {"command": "grep -rn log .", "description": "Find logging"}, GREP)], "local", True),
                ([("Read", {"file_path": readme}, cc.read_result(["# Shop", "A smal shop."]))], "local", False),
                (
                    [
                        (
                            "Edit",
                            {"file_path": readme, "old_string": "smal", "new_string": "small"},
                            f"The file {readme} has been updated successfully.",
                        )
                    ],
                    "local",
                    False,
                ),
            ],
        ),
        (
            "logging",
            f"Add debug logging to the request handler {n}",
            "local",
            [
                ([("Grep", {"pattern": "log\\.", "glob": "*.py"}, GREP)], "local", True),
                (
                    [("Read", {"file_path": handler}, cc.read_result(["def handle(path):", "    return path"]))],
                    "local",
                    False,
                ),
                (
                    [
                        (
                            "Edit",
                            {"file_path": handler, "old_string": "return", "new_string": "log.debug(path)\n    return"},
                            f"The file {handler} has been updated successfully.",
                        )
                    ],
                    "local",
                    False,
                ),
            ],
        ),
        (
            "login",
            f"Fix the login redirect in src/auth/login_{n}.py",
            "heavy",
            [
                ([("Read", {"file_path": login}, cc.read_result(["def login(): pass"]))], "heavy", False),
                (
                    [
                        (
                            "Edit",
                            {"file_path": login, "old_string": "pass", "new_string": "return redirect('/')"},
                            f"The file {login} has been updated successfully.",
                        )
                    ],
                    "heavy",
                    False,
                ),
            ],
        ),
        (
            "plans",
            f"Add a 'team' plan (variant {n})",
            "local",
            [
                (
                    [("Bash", {"command": "ls db", "description": "List db"}, "migrations/\nschema.md\n")],
                    "local",
                    False,
                ),
                (
                    [
                        (
                            "Write",
                            {"file_path": migration, "content": "INSERT INTO plans VALUES ('team');"},
                            f"File created successfully at: {migration}",
                        )
                    ],
                    "heavy",
                    False,
                ),
            ],
        ),
        (
            "review",
            review,
            "review",
            [
                (
                    [
                        (
                            "Bash",
                            {"command": "git diff HEAD~1", "description": "Show diff"},
                            "diff --git a/x b/x\n-a\n+b",
                        )
                    ],
                    "review",
                    False,
                ),
            ],
        ),
        (
            "tests",
            f"Add unit tests for the cart totals {n}",
            "local",
            [
                ([("Glob", {"pattern": "src/cart/**"}, LISTING)], "local", True),
                (
                    [("Read", {"file_path": f"{p}/src/cart/total.ts"}, cc.read_result(["export const t = 1;"] * 30))],
                    "local",
                    False,
                ),
                (
                    [
                        (
                            "Write",
                            {"file_path": f"{p}/test/cart_{n}.test.ts", "content": "test('t', () => {});"},
                            "File created successfully",
                        )
                    ],
                    "local",
                    False,
                ),
                (
                    [("Bash", {"command": "npm test", "description": "Run tests"}, "PASS test/cart.test.ts\n" + GREP)],
                    "local",
                    True,
                ),
            ],
        ),
        ("cloud", f"#cloud design the caching layer (variant {n})", "cloud", []),
    ]


def claude_code_requests(variants: int = 6) -> list[ReplayRequest]:
    out: list[ReplayRequest] = []
    for n in range(variants):
        history: list[JSON] = []
        if n:
            # Earlier turns of the same conversation: the first carries the context blocks.
            history = [
                {
                    "role": "user",
                    "content": [*cc.context_blocks(), {"type": "text", "text": "What does this repo do?"}],
                },
                {"role": "assistant", "content": [{"type": "text", "text": "A small shop: " + "details " * 200 * n}]},
            ]
        for name, prompt, first_label, steps in _cc_tasks(n):
            if not _included(first_label, steps, n):
                continue
            session = f"cc-{name}-{n}"
            hdrs = {**cc.headers(), "x-claude-code-session-id": session}
            text = prompt if isinstance(prompt, str) else "review"
            out.append(ReplayRequest("claude-code", session, "small", "/v1/messages", cc.small_body(text), hdrs))
            for k in range(len(steps) + 1):
                label = steps[k - 1][1] if k else first_label
                built = [cc.tool_step(calls, 100 * i, reminder=i % 2 == 0) for i, (calls, _, _) in enumerate(steps[:k])]
                body = cc.turn_body(prompt, steps=built, history=history)
                body["stream"] = False
                body["max_tokens"] = 32000  # what Claude Code 2.1.330 asks on an ordinary turn
                out.append(ReplayRequest("claude-code", session, label, "/v1/messages", body, hdrs, True))
    return out


def all_requests() -> list[ReplayRequest]:
    return opencode_requests() + claude_code_requests()


def size_tokens(request: ReplayRequest) -> int:
    """Token weight of a request: its JSON body's characters / 3 (the router's own estimate
    rule, tokens.py; an estimate, the same for every route)."""
    return len(json.dumps(request.body)) // 3
