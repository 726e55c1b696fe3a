"""Ollama's cloud models: recognise them, warn about a cloud-enabled Ollama, start one without.

Ollama serves cloud models (`gpt-oss:120b-cloud`, `qwen3-coder:480b-cloud`, ...) through
its local endpoint and relays the prompt to ollama.com, so a loopback connection is no
proof that a prompt stays here. Such models are named `...-cloud` / `...:cloud` and appear in
`/api/tags` with `remote_model` / `remote_host` fields. There is no API that reports a
running Ollama's cloud setting; `OLLAMA_NO_CLOUD=1` in its environment (or
`disable_ollama_cloud` in `~/.ollama/server.json`) switches the feature off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

NO_CLOUD_ENV = "OLLAMA_NO_CLOUD"


def is_cloud_model_name(name: str) -> bool:
    """`gpt-oss:120b-cloud`, `kimi-k2:1t-cloud`, `gemma4:cloud` (a provider prefix is ignored)."""
    bare = name.rsplit("/", 1)[-1].strip().lower().removesuffix(":latest")
    return bare.endswith(("-cloud", ":cloud"))


def is_remote_entry(entry: Mapping[str, Any]) -> bool:
    """An `/api/tags` entry served by a remote host."""
    return bool(entry.get("remote_model") or entry.get("remote_host"))


def cloud_models_in_tags(tags: Mapping[str, Any]) -> list[str]:
    """Names of the cloud models in an `/api/tags` answer."""
    names = []
    for entry in tags.get("models") or []:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("model") or entry.get("name") or "")
        if name and (is_remote_entry(entry) or is_cloud_model_name(name)):
            names.append(name)
    return names


def server_json_disables_cloud(home: Path | None = None) -> bool:
    """`{"disable_ollama_cloud": true}` in `~/.ollama/server.json`."""
    path = (home or Path.home()) / ".ollama" / "server.json"
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("disable_ollama_cloud") is True


@dataclass(frozen=True, slots=True)
class OllamaCloudCheck:
    """What `hybridge privacy status` says about the running Ollama's cloud features."""

    cloud_models: tuple[str, ...]
    disabled_by_config: bool

    @property
    def warning(self) -> str | None:
        if self.disabled_by_config or not self.cloud_models:
            return None
        listed = ", ".join(self.cloud_models[:5]) + (" ..." if len(self.cloud_models) > 5 else "")
        return (
            f"the running Ollama has cloud models ({listed}), so its cloud features are on; "
            f"Hybridge refuses them in privacy mode, but other apps can still use them. "
            f"Restart Ollama with {NO_CLOUD_ENV}=1 to switch them off."
        )


def check_tags(tags: Mapping[str, Any], home: Path | None = None) -> OllamaCloudCheck:
    return OllamaCloudCheck(tuple(cloud_models_in_tags(tags)), server_json_disables_cloud(home))


def ollama_env(no_cloud: bool, base: Mapping[str, str] | None = None, host: str | None = None) -> dict[str, str]:
    """The environment to start `ollama serve` in: cloud off when asked, bound where asked."""
    env = dict(os.environ if base is None else base)
    if no_cloud:
        env[NO_CLOUD_ENV] = "1"
    if host:
        env["OLLAMA_HOST"] = host
    return env


def start_ollama(
    *,
    no_cloud: bool,
    host: str | None = None,
    executable: str | None = None,
    log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `ollama serve` detached from us (the tray's "Start Ollama").

    In privacy mode pass `no_cloud=True`: Ollama then refuses its cloud models itself.
    Raises FileNotFoundError when no `ollama` binary is installed.
    """
    binary = executable or shutil.which("ollama")
    if not binary:
        raise FileNotFoundError("ollama is not installed (https://ollama.com/download)")
    out: Any = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")
    try:
        return subprocess.Popen(
            [binary, "serve"],
            env=ollama_env(no_cloud, host=host),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if log_path is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log_path is not None:
            out.close()


def model_key(name: str) -> str:
    """Ollama's own spelling of a model name: no tag means `:latest`."""
    bare = name.strip()
    return bare if ":" in bare.rsplit("/", 1)[-1] else f"{bare}:latest"


# Ollama answers /api/show of a remote model with 403 and this prefix when its cloud is off
# (server/routes.go GetModelInfo, internal/cloud/policy.go DisabledMessagePrefix).
CLOUD_DISABLED_PREFIX = "ollama cloud is disabled"


def show_says_remote(status: int, body: Any) -> bool | None:
    """What one `/api/show` answer says: True remote, False here, None cannot tell.

    A 404 is a model Ollama does not have, so it relays nothing (the request then fails).
    """
    if status == 404:
        return False
    if status == 403 and isinstance(body, dict) and str(body.get("error", "")).startswith(CLOUD_DISABLED_PREFIX):
        return True
    if status != 200 or not isinstance(body, dict):
        return None
    return is_remote_entry(body)


@dataclass(frozen=True, slots=True)
class CloudSwitch:
    """Ollama's own cloud switch from `GET /api/status` (recent versions; server/routes.go StatusHandler)."""

    disabled: bool
    source: str  # none | env | config | both


def parse_status(status: int, body: Any) -> CloudSwitch | None:
    """`{"cloud": {"disabled": bool, "source": str}}`; None where the version has no /api/status."""
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("cloud"), dict):
        return None
    cloud = body["cloud"]
    if not isinstance(cloud.get("disabled"), bool):
        return None
    return CloudSwitch(disabled=cloud["disabled"], source=str(cloud.get("source") or "none"))


def describe_switch(switch: CloudSwitch | None) -> str:
    if switch is None:
        return "this Ollama does not report its cloud switch (no /api/status)"
    if switch.disabled:
        return f"Ollama's cloud is off (set by {switch.source})"
    return "Ollama's cloud is on: its cloud models run on ollama.com"
