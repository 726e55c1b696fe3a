"""Settings: shipped defaults, the user's TOML on top, validated as a whole.

Defaults live in `resources/default_config.toml`; the user's file is `config.toml` in the
platform config dir (or `--config PATH`). The user's file holds only what they changed, so a
new default reaches them on upgrade. A bad file is rejected as a whole with one line per
bad key, and the previous settings stay in force.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from router_core.addresses import classify_trusted_entry, is_loopback_host
from router_core.errors import SettingsError
from router_core.globs import check_glob
from router_core.presets import PRESETS
from router_core.tags import is_tag
from router_core.toml_edit import TomlEditError, edit_toml
from router_core.types import EscalationAction

APP_NAME = "hybridge"
DEFAULT_OLLAMA = "http://127.0.0.1:11434"
ProviderKind = Literal["ollama", "openai-local", "openai", "anthropic"]
LOCAL_KINDS = frozenset({"ollama", "openai-local"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=11435, ge=0, le=65535)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # Bearer token clients must send, as a reference ("keyring:NAME" / "env:VAR"); empty: none.
    token: str = ""

    @model_validator(mode="after")
    def _check_bind(self) -> ServerSettings:
        if self.token and not self.token.startswith(("keyring:", "env:")):
            raise ValueError("token must be a reference 'keyring:NAME' or 'env:VAR', not the token")
        if not is_loopback_host(self.host) and not self.token:
            raise ValueError(
                f"host: '{self.host}' is not loopback, and binding beyond this machine needs a token "
                "(`hybridge token new`)"
            )
        return self


class ProviderSettings(_Section):
    kind: ProviderKind
    # A name from router_core/presets.py: fills kind and base_url left unset.
    preset: str = ""
    # Empty for ollama means: $OLLAMA_HOST, else http://127.0.0.1:11434.
    base_url: str = ""
    # A key reference, never the key: "keyring:NAME" or "env:VAR". Empty: local kinds use no
    # key; cloud kinds look in the keyring under the provider's name, then the preset's variable.
    api_key: str = ""
    # "auto": Anthropic gets cache_control breakpoints on long stable prefixes (others cache
    # on their own); "off": none added.
    prompt_cache: Literal["auto", "off"] = "auto"
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # Longest silence allowed between two bytes of an answer (a local model may think).
    read_timeout_s: float = Field(default=300.0, gt=0)

    @property
    def is_local(self) -> bool:
        return self.kind in LOCAL_KINDS

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("preset"):
            return data
        preset = PRESETS.get(data["preset"])
        if preset is None:
            raise ValueError(f"unknown preset '{data['preset']}' (one of: {', '.join(PRESETS)})")
        return {"kind": preset.kind, "base_url": preset.base_url, **data}

    @model_validator(mode="after")
    def _check_key_ref(self) -> ProviderSettings:
        if self.api_key and not self.api_key.startswith(("keyring:", "env:")):
            raise ValueError("api_key must be a reference 'keyring:NAME' or 'env:VAR', not a key")
        if self.kind in ("openai", "openai-local") and not self.base_url:
            raise ValueError(f"base_url is required for kind '{self.kind}' (or set a preset)")
        return self


class RoutingSettings(_Section):
    # `<provider>/<model>` serving `auto`, `local` and small-model work.
    local_model: str = "ollama/qwen3:30b-a3b"
    # `<provider>/<model>` for `cloud` and escalations; empty: no cloud configured.
    cloud_model: str = ""
    # Tags that send work to heavy_model / ui_model (empty model: cloud_model).
    heavy_tags: tuple[str, ...] = ("schema", "migration", "auth", "security", "billing")
    heavy_model: str = ""
    ui_tags: tuple[str, ...] = ("ui-mock", "design", "layout")
    ui_model: str = ""
    # Where a prompt too long for the local model goes (empty: cloud_model).
    long_context_model: str = ""
    # Usable local context in tokens until the machine inventory reports the real figure.
    local_context_tokens: int = Field(default=32768, ge=1024)
    # Tried in order after a plan's first candidate fails before its first byte.
    fallback_chain: tuple[str, ...] = ()
    # "alternate": work tagged `review` goes to another model than the session's writer.
    review_strategy: Literal["alternate", "off"] = "alternate"
    # Reviewers in order of preference (empty: cloud_model, heavy_model, local_model, chain).
    review_models: tuple[str, ...] = ()
    # Tool names (any case) whose calls mean a turn wrote code.
    write_tools: tuple[str, ...] = ("edit", "write", "patch", "multiedit", "apply_patch", "notebookedit")
    # `#local`, `#cloud`, `#tag:NAME` in the latest user message steer routing.
    inline_markers: bool = True
    # Path glob -> tag; an empty tag switches a shipped convention off.
    conventions: dict[str, str] = Field(
        default_factory=lambda: {
            "**/migrations/**": "migration",
            "**/*.sql": "schema",
            "**/auth/**": "auth",
            "**/billing/**": "billing",
        }
    )
    # Unused since tool results no longer name the work (kept so older files still load).
    scan_tool_result_chars: int = Field(default=16384, ge=0)
    # System-prompt prefix -> task name: small-model work, always served locally.
    small_tasks: dict[str, str] = Field(
        default_factory=lambda: {
            "You are a title generator": "title",
            "You are summarizing a conversation": "compaction",
            "You are a helpful AI assistant tasked with summarizing conversations": "compaction",
            "Summarize what was done in this conversation": "summary",
        }
    )
    # Small-model work by the client's own model name (any case, a part of it): Claude Code's
    # haiku-class background model. Requests to `/v1/messages` whose model is `local` (what
    # `hybridge setup claude-code` maps haiku to) are small-model work too.
    small_models: tuple[str, ...] = ("haiku",)
    # Reviews recognised from the client's own signals: regexes (any case) searched in the
    # agent's prompt (the start of the system prompt: an OpenCode review agent, a Claude Code
    # reviewer subagent) and at the start of the latest user instruction (`/review`).
    review_signals: tuple[str, ...] = (
        r"\byou are (?:an? )?(?:expert |senior |meticulous )?(?:code[- ])?review(?:er|ing agent)\b",
        r"\b(?:code|pr|security)[- ]reviewer\b",
        r"^\s*/review\b",
        r"<command-name>/?(?:review|security-review)</command-name>",
    )
    # A model that fails this many times in a row (connect, timeout, 429, 5xx) cools down.
    cooldown_after_failures: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=30.0, ge=0)
    # Longest cooldown a Retry-After can ask for.
    max_cooldown_s: float = Field(default=300.0, ge=0)
    # With no other candidate left, wait out a Retry-After up to this long, then retry once.
    max_retry_wait_s: float = Field(default=5.0, ge=0)
    # Backend pools: one model served by several local backends (Ollama instances, llama.cpp
    # servers, vLLM, LM Studio). Pool name -> its members, `<provider>/<model>` of local
    # providers. A plan naming any member is served by the member chosen per request
    # (router_core/routing/backends.py); routing settings name a member as ever.
    pools: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # A session keeps to the backend that served it (its KV prefix cache keeps paying off).
    pool_sticky_sessions: bool = True

    @field_validator("heavy_tags", "ui_tags")
    @classmethod
    def _check_tags(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        for tag in tags:
            if not is_tag(tag):
                raise ValueError(f"'{tag}' is not a tag (lower-case letters, digits, '_' and '-')")
        return tags

    @field_validator("review_signals")
    @classmethod
    def _check_signals(cls, signals: tuple[str, ...]) -> tuple[str, ...]:
        for signal in signals:
            try:
                re.compile(signal)
            except re.error as exc:
                raise ValueError(f"'{signal}' is not a valid regex ({exc})") from None
        return signals

    @field_validator("conventions")
    @classmethod
    def _check_conventions(cls, conventions: dict[str, str]) -> dict[str, str]:
        for glob, tag in conventions.items():
            problem = check_glob(glob)
            if problem:
                raise ValueError(problem)
            if tag and not is_tag(tag):
                raise ValueError(f"'{glob}': '{tag}' is not a tag (lower-case letters, digits, '_' and '-')")
        return conventions

    @field_validator("pools")
    @classmethod
    def _check_pools(cls, pools: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        seen: dict[str, str] = {}
        for name, members in pools.items():
            if not name or "/" in name:
                raise ValueError(f"pool '{name}': a pool name cannot be empty or hold '/'")
            if not members:
                raise ValueError(f"pool '{name}': list at least one `<provider>/<model>`")
            providers = set()
            for ref in members:
                provider, sep, model = ref.partition("/")
                if not (provider and sep and model):
                    raise ValueError(f"pool '{name}': '{ref}' is not '<provider>/<model>'")
                if ref in seen:
                    raise ValueError(f"pool '{name}': '{ref}' is already in pool '{seen[ref]}'")
                if provider in providers:
                    # A backend is one server: its load figures cannot be split between members.
                    raise ValueError(f"pool '{name}': provider '{provider}' is listed twice")
                providers.add(provider)
                seen[ref] = name
        return pools

    def model_refs(self) -> list[tuple[str, str]]:
        """(key, `<provider>/<model>`) for every model this section names."""
        refs = [
            (key, getattr(self, key))
            for key in ("local_model", "cloud_model", "heavy_model", "ui_model", "long_context_model")
        ]
        refs += [(f"fallback_chain[{i}]", ref) for i, ref in enumerate(self.fallback_chain)]
        refs += [(f"review_models[{i}]", ref) for i, ref in enumerate(self.review_models)]
        refs += [(f"pools.{name}[{i}]", ref) for name, members in self.pools.items() for i, ref in enumerate(members)]
        return refs


class ContextSettings(_Section):
    """How `num_ctx` is sized for each local request."""

    step: int = Field(default=2048, ge=256)
    minimum: int = Field(default=8192, ge=512)
    # Output room assumed when the client sends no max_tokens.
    default_output_tokens: int = Field(default=4096, ge=1)
    # Output room a request needs to fit locally: min(max_tokens, this). Claude Code asks
    # max_tokens 32000 on every turn and rarely writes a tenth of it.
    output_reserve: int = Field(default=8192, ge=256)
    # Warn of a truncated prompt when a local model read fewer tokens than this share of the
    # estimate (which errs high, so a real shortfall is far below it).
    truncation_warn_ratio: float = Field(default=0.5, gt=0, le=1)
    # The most context a local model is given: what agents need, without reserving memory
    # for a 262k window nobody fills. One context per model, chosen once (inventory/context.py).
    max_context_tokens: int = Field(default=65536, ge=2048)
    # Ollama's keep_alive on every local request: a Go duration ("30m", "2h") or seconds;
    # "-1" keeps the model loaded for good, "0" unloads it after each answer.
    keep_alive: str = Field(default="30m", pattern=r"^(-?\d+|(\d+(\.\d+)?(ns|us|ms|s|m|h))+)$")

    def output_room(self, max_tokens: int | None) -> int:
        """Room a request must leave for its answer: min(max_tokens, output_reserve). The one
        rule for routing (does it fit locally?), the provider (num_predict) and explain.

        A request without max_tokens leaves default_output_tokens (never more than the
        reserve): reserving the whole reserve would push every request off an 8k model.
        """
        return min(max_tokens or self.default_output_tokens, self.output_reserve)


class InventorySettings(_Section):
    """How the machine and Ollama are read, for fit verdicts and context sizing."""

    refresh_s: float = Field(default=60.0, ge=5)
    # Each GPU probe (NVML, nvidia-smi, sysfs, rocm-smi, sysctl) gives up after this long.
    probe_timeout_s: float = Field(default=3.0, gt=0, le=30)
    ollama_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Pooled backends (routing.pools) are read this often in the background: Ollama's
    # /api/ps, llama.cpp's and vLLM's /metrics. Routing reads only what was last read.
    backends_poll_s: float = Field(default=2.0, ge=0.1, le=600)
    # Kept free beside a model: the GPU's compute buffers and other programs; the OS and apps.
    vram_reserve_mb: int = Field(default=1024, ge=0)
    ram_reserve_mb: int = Field(default=2048, ge=0)
    # As Ollama's OLLAMA_KV_CACHE_TYPE: bytes a cached token takes.
    kv_cache_type: Literal["f16", "q8_0", "q4_0"] = "f16"


class LedgerSettings(_Section):
    enabled: bool = True
    # Empty: ledger.sqlite3 in the platform data dir.
    path: str = ""


class PriceOverride(_Section):
    """A user's price for one model, USD per million tokens (see resources/prices.toml)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    # Unset: billed as input (a provider without a cache discount or write premium).
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    as_of: date | None = None


