"""Point OpenCode at Hybridge: merge a `hybridge` provider into `opencode.json(c)`.

What is written (OpenCode's config schema, opencode.ai/docs/config and /docs/providers):

- `provider.hybridge`: `npm` `@ai-sdk/openai-compatible`, `options.baseURL` (and
  `options.apiKey` when the server wants a token), and models `auto`, `local` and, with a
  cloud configured, `cloud`. Each model gets `limit.context`/`limit.output` (local: the
  inventory's figure for this machine; cloud: the vendor's), `tool_call` from the local
  model's capabilities, and `cost` per million tokens (local work is free; `cloud` is
  priced from resources/prices.toml and the user's overrides, so OpenCode's cost display
  agrees with Hybridge's ledger).
- `model` = `hybridge/auto`, `small_model` = `hybridge/local` (titles and summaries stay local).
- Optionally agents: `agent.<name>.model` (`plan` -> `hybridge/cloud`) or
  `agent.<name>.options.hybridge_tags` (OpenCode passes agent options into the request
  body, where Hybridge reads the tags).

The merge is an in-place JSONC edit (router_core/clients/jsonc.py): the user's other
providers, keys and comments stay as they were, figures Hybridge owns are refreshed, and
display names the user changed are kept. Running it twice gives the same file as once.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router_core.clients.jsonc import Document, JsoncError
from router_core.clients.model_limits import ModelLimits, cloud_limits, local_facts, local_limits
from router_core.errors import HybridgeError
from router_core.inventory.machine import InventorySnapshot
from router_core.ledger.prices import load_price_table
from router_core.settings import Settings, write_atomic
from router_core.tags import is_tag

PROVIDER_ID = "hybridge"
NPM_PACKAGE = "@ai-sdk/openai-compatible"
SCHEMA_URL = "https://opencode.ai/config.json"
FILE_NAMES = ("opencode.jsonc", "opencode.json")  # an existing .jsonc wins; new files are .json
MODEL_NAMES = {"auto": "Auto", "local": "Local", "cloud": "Cloud"}
TARGETS = tuple(MODEL_NAMES)
_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class OpenCodeConfigError(HybridgeError):
    """A config file that cannot be read or merged, or a bad agent mapping."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=400)


@dataclass(frozen=True, slots=True)
class AgentRoute:
    """An OpenCode agent sent to a Hybridge model (`plan=cloud`) or tagged (`review=tag:review`)."""

    agent: str
    model: str | None = None  # auto | local | cloud
    tags: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> AgentRoute:
        """`NAME=auto|local|cloud` or `NAME=tag:TAG[,TAG...]`."""
        agent, sep, target = (part.strip() for part in spec.partition("="))
        if not sep or not agent or not target:
            raise OpenCodeConfigError(f"agent mapping '{spec}': expected NAME=auto|local|cloud or NAME=tag:TAG[,TAG]")
        if not _AGENT_NAME.match(agent):
            raise OpenCodeConfigError(f"agent mapping '{spec}': '{agent}' is not an agent name")
        if target.startswith("tag:"):
            tags = tuple(t.strip() for t in target[4:].split(",") if t.strip())
            bad = [t for t in tags if not is_tag(t)]
            if not tags or bad:
                raise OpenCodeConfigError(f"agent mapping '{spec}': tags are lower-case letters, digits, '_' and '-'")
            return cls(agent, tags=tags)
        if target.removeprefix(f"{PROVIDER_ID}/") not in TARGETS:
            raise OpenCodeConfigError(f"agent mapping '{spec}': the model is one of {', '.join(TARGETS)}")
        return cls(agent, model=target.removeprefix(f"{PROVIDER_ID}/"))


@dataclass(frozen=True, slots=True)
class OpenCodeSetup:
    """Everything Hybridge writes into an OpenCode config."""

    base_url: str
    models: dict[str, dict[str, Any]]  # facts, refreshed on every write
    names: dict[str, str]  # display names, written only where missing
    api_key: str | None = None
    agents: tuple[AgentRoute, ...] = ()
    notes: tuple[str, ...] = ()


