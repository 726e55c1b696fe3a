"""Eight concurrent agent sessions through Hybridge: one backend against a pool of two.

(a) one backend: one Ollama test engine with the model loaded (a laptop that has run it),
    configured as today, a single provider with no pool;
(b) two backends: that engine plus a second one that has the model installed but not
    loaded (a workstation just added on the LAN), in a pool (`routing.pools`).

The engines are tests/support/fake_ollama.py: Ollama's API and scheduler in front of real
llama-server runners (Gemma 3 270M), one request at a time per runner as Ollama runs by
default, each runner on `--threads` cores (so two backends have twice the compute, as two
machines would). Each session sends `--turns` turns, its history growing as an agent's
does (its own previous answers included), all sessions at once.

Reported side by side: total wall time, model loads (llama-server restarts, as Ollama's
`load_duration`), requests each backend served, and the prompt tokens the runners really
evaluated (llama-server's `timings.prompt_n`: a session kept on one backend reuses its KV
prefix cache). Then the ratios two / one. No target is asserted: figures depend on the
machine and its load. Run: `.venv/bin/python -m bench.bench_backends`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from router_core.service import RouterService
from tests.support.fake_ollama import FakeModel, FakeOllama
from tests.support.servers import ThreadedServer, make_settings, run_hybridge

MODEL = "gemma3:270m"
SYSTEM = (
    "You are a coding agent working in a Python repository. Read the files you are shown, "
    "answer with the change to make and why, and keep each answer short. "
)


@dataclass
class Figures:
    mode: str
    backends: int
    sessions: int
    turns: int
    wall_s: float
    loads: int
    served: dict[str, int]
    evaluated_prompt_tokens: int
    errors: int


@contextmanager
def engines(count: int, threads: int) -> Iterator[list[tuple[str, FakeOllama, ThreadedServer]]]:
    """`count` engines; the first has the model loaded, the others only installed."""
    with ExitStack() as stack:
        out = []
        for i in range(count):
            model = FakeModel(MODEL, capabilities=["completion", "tools"], loaded_vram=0 if i == 0 else None)
            fake = FakeOllama(models=[model], threads=threads)
            server = ThreadedServer(fake.app).start()
            stack.callback(fake.close)
            stack.callback(server.stop)
            out.append((f"box{i + 1}", fake, server))
        yield out


def settings_for(boxes: list[tuple[str, FakeOllama, ThreadedServer]], ledger: Path) -> Any:
    providers = {name: {"kind": "ollama", "base_url": server.url} for name, _, server in boxes}
    routing: dict[str, Any] = {"local_model": f"box1/{MODEL}"}
    if len(boxes) > 1:
        routing["pools"] = {"gemma": [f"{name}/{MODEL}" for name, _, _ in boxes]}
    return make_settings(
        {
            "routing": routing,
            "providers": providers,
            "inventory": {"backends_poll_s": 1.0},
            "ledger": {"path": str(ledger)},
        }
    )


def session(
    service: RouterService, sid: int, turns: int, answer_tokens: int, served: list[str], errors: list[str]
) -> None:
    """One agent session: `turns` requests in a row, each carrying the whole history so far."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    url = f"{service.status().base_url}/chat/completions"
    with httpx.Client(timeout=600) as client:
        for turn in range(turns):
            messages.append({"role": "user", "content": f"Session {sid}, step {turn}: tidy up module_{sid}_{turn}.py."})
            body = {"model": "local", "max_tokens": answer_tokens, "temperature": 0, "messages": messages}
            response = client.post(url, json=body, headers={"x-session-id": f"agent-{sid}"})
            if response.status_code != 200:
                errors.append(response.text[:200])
                return
            served.append(response.headers["x-hybridge-model"].partition("/")[0])
            answer = response.json()["choices"][0]["message"].get("content") or ""
            messages.append({"role": "assistant", "content": answer})


def run(count: int, args: argparse.Namespace) -> Figures:
    with engines(count, args.threads) as boxes, tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(boxes, Path(tmp) / "ledger.sqlite3")
        with run_hybridge(settings) as service:
            if count > 1:
                service.poll_backends()
            served: list[str] = []
            errors: list[str] = []
            threads = [
                threading.Thread(target=session, args=(service, i, args.turns, args.answer_tokens, served, errors))
                for i in range(args.sessions)
            ]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
        return Figures(
            mode="pool of two" if count > 1 else "one backend",
            backends=count,
            sessions=args.sessions,
            turns=args.turns,
            wall_s=round(wall, 2),
            loads=sum(len(fake.state.loads) for _, fake, _ in boxes),
            served={name: served.count(name) for name, _, _ in boxes},
            evaluated_prompt_tokens=sum(fake.state.evaluated_tokens for _, fake, _ in boxes),
            errors=len(errors),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--turns", type=int, default=6, help="turns per session")
    parser.add_argument("--answer-tokens", type=int, default=32, help="max_tokens of each answer")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per llama-server runner")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    one = run(1, args)
    two = run(2, args)
    rows = [("mode", one.mode, two.mode)]
    rows += [
        ("backends", str(one.backends), str(two.backends)),
        ("sessions x turns", f"{one.sessions} x {one.turns}", f"{two.sessions} x {two.turns}"),
        ("total wall time (s)", f"{one.wall_s:.2f}", f"{two.wall_s:.2f}"),
        ("model loads", str(one.loads), str(two.loads)),
        ("requests per backend", json.dumps(one.served), json.dumps(two.served)),
        ("prompt tokens evaluated", f"{one.evaluated_prompt_tokens:,}", f"{two.evaluated_prompt_tokens:,}"),
        ("errors", str(one.errors), str(two.errors)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\ntime two / one: {two.wall_s / one.wall_s:.2f}x")
    if one.evaluated_prompt_tokens:
        print(f"prompt tokens evaluated two / one: {two.evaluated_prompt_tokens / one.evaluated_prompt_tokens:.2f}x")
    print(f"loads: {one.loads} with one backend, {two.loads} with two")
    if args.json:
        print(json.dumps({"one": asdict(one), "two": asdict(two)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