class PricingSettings(_Section):
    # `<provider>/<model>` that savings are measured against. Empty: routing.cloud_model,
    # else anthropic/claude-sonnet-4-6.
    baseline_model: str = ""
    # USD per kWh, for the GPU energy local generation draws.
    electricity_price_per_kwh: float = Field(default=0.17, ge=0)
    # Watts the GPU draws while generating, to estimate electricity where its power cannot be
    # read (no NVML, no AMD sysfs reading). 0: the detected card's typical board power.
    gpu_watts: float = Field(default=0, ge=0)
    # Keyed `<provider>/<model>` or the model's own name; wins over the shipped table.
    models: dict[str, PriceOverride] = Field(default_factory=dict)

    @field_validator("baseline_model")
    @classmethod
    def _check_baseline(cls, ref: str) -> str:
        provider, sep, model = ref.partition("/")
        if ref and not (provider and sep and model):
            raise ValueError(f"'{ref}' is not '<provider>/<model>'")
        return ref


class BudgetSettings(_Section):
    # Cloud spend caps in USD, per local day and calendar month; 0 means no cap.
    daily_usd: float = Field(default=0.0, ge=0)
    monthly_usd: float = Field(default=0.0, ge=0)
    # A warning event when spend reaches this share of a cap.
    warn_at: float = Field(default=0.8, gt=0, le=1)
    # At the cap: "keep-local" drops cloud candidates (work stays local, reason "budget");
    # "refuse" refuses requests that would go to the cloud.
    action: EscalationAction = "keep-local"