def base_url(settings: Settings, port: int | None = None) -> str:
    """The `/v1` URL a client on this machine uses."""
    host = settings.server.host
    if host in ("0.0.0.0", "", "localhost"):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port if port is None else port}/v1"


def _limit(limits: ModelLimits, cap: int | None) -> dict[str, int]:
    output = min(limits.output, cap) if cap else limits.output
    return {"context": limits.context, "output": max(1, min(output, limits.context // 2))}


def build_setup(
    settings: Settings,
    *,
    port: int | None = None,
    snapshot: InventorySnapshot | None = None,
    token: str | None = None,
    agents: Sequence[AgentRoute] = (),
    max_output: int | None = None,
) -> OpenCodeSetup:
    """What to write, from the settings, the inventory (None: not known) and the token.

    `max_output` caps every model's `limit.output` (OpenCode sends it as max_tokens).
    """
    notes: list[str] = []
    facts = local_facts(settings, snapshot)
    local = local_limits(settings, facts)
    notes.append(f"local: context {local.context:,}, output {local.output:,} ({local.source})")
    if facts.capabilities is None:
        tool_call, attachment = True, False
        notes.append("local: tool_call assumed (no capabilities known; Hybridge's suggested models all call tools)")
    else:
        tool_call, attachment = "tools" in facts.capabilities, "vision" in facts.capabilities
        if not tool_call:
            notes.append(f"local: tool_call false ({settings.routing.local_model} does not list 'tools')")
    free = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}
    local_model = {"tool_call": tool_call, "attachment": attachment, "limit": _limit(local, max_output), "cost": free}
    models: dict[str, dict[str, Any]] = {"auto": dict(local_model), "local": dict(local_model)}
    cloud_ref = settings.routing.cloud_model
    if cloud_ref:
        limits = cloud_limits(cloud_ref)
        cloud: dict[str, Any] = {"tool_call": True, "attachment": True, "limit": _limit(limits, max_output)}
        price = load_price_table(settings).lookup_ref(cloud_ref)
        if price is None:
            notes.append(f"cloud: {cloud_ref} has no price (add [pricing.models] in settings); no cost written")
        else:
            rates = price.rates
            cloud["cost"] = {
                "input": rates.input,
                "output": rates.output,
                "cache_read": rates.cache_read,
                "cache_write": rates.cache_write,
            }
            notes.append(f"cloud: {cloud_ref} at ${rates.input:g}/${rates.output:g} per million tokens ({price.key})")
        notes.append(f"cloud: context {limits.context:,}, output {limits.output:,} ({limits.source})")
        models["cloud"] = cloud
    else:
        notes.append("cloud: none configured (routing.cloud_model), so no hybridge/cloud model")
    for route in agents:
        if route.model and route.model not in models:
            raise OpenCodeConfigError(f"agent '{route.agent}' -> {route.model}: no cloud model is configured")
    return OpenCodeSetup(
        base_url=base_url(settings, port),
        models=models,
        names={k: MODEL_NAMES[k] for k in models},
        api_key=token,
        agents=tuple(agents),
        notes=tuple(notes),
    )


def opencode_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """OpenCode's global config folder: $XDG_CONFIG_HOME/opencode, else ~/.config/opencode."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "opencode"


def config_file(folder: Path) -> Path:
    """The config file in `folder`: an existing opencode.jsonc, else opencode.json."""
    for name in FILE_NAMES:
        if (folder / name).exists():
            return folder / name
    return folder / FILE_NAMES[-1]


def _provider_values(current: Any, setup: OpenCodeSetup) -> dict[str, Any]:
    """The provider entry to merge: facts always, display names only where the user has none."""
    current = current if isinstance(current, dict) else {}
    models = current.get("models") if isinstance(current.get("models"), dict) else {}
    values: dict[str, Any] = {"npm": NPM_PACKAGE}
    if "name" not in current:
        values["name"] = "Hybridge"
    values["options"] = {"baseURL": setup.base_url, **({"apiKey": setup.api_key} if setup.api_key else {})}
    values["models"] = {}
    for model_id, facts in setup.models.items():
        existing = models.get(model_id)
        named = isinstance(existing, dict) and "name" in existing
        values["models"][model_id] = ({} if named else {"name": setup.names[model_id]}) | facts
    return values


def edit(text: str, setup: OpenCodeSetup) -> str:
    """`text` with the Hybridge provider, models and agents merged in."""
    try:
        doc = Document(text)
    except JsoncError as exc:
        raise OpenCodeConfigError(f"not valid JSON(C): {exc}") from None
    if not isinstance(doc.data(), dict):
        raise OpenCodeConfigError("the config is not a JSON object")
    provider = ["provider", PROVIDER_ID]
    doc.merge([], {"$schema": SCHEMA_URL}, only_missing=True)
    doc.merge(provider, _provider_values(doc.get(provider), setup))
    doc.merge([], {"model": f"{PROVIDER_ID}/auto", "small_model": f"{PROVIDER_ID}/local"})
    for route in setup.agents:
        if route.model:
            doc.merge(["agent", route.agent], {"model": f"{PROVIDER_ID}/{route.model}"})
        else:
            doc.merge(["agent", route.agent, "options"], {"hybridge_tags": list(route.tags)})
    return doc.text


@dataclass(frozen=True, slots=True)
class OpenCodeUpdate:
    """A planned change to one config file (shown before it is written)."""

    path: Path
    old_text: str
    new_text: str
    diff: str
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text


def unified_diff(path: Path, old: str, new: str) -> str:
    label = str(path)
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"{label} (now)", f"{label} (new)"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def plan_opencode_update(path: Path, setup: OpenCodeSetup) -> OpenCodeUpdate:
    """Read `path` (absent: empty), merge `setup` in, and return old and new text and the diff."""
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as exc:
        raise OpenCodeConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise OpenCodeConfigError(f"{path}: not UTF-8 text") from None
    try:
        new = edit(old, setup)
    except OpenCodeConfigError as exc:
        raise OpenCodeConfigError(f"{path}: {exc.message}") from None
    diff = unified_diff(path, old, new)
    if setup.api_key:  # the diff is shown on screen and in the tray: never the token itself
        diff = diff.replace(setup.api_key, "<server token>")
    return OpenCodeUpdate(path, old, new, diff, setup.notes)


def backup_path(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{stamp}-{n}.bak")
        n += 1
    return candidate


def write_opencode_update(update: OpenCodeUpdate) -> Path | None:
    """Write a planned update atomically, after copying the old file aside.

    Returns the backup's path (None when there was no file before, or nothing changed).
    Refuses when the file changed on disk since the update was planned.
    """
    if not update.changed:
        return None
    current = update.path.read_text(encoding="utf-8") if update.path.exists() else ""
    if current != update.old_text:
        raise OpenCodeConfigError(f"{update.path} changed since the diff was made; run it again")
    backup = None
    if update.path.exists():
        backup = backup_path(update.path)
        shutil.copy2(update.path, backup)
    write_atomic(update.path, update.new_text)
    if update.path.exists() and backup is not None:
        shutil.copymode(backup, update.path)
    return backup


def plan_for_folder(
    settings: Settings,
    folder: Path | None,
    *,
    snapshot: InventorySnapshot | None = None,
    token: str | None = None,
    agents: Sequence[AgentRoute] = (),
    port: int | None = None,
) -> OpenCodeUpdate:
    """One call for the tray dialog: the update for a project folder (None: the global config).

    Show `update.diff` and `update.notes`, then `write_opencode_update(update)` on confirm.
    """
    setup = build_setup(settings, port=port, snapshot=snapshot, token=token, agents=agents)
    return plan_opencode_update(config_file(folder or opencode_config_dir()), setup)
