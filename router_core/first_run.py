"""The first-run checklist: Ollama installed, running, a local model that fits, an agent set
up, optionally a cloud key. One pass of cheap checks, no Qt; the dashboard's checklist panel,
`hybridge serve`'s startup block and `hybridge doctor` all print these same results.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from router_core.inventory.advice import CODING_MODELS, suggest_models
from router_core.inventory.hardware.info import HardwareInfo
from router_core.keys import find_key, how_to_set
from router_core.presets import PRESETS
from router_core.settings import Settings, ollama_base_url

State = Literal["ok", "todo", "optional"]
STEPS = ("installed", "running", "model", "agent", "cloud_key")
INSTALL_URL = "https://ollama.com/download"


@dataclass(frozen=True, slots=True)
class Check:
    step: str  # one of STEPS
    title: str
    state: State
    found: str  # what the check saw, in a sentence
    fix: str = ""  # what to do next ("" when nothing)


@dataclass(frozen=True, slots=True)
class FirstRun:
    checks: tuple[Check, ...]
    ollama_url: str
    recommended: str  # the model to pull ("" when the configured one is installed)

    @property
    def complete(self) -> bool:
        return all(c.state != "todo" for c in self.checks)

    def check(self, step: str) -> Check:
        return next(c for c in self.checks if c.step == step)


def local_ollama(settings: Settings) -> tuple[str, str]:
    """(the local model's Ollama name, its Ollama address); ("", "") when the local model is not on Ollama."""
    provider, _, model = settings.routing.local_model.partition("/")
    conf = settings.providers.get(provider)
    if conf is None or conf.kind != "ollama":
        return "", ""
    return model, ollama_base_url(conf.base_url)


def recommend(hardware: HardwareInfo | None, installed: set[str]) -> str:
    """The model to pull: the best that fits (doctor's list, router_core/inventory/advice.py),
    else the smallest coding model, which runs anywhere."""
    if hardware is not None:
        suggestions = suggest_models(hardware, installed, limit=1)
        if suggestions:
            return suggestions[0].model.pull
    return CODING_MODELS[-1].pull


def agent_configs(env: Mapping[str, str] | None = None) -> list[str]:
    """Agents whose own config points at Hybridge, read from their files (OpenCode's
    opencode.json(c) `provider.hybridge`; Claude Code's settings.json ANTHROPIC_BASE_URL)."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    found: list[str] = []
    for name in ("opencode.jsonc", "opencode.json"):
        path = config / "opencode" / name
        if _mentions_hybridge(path, ('"hybridge"',)):
            found.append(f"OpenCode ({path})")
            break
    claude = home / ".claude" / "settings.json"
    if _mentions_hybridge(claude, (":11435",)):
        found.append(f"Claude Code ({claude})")
    return found


def _mentions_hybridge(path: Path, needles: tuple[str, ...]) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return False
    return any(n in text for n in needles)


def _get_json(client: httpx.Client, url: str) -> dict[str, object] | None:
    try:
        response = client.get(url)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def run_checks(
    settings: Settings,
    *,
    hardware: HardwareInfo | None = None,
    which: Callable[[str], str | None] = shutil.which,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 2.0,
) -> FirstRun:
    model, url = local_ollama(settings)
    url = url or ollama_base_url("", dict(env) if env is not None else None)
    checks: list[Check] = []
    with httpx.Client(timeout=timeout_s, trust_env=False) as client:
        version = _get_json(client, f"{url}/api/version")
        tags = _get_json(client, f"{url}/api/tags") if version is not None else None
    binary = which("ollama")
    if binary:
        checks.append(Check("installed", "Ollama installed", "ok", f"ollama at {binary}"))
    elif version is not None:
        checks.append(Check("installed", "Ollama installed", "ok", f"an Ollama answers at {url} (no `ollama` on PATH)"))
    else:
        checks.append(
            Check("installed", "Ollama installed", "todo", "no `ollama` on PATH", f"install it from {INSTALL_URL}")
        )
    privacy = settings.privacy.enabled
    if version is not None:
        checks.append(Check("running", "Ollama running", "ok", f"Ollama {version.get('version', '?')} at {url}"))
    else:
        start = "OLLAMA_NO_CLOUD=1 ollama serve" if privacy else "ollama serve"
        when = "start it" if binary else "once installed, start it"
        fix = f"{when}: `{start}` (or Start Ollama)"
        checks.append(Check("running", "Ollama running", "todo", f"nothing answers at {url}", fix))
    raw = tags.get("models") if tags else None
    installed = {str(m.get("name")) for m in raw if isinstance(m, dict)} if isinstance(raw, list) else set()
    have = bool(model) and (model in installed or f"{model}:latest" in installed)
    pick = "" if have else recommend(hardware, installed)
    if have:
        checks.append(Check("model", "Local model", "ok", f"{model} is installed and is routing.local_model"))
    elif version is None:
        checks.append(Check("model", "Local model", "todo", "unknown until Ollama runs", f"then `ollama pull {pick}`"))
    else:
        what = f"routing.local_model {model or settings.routing.local_model} is not installed"
        checks.append(
            Check("model", "Local model", "todo", what, f"`ollama pull {pick}` (it fits this machine), or Pull here")
        )
    agents = agent_configs(env)
    if agents:
        checks.append(Check("agent", "Agent set up", "ok", ", ".join(agents) + " points at Hybridge"))
    else:
        checks.append(
            Check("agent", "Agent set up", "todo", "no agent config points at Hybridge", "`hybridge setup opencode`")
        )
    checks.append(_cloud_check(settings))
    return FirstRun(tuple(checks), url, pick)


def _cloud_check(settings: Settings) -> Check:
    title = "Cloud key (optional)"
    ref = settings.routing.cloud_model
    if not ref:
        return Check("cloud_key", title, "optional", "no cloud model: every request stays local")
    provider = ref.partition("/")[0]
    conf = settings.providers.get(provider)
    preset = PRESETS.get(conf.preset or provider) if conf is not None else PRESETS.get(provider)
    env_var = preset.key_env if preset is not None else ""
    key_ref = conf.api_key if conf is not None else ""
    key, source = find_key(provider, key_ref, env_var)
    if key:
        return Check("cloud_key", title, "ok", f"{provider}: a key is set ({source.partition(':')[0] or 'env'})")
    found = f"{provider}: no key, so work Hybridge would send to {ref} stays local"
    return Check("cloud_key", title, "optional", found, how_to_set(provider, key_ref, env_var))


MARK = {"ok": "ok  ", "todo": "TODO", "optional": "--  "}


def render(run: FirstRun) -> str:
    """The checklist as one block of text (serve's startup, doctor)."""
    head = "First run: all set" if run.complete else "First run: not done yet"
    lines = [head]
    for c in run.checks:
        lines.append(f"  [{MARK[c.state]}] {c.title}: {c.found}" + (f" → {c.fix}" if c.fix else ""))
    return "\n".join(lines)


def as_json(run: FirstRun) -> dict[str, object]:
    return {
        "complete": run.complete,
        "recommended": run.recommended,
        "checks": [
            {"step": c.step, "title": c.title, "state": c.state, "found": c.found, "fix": c.fix} for c in run.checks
        ],
    }