class PrivacySettings(_Section):
    # Privacy mode: nothing leaves this machine (see router_core/privacy/).
    enabled: bool = False
    # Flagged (cloud-bound) work in privacy mode: "keep-local" serves it locally, "refuse" refuses it.
    escalation: EscalationAction = "keep-local"
    # LAN backends allowed in privacy mode: addresses, CIDR networks or exact host names.
    trusted_hosts: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check_trusted(self) -> PrivacySettings:
        for entry in self.trusted_hosts:
            classify_trusted_entry(entry)
        return self


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    routing: RoutingSettings = RoutingSettings()
    context: ContextSettings = ContextSettings()
    inventory: InventorySettings = InventorySettings()
    # The local Ollama that routing.local_model names ($OLLAMA_HOST, else 127.0.0.1:11434).
    providers: dict[str, ProviderSettings] = Field(default_factory=lambda: {"ollama": ProviderSettings(kind="ollama")})
    ledger: LedgerSettings = LedgerSettings()
    pricing: PricingSettings = PricingSettings()
    budget: BudgetSettings = BudgetSettings()
    privacy: PrivacySettings = PrivacySettings()

    @model_validator(mode="before")
    @classmethod
    def _presets_by_name(cls, data: Any) -> Any:
        """A preset is usable by its name alone: `[providers.groq]` with no kind and no preset
        means `preset = "groq"`, and a model reference such as `routing.cloud_model =
        "openai/gpt-5"` brings `[providers.openai]` (preset "openai") when no table is named so."""
        if not isinstance(data, dict):
            return data
        if "providers" in data:
            providers = data["providers"]
        else:  # the field's default (the local Ollama), which a preset brought by name joins
            factory = cls.model_fields["providers"].default_factory
            providers = factory() if factory is not None else {}  # type: ignore[call-arg]
        if not isinstance(providers, dict):
            return data
        named = {
            name: {**conf, "preset": name}
            if isinstance(conf, dict) and "kind" not in conf and "preset" not in conf and name in PRESETS
            else conf
            for name, conf in providers.items()
        }
        routing = data.get("routing")
        for _key, ref in raw_model_refs(routing if isinstance(routing, dict) else {}):
            provider = ref.partition("/")[0]
            if provider in PRESETS and provider not in named:
                named[provider] = {"preset": provider}
        return {**data, "providers": named}

    @model_validator(mode="after")
    def _check_model_refs(self) -> Settings:
        local = {name: conf.is_local for name, conf in self.providers.items()}
        problems = reference_problems(self.routing.model_refs(), local)
        for name in self.providers:
            if not name or "/" in name:
                problems.append(f"providers.{name}: a provider name cannot be empty or hold '/'")
        for name, members in self.routing.pools.items():
            for ref in members:
                conf = self.providers.get(ref.partition("/")[0])
                if conf is not None and not conf.is_local:
                    problems.append(f"routing.pools.{name}: '{ref}' is not a local provider (pools are local)")
        if problems:
            # One line per problem: validate() splits them, so every one is named in one pass.
            raise ValueError("\n".join(problems))
        return self


