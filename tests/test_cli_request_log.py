"""`hybridge serve` logs one line per request at the normal level (no -v), never the prompt."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.support.cli import HybridgeProcess
from tests.support.servers import free_port


def test_one_line_per_request_without_prompt_text(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    # Ollama is down (nothing listens there): the request fails, and is logged all the same.
    config.write_text(f'[providers.ollama]\nbase_url = "http://127.0.0.1:{free_port()}"\n')
    env = {**os.environ, "HOME": str(tmp_path)}
    with HybridgeProcess(config, env=env) as proc:
        body = {"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "SECRET-PROMPT-TEXT"}]}
        reply = httpx.post(
            f"{proc.base_url}/chat/completions", json=body, headers={"user-agent": "curl/8.0"}, timeout=30
        )
        assert reply.status_code in (502, 503)
        _, _, err = proc.stop()
    lines = [line for line in err.splitlines() if " curl/8.0 " in line]
    assert len(lines) == 1, err
    line = lines[0]
    assert " local ollama/qwen3:30b-a3b " in line and "tokens=0→0" in line and "ms error" in line
    assert "reason=" in line and "SECRET-PROMPT-TEXT" not in err
