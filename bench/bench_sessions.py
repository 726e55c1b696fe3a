"""Agent sessions against the Ollama test engine: direct with one well-chosen num_ctx vs through Hybridge.

Two sessions, built from recorded bodies:

- OpenCode, 30 turns: the recorded agent turn (its real ~10k-token system prompt and ten
  tools, tests/fixtures/opencode/agent_turn.json) with the history growing each turn
  (tests/support/opencode_bodies.py), and the recorded title request at turns 1, 11, 21;
- Claude Code, 15 turns: the shape Claude Code 2.1.330 sent (tests/test_claude_code_request.py:
  system blocks, `max_tokens` 32000, `thinking`, the environment `system` message), its
  system text and tools taken from the OpenCode recording (Claude Code's own prompt was not
  recorded), each main turn followed by a small-model ("haiku") request with a short prompt.

Each session runs twice on a fresh engine (tests/support/fake_ollama.py: real llama-server
runners, reloaded when runner options change, llama-server's own prefix cache):
(a) direct: the same messages as Ollama's own OpenAI layer makes them, to `/api/chat` with
one `num_ctx` for everything (the model's 32,768: what a well-configured Ollama runs with,
OLLAMA_CONTEXT_LENGTH set once); (b) through Hybridge (`/v1/chat/completions` and
`/v1/messages`), which picks the context itself. Answers are kept to a few tokens
(`max_tokens`), the same in both, so the figures are about prompts and loads.

Reported per session and mode: model loads (after the first), prompt tokens the runner
really evaluated (llama-server's `timings.prompt_n`, summed), and total wall time, with the
ratios Hybridge / direct. Run: `.venv/bin/python -m bench.bench_sessions --rounds 2`; the
figures are in docs/sessions.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from router_core.providers.ollama_translate import to_ollama_messages
from router_core.server.anthropic_request import parse_messages_request
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.opencode_bodies import agent_body, headers, recorded, title_body
from tests.support.servers import ThreadedServer, make_settings, run_hybridge
from tests.test_claude_code_request import CLAUDE_CODE_BODY

MODEL = "gemma3:270m"
DIRECT_NUM_CTX = 32768  # the model's own maximum: holds the whole session
ANSWER_TOKENS = 4
JSON = dict[str, Any]
# (api, body, session id) per request: api is "openai" or "anthropic".
Request = tuple[str, JSON, str]


def _trim(body: JSON, system_chars: int, tools: int) -> JSON:
    """The recorded prompt cut down (for slow machines): its system text and tool list shortened."""
    if system_chars and body["messages"] and body["messages"][0]["role"] == "system":
        body["messages"][0]["content"] = body["messages"][0]["content"][:system_chars]
    if body.get("tools") and tools >= 0:
        body["tools"] = body["tools"][:tools] or None
        if body["tools"] is None:
            del body["tools"]
    return body


def opencode_session(turns: int, file_lines: int, system_chars: int = 0, tools: int = -1) -> list[Request]:
    out: list[Request] = []
    for n in range(turns):
        if n % 10 == 0:
            title = title_body(f"Tidy up widget {n}", model="local")
            title["max_tokens"] = ANSWER_TOKENS
            out.append(("openai", title, "oc-title"))
        body = _trim(agent_body(f"Tidy up widget {n} next.", history=n, file_lines=file_lines), system_chars, tools)
        body.update({"max_tokens": ANSWER_TOKENS, "stream": False, "temperature": 0})
        out.append(("openai", body, "oc-main"))
    return out


def _anthropic_tools() -> list[JSON]:
    tools = recorded("agent_turn")[1]["tools"]
    return [
        {
            "name": t["function"]["name"],
            "description": t["function"].get("description", ""),
            "input_schema": t["function"].get("parameters") or {"type": "object"},
        }
        for t in tools
    ]


def claude_code_session(turns: int, file_lines: int, system_chars: int = 0, tools_kept: int = -1) -> list[Request]:
    system_text = recorded("agent_turn")[1]["messages"][0]["content"]
    system_text = system_text[:system_chars] if system_chars else system_text
    tools = _anthropic_tools()
    tools = tools[:tools_kept] if tools_kept >= 0 else tools
    history: list[JSON] = []
    out: list[Request] = []
    listing = "\n".join(f"{i}: export const row{i} = () => <div className='row-{i}' />;" for i in range(file_lines))
    for n in range(turns):
        body = copy.deepcopy(CLAUDE_CODE_BODY)
        body["system"][1]["text"] = system_text
        if tools:
            body["tools"] = tools
        body["stream"] = False
        body["max_tokens"] = ANSWER_TOKENS
        user = {"role": "user", "content": [{"type": "text", "text": f"Look at widget {n} and tidy it.\n{listing}"}]}
        body["messages"] = [*body["messages"], *history, user]
        out.append(("anthropic", body, "cc-main"))
        haiku = {
            "model": "local",
            "max_tokens": ANSWER_TOKENS,
            "stream": False,
            "system": [{"type": "text", "text": "Analyze if this message indicates a new conversation topic."}],
            "messages": [{"role": "user", "content": f"Look at widget {n} and tidy it."}],
        }
        out.append(("anthropic", haiku, "cc-haiku"))
        history += [user, {"role": "assistant", "content": [{"type": "text", "text": f"Widget {n} is tidy now."}]}]
    return out


def direct_body(api: str, body: JSON) -> JSON:
    """What a client pointed straight at Ollama sends: the same messages, one num_ctx."""
    chat = parse_messages_request(body, {}) if api == "anthropic" else None
    messages = chat.messages if chat else body["messages"]
    tools = chat.tools if chat else body.get("tools")
    out: JSON = {
        "model": MODEL,
        "messages": to_ollama_messages(messages),
        "stream": False,
        "options": {"num_ctx": DIRECT_NUM_CTX, "num_predict": ANSWER_TOKENS, "temperature": 0},
    }
    if tools:
        out["tools"] = tools
    return out


@dataclass
class Result:
    session: str
    mode: str
    requests: int
    loads_after_first: int
    prompt_tokens_evaluated: int
    wall_s: float


def _measure(
    engine: FakeOllama, session: str, mode: str, send: Callable[[Request], None], requests: list[Request]
) -> Result:
    engine.close()  # every mode starts with nothing loaded
    loads, evaluated = len(engine.state.loads), engine.state.evaluated_tokens
    started = time.perf_counter()
    for request in requests:
        send(request)
    wall = time.perf_counter() - started
    return Result(
        session,
        mode,
        len(requests),
        max(len(engine.state.loads) - loads - 1, 0),
        engine.state.evaluated_tokens - evaluated,
        round(wall, 2),
    )


@dataclass
class Bench:
    engine: FakeOllama
    url: str

    def direct(self, request: Request) -> None:
        api, body, _ = request
        r = httpx.post(f"{self.url}/api/chat", json=direct_body(api, body), timeout=900)
        r.raise_for_status()

    @staticmethod
    def via(base: str) -> Callable[[Request], None]:
        def send(request: Request) -> None:
            api, body, session = request
            path = "/messages" if api == "anthropic" else "/chat/completions"
            r = httpx.post(f"{base}{path}", json=body, headers=headers(**{"x-session-id": session}), timeout=900)
            if r.status_code != 200 or r.headers.get("x-hybridge-route") != "local":
                raise RuntimeError(f"Hybridge answered {r.status_code} {r.headers.get('x-hybridge-reason')}: {r.text}")

        return send


@dataclass
class Served:
    engine: FakeOllama
    server: ThreadedServer


def serve_engine(threads: int) -> Iterator[Served]:
    engine = FakeOllama(models=[FakeModel(MODEL, capabilities=["completion", "tools"])], threads=threads)
    server = ThreadedServer(engine.app).start()
    try:
        yield Served(engine, server)
    finally:
        server.stop()
        engine.close()


def run(
    turns_oc: int, turns_cc: int, file_lines: int, threads: int, system_chars: int = 0, tools: int = -1, rounds: int = 1
) -> list[Result]:
    sessions = {
        "opencode": opencode_session(turns_oc, file_lines, system_chars, tools),
        "claude-code": claude_code_session(turns_cc, file_lines, system_chars, tools),
    }
    results: list[Result] = []
    served = next(gen := serve_engine(threads))
    try:
        bench = Bench(served.engine, served.server.url)
        settings = make_settings(
            {
                "routing": {"local_model": f"ollama/{MODEL}"},
                "providers": {"ollama": {"kind": "ollama", "base_url": served.server.url}},
            }
        )
        with run_hybridge(settings) as service:
            base = service.status().base_url
            modes: dict[str, Callable[[Request], None]] = {"direct": bench.direct, "hybridge": Bench.via(base)}
            for name, requests in sessions.items():
                for n in range(rounds):
                    # ABBA order: a machine that grows busier or quieter during the run
                    # weighs on both modes alike.
                    order = list(modes) if n % 2 == 0 else list(reversed(modes))
                    for mode in order:
                        results.append(_measure(served.engine, name, mode, modes[mode], requests))
                    print(json.dumps([asdict(r) for r in results[-2:]]), flush=True)
    finally:
        gen.close()
    return results


def report(results: list[Result]) -> str:
    lines = [
        "| session | mode | requests | model loads after the first | prompt tokens evaluated | wall time (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.session} | {r.mode} | {r.requests} | {r.loads_after_first} | "
            f"{r.prompt_tokens_evaluated:,} | {r.wall_s:.2f} |"
        )
    lines.append("")
    for session in dict.fromkeys(r.session for r in results):
        runs = {
            mode: [r for r in results if r.session == session and r.mode == mode] for mode in ("direct", "hybridge")
        }
        d, h = runs["direct"], runs["hybridge"]
        tokens = sum(r.prompt_tokens_evaluated for r in h) / max(sum(r.prompt_tokens_evaluated for r in d), 1)
        time_ratio = statistics.median(r.wall_s for r in h) / statistics.median(r.wall_s for r in d)
        lines.append(
            f"- {session}: prompt tokens Hybridge/direct = {tokens:.3f}, "
            f"time Hybridge/direct = {time_ratio:.3f} (medians of {len(h)} run(s) each, ABBA order), "
            f"loads after the first {max(r.loads_after_first for r in h)} "
            f"(direct {max(r.loads_after_first for r in d)})"
        )
    return "\n".join(lines)


def main() -> None:
    # A stopped run still stops its runners (llama-server processes in their own sessions).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opencode-turns", type=int, default=30)
    parser.add_argument("--claude-code-turns", type=int, default=15)
    parser.add_argument("--file-lines", type=int, default=8, help="lines of each file read in a history turn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--system-chars", type=int, default=0, help="cut the recorded system prompt (0: whole)")
    parser.add_argument("--tools", type=int, default=-1, help="keep this many recorded tools (-1: all)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each session per mode, in ABBA order")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = run(
        args.opencode_turns,
        args.claude_code_turns,
        args.file_lines,
        args.threads,
        args.system_chars,
        args.tools,
        args.rounds,
    )
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