# The routing keys that name a `<provider>/<model>` (RoutingSettings.model_refs).
MODEL_REF_KEYS = ("local_model", "cloud_model", "heavy_model", "ui_model", "long_context_model")
MODEL_REF_LISTS = ("fallback_chain", "review_models")


def raw_model_refs(routing: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, reference) for every model a raw (unvalidated) [routing] table names; values of
    the wrong type are left to the field checks."""
    refs = [(key, routing[key]) for key in MODEL_REF_KEYS if isinstance(routing.get(key), str)]
    for key in MODEL_REF_LISTS:
        values = routing.get(key)
        if isinstance(values, list | tuple):
            refs += [(f"{key}[{i}]", v) for i, v in enumerate(values) if isinstance(v, str)]
    return refs


def reference_problems(refs: list[tuple[str, str]], providers: dict[str, bool]) -> list[str]:
    """One line per model reference that names no provider (`providers`: name -> is local)."""
    problems = []
    for key, ref in refs:
        if not ref:
            continue
        provider, sep, model = ref.partition("/")
        if not sep or not model:
            problems.append(f"routing.{key}: '{ref}' is not '<provider>/<model>'")
        elif provider not in providers:
            problems.append(f"routing.{key}: no provider named '{provider}'")
        elif key == "local_model" and not providers[provider]:
            problems.append("routing.local_model: must name a local provider")
    return problems


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def shipped_defaults() -> dict[str, Any]:
    text = resources.files("router_core.resources").joinpath("default_config.toml").read_text()
    return tomllib.loads(text)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base` (tables merge, other values replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# pydantic's sentences in the product's words, by error type (pydantic_core ErrorType).
_WORDS = {
    "extra_forbidden": "unknown setting (check the spelling against the shipped config)",
    "missing": "is required",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be text in quotes",
    "dict_type": "must be a table ([section])",
    "model_type": "must be a table ([section])",
}


def _product_words(kind: str, message: str) -> str:
    if kind in _WORDS:
        return _WORDS[kind]
    # "Input should be 'a' or 'b'", "Input should be greater than 0" read as "must be ...".
    return message.replace("Input should be", "must be")


def validate(data: dict[str, Any]) -> Settings:
    """Validate a whole settings mapping, naming every bad key in the error."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            msg = _product_words(err["type"], err["msg"].removeprefix("Value error, "))
            problems += [f"{key}: {line}" if key else line for line in msg.split("\n")]
        # A field error stops pydantic before the whole-file checks (model references), so
        # run those on the raw values too: every bad key is named in this one pass.
        problems += [p for p in _raw_reference_problems(data) if p not in problems]
        raise SettingsError(problems) from None


def _raw_reference_problems(data: dict[str, Any]) -> list[str]:
    routing = data.get("routing")
    providers = data.get("providers")
    if not isinstance(routing, dict) or not isinstance(providers, dict):
        return []
    refs = raw_model_refs(routing)
    local: dict[str, bool] = {}
    for name, conf in providers.items():
        kind = conf.get("kind") if isinstance(conf, dict) else None
        preset = PRESETS.get(str(conf.get("preset") or name)) if isinstance(conf, dict) else None
        local[name] = (kind or (preset.kind if preset else "")) in LOCAL_KINDS
    for _key, ref in refs:
        provider = ref.partition("/")[0]
        if provider in PRESETS and provider not in local:
            local[provider] = False  # a preset by name alone (Settings._presets_by_name)
    return reference_problems(refs, local)


def read_toml(path: Path) -> dict[str, Any]:
    """The file as TOML; any way it can be broken is one SettingsError line naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"{path}: not valid TOML ({exc})"]) from None
    except UnicodeDecodeError as exc:
        raise SettingsError([f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})"]) from None
    except RecursionError:
        raise SettingsError([f"{path}: nested too deeply to be settings"]) from None
    except OSError as exc:
        raise SettingsError([f"{path}: cannot be read ({exc.strerror or exc})"]) from None


def load(path: Path | None = None) -> Settings:
    """Shipped defaults, then the user's file (`path`, else the platform one, if present)."""
    user_path = path or default_config_path()
    user = read_toml(user_path) if (path is not None or user_path.exists()) else {}
    try:
        return validate(merge(shipped_defaults(), user))
    except RecursionError:  # a 5,000-deep dotted table parses, then overflows merging
        raise SettingsError([f"{user_path}: nested too deeply to be settings"]) from None


def write_atomic(path: Path, text: str) -> None:
    """Write through a temp file, fsync, then os.replace, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_user_file(path: Path, changes: Mapping[str, Any], removals: Iterable[tuple[str, ...]] = ()) -> Settings:
    """Merge `changes` into the user's file and delete the key paths in `removals`, validate
    the result as a whole, and write it atomically: the one writer of the settings file.

    The user's comments and layout stay as they wrote them (router_core/toml_edit.py).
    Nothing is written when the result is invalid.
    """
    text = ""
    if path.exists():
        read_toml(path)  # a broken file: one line naming it, as loading it would say
        text = path.read_text(encoding="utf-8")
    try:
        new_text = edit_toml(text, changes, removals)
        # Validate what will be on disk, read back as every reader reads it.
        new_user = tomllib.loads(new_text)
    except (TomlEditError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError([f"{path}: cannot be edited ({exc})"]) from None
    settings = validate(merge(shipped_defaults(), new_user))
    write_atomic(path, new_text)
    return settings


def ollama_base_url(configured: str, env: dict[str, str] | None = None) -> str:
    """The Ollama address: settings, else $OLLAMA_HOST (read as Ollama's tools read it)."""
    raw = configured or (env if env is not None else dict(os.environ)).get("OLLAMA_HOST", "")
    if not raw:
        return DEFAULT_OLLAMA
    # envconfig/config.go Host() in ollama/ollama: no scheme means http on 11434; a written
    # scheme brings its own default port (http 80, https 443).
    scheme, sep, rest = raw.strip().partition("://")
    default_port = {"http": "80", "https": "443"}.get(scheme, "11434") if sep else "11434"
    if not sep:
        scheme, rest = "http", raw.strip()
    hostport, _, path = rest.partition("/")
    host, port = hostport, default_port
    if hostport.startswith("["):
        end = hostport.find("]")
        host, tail = hostport[: end + 1], hostport[end + 1 :]
        if tail.startswith(":"):
            port = tail[1:]
    elif ":" in hostport:
        host, _, port = hostport.rpartition(":")
    # A server bound to every interface is reached on loopback.
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "[::]":
        host = "[::1]"
    base = f"{scheme}://{host}:{port}"
    return base + ("/" + path.rstrip("/") if path.strip("/") else "")
