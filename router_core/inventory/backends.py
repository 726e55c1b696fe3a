"""Pooled backends' state, read in the background so choosing one costs no round trip.

Each backend is one local provider (one server). What is read, by engine:

- Ollama (docs/api.md): `GET /api/ps` (loaded models with `context_length`, `size_vram`)
  and `GET /api/tags` (installed models). Ollama reports no queue figure, so its busy
  figure is the requests Hybridge has in flight there.
- llama.cpp's llama-server: `GET /metrics` (with `--metrics`) gauges
  `llamacpp:requests_processing` and `llamacpp:requests_deferred` (ggml-org/llama.cpp
  tools/server/server-task.cpp, the metrics result's Prometheus text), and `GET /props`
  (`default_generation_settings.n_ctx`, the context per slot, and `total_slots`). A
  llama-server serves its one model whatever name is asked.
- vLLM: `GET /metrics` gauges `vllm:num_requests_running` and `vllm:num_requests_waiting`
  (vllm-project/vllm vllm/v1/metrics/loggers.py, labelled per engine and model, summed
  here), and `GET /v1/models` (`max_model_len`).
- LM Studio: `GET /api/v0/models` (`state` "loaded" / "not-loaded", `max_context_length`;
  lmstudio-ai/docs REST API v0).
- Any other OpenAI-compatible server: `GET /v1/models` (up, and what it lists).

The engine of an `openai-local` provider is found on the first poll that reaches it
(`/metrics` names its engine; else `/props`, else `/api/v0/models`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from router_core.inventory.ollama_inventory import parse_ps, parse_tags
from router_core.privacy.egress import PrivacyBlocked
from router_core.providers.http import TransportFactory, make_client
from router_core.settings import ProviderSettings, Settings, ollama_base_url
from router_core.signals import Signal

log = logging.getLogger(__name__)
Engine = Literal["ollama", "llama.cpp", "vllm", "lmstudio", "openai", "unknown"]
# Busy figures each engine's /metrics carries: (running, waiting).
BUSY_METRICS: Mapping[str, tuple[str, str]] = {
    "llama.cpp": ("llamacpp:requests_processing", "llamacpp:requests_deferred"),
    "vllm": ("vllm:num_requests_running", "vllm:num_requests_waiting"),
}


@dataclass(frozen=True, slots=True)
class ServedModel:
    name: str
    context: int | None  # tokens (per slot for llama.cpp); None: unknown
    on_gpu: bool | None = None  # all of it in VRAM (Ollama's size_vram == size); None: unknown


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """One look at one backend."""

    provider: str
    engine: Engine
    address: str  # host:port, never credentials or a path
    up: bool
    loaded: tuple[ServedModel, ...] = ()
    # The engine serves whatever model name is asked (a single-model llama-server).
    serves_any: bool = False
    installed: tuple[str, ...] | None = None  # None: the engine does not list them
    running: int | None = None  # the engine's own figures (None: it does not report them)
    waiting: int | None = None
    slots: int | None = None
    problem: str | None = None
    checked_at: float = field(default_factory=time.time)

    def loaded_model(self, name: str) -> ServedModel | None:
        wanted = _full(name) if self.engine == "ollama" else name
        for m in self.loaded:
            if (_full(m.name) if self.engine == "ollama" else m.name) == wanted:
                return m
        return None

    def has(self, name: str) -> bool | None:
        """Installed here: True/False, None when the engine does not say."""
        if self.serves_any:
            return True
        if self.installed is None:
            return None
        if self.engine == "ollama":
            return _full(name) in {_full(n) for n in self.installed}
        return name in self.installed


def _full(name: str) -> str:
    """Ollama reads a name without a tag as `:latest`."""
    return name if ":" in name.rpartition("/")[2] else f"{name}:latest"


def address_of(url: str) -> str:
    """`host:port` of a base URL (no user info, no path): what the ledger and views show."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return ""
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{host}:{port}" if port else host


def backend_url(name: str, conf: ProviderSettings) -> str:
    """The base URL a provider's requests go to."""
    return ollama_base_url(conf.base_url) if conf.kind == "ollama" else conf.base_url.rstrip("/")


def busy_figures(text: str, engine: str, model: str | None = None) -> tuple[int | None, int | None]:
    """(running, waiting) from Prometheus text; vLLM's series are summed over its engines
    (only those labelled with `model` when given and labelled at all)."""
    names = BUSY_METRICS.get(engine)
    if names is None:
        return None, None
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in names:
                continue
            labelled = sample.labels.get("model_name")
            if model and labelled and labelled != model:
                continue
            found[sample.name] = found.get(sample.name, 0.0) + sample.value
    running, waiting = (found.get(n) for n in names)
    return (int(running) if running is not None else None, int(waiting) if waiting is not None else None)


def metrics_engine(text: str) -> Engine | None:
    if "llamacpp:" in text:
        return "llama.cpp"
    if "vllm:" in text:
        return "vllm"
    return None


def _problem(address: str, exc: Exception) -> str:
    if isinstance(exc, PrivacyBlocked):
        return "not read: privacy mode is on and its host is not in privacy.trusted_hosts"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {address}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{address} did not answer in time"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{address} answered HTTP {exc.response.status_code} on {exc.request.url.path}"
    if isinstance(exc, ValueError):
        return f"{address} did not answer with what its engine sends"
    return f"{address} cannot be reached ({type(exc).__name__})"


class BackendProbe:
    """Reads one backend's state; never raises for a backend that is down or odd."""

    def __init__(
        self, provider: str, conf: ProviderSettings, *, transport: httpx.AsyncBaseTransport, timeout_s: float
    ) -> None:
        self.provider = provider
        self.base_url = backend_url(provider, conf)
        # llama.cpp and vLLM serve /metrics and /props at the root, beside /v1.
        self.root = self.base_url.removesuffix("/v1") if conf.kind != "ollama" else self.base_url
        self.address = address_of(self.base_url)
        self.engine: Engine = "ollama" if conf.kind == "ollama" else "unknown"
        self._client = make_client(
            self.root, connect_timeout_s=min(timeout_s, 2.0), read_timeout_s=timeout_s, transport=transport
        )
        self._models_url = self.base_url + "/models"

    async def _get(self, url: str) -> httpx.Response:
        response = await self._client.get(url)
        response.raise_for_status()
        return response

    async def _json(self, url: str) -> dict[str, Any]:
        body = (await self._get(url)).json()
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        return body

    async def read(self) -> BackendStatus:
        try:
            if self.engine == "ollama":
                return await self._ollama()
            if self.engine == "unknown":
                self.engine = await self._detect()
            return await self._openai_engine()
        except (httpx.HTTPError, ValueError) as exc:
            problem = _problem(self.address, exc)
            return BackendStatus(self.provider, self.engine, self.address, up=False, problem=problem)

    async def _ollama(self) -> BackendStatus:
        loaded = parse_ps(await self._json("/api/ps"))
        installed = parse_tags(await self._json("/api/tags"))
        return BackendStatus(
            self.provider,
            "ollama",
            self.address,
            up=True,
            loaded=tuple(
                ServedModel(m.name, m.context_length, m.fully_on_gpu if m.size_bytes else None) for m in loaded
            ),
            installed=tuple(m.name for m in installed if not m.cloud),
        )

    async def _detect(self) -> Engine:
        """The engine behind an OpenAI-compatible address (a connect failure raises)."""
        metrics = await self._client.get("/metrics")
        found = metrics_engine(metrics.text) if metrics.status_code == 200 else None
        if found:
            return found
        props = await self._client.get("/props")
        if props.status_code == 200 and "default_generation_settings" in props.text:
            return "llama.cpp"  # started without --metrics: no busy figures
        lmstudio = await self._client.get("/api/v0/models")
        if lmstudio.status_code == 200 and '"state"' in lmstudio.text:
            return "lmstudio"
        return "openai"

    async def _openai_engine(self) -> BackendStatus:
        engine = self.engine
        running = waiting = slots = None
        loaded: tuple[ServedModel, ...] = ()
        installed: tuple[str, ...] | None = None
        if engine in BUSY_METRICS:
            metrics = await self._client.get("/metrics")
            if metrics.status_code == 200:
                running, waiting = busy_figures(metrics.text, engine)
            elif engine == "vllm":
                metrics.raise_for_status()
        if engine == "llama.cpp":
            props = await self._json("/props")
            settings = props.get("default_generation_settings")
            n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            total = props.get("total_slots")
            slots = total if isinstance(total, int) and total > 0 else None
            alias = props.get("model_alias")
            loaded = (ServedModel(str(alias or "*"), n_ctx if isinstance(n_ctx, int) else None),)
            return BackendStatus(
                self.provider, engine, self.address, up=True, loaded=loaded, serves_any=True,
                running=running, waiting=waiting, slots=slots,
            )  # fmt: skip
        if engine == "lmstudio":
            data = (await self._json("/api/v0/models")).get("data") or []
            entries = [d for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)]
            installed = tuple(d["id"] for d in entries)
            loaded = tuple(
                ServedModel(d["id"], _int(d.get("loaded_context_length")) or _int(d.get("max_context_length")))
                for d in entries
                if d.get("state") == "loaded"
            )
        else:
            data = (await self._json(self._models_url)).get("data") or []
            entries = [d for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)]
            installed = tuple(d["id"] for d in entries)
            if engine == "vllm":  # serving means loaded
                loaded = tuple(ServedModel(d["id"], _int(d.get("max_model_len"))) for d in entries)
        return BackendStatus(
            self.provider, engine, self.address, up=True, loaded=loaded, installed=installed,
            running=running, waiting=waiting, slots=slots,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self._client.aclose()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def pooled_providers(settings: Settings) -> list[str]:
    """Every provider that is a member of a pool, in settings order."""
    members = {ref.partition("/")[0] for refs in settings.routing.pools.values() for ref in refs}
    return [name for name in settings.providers if name in members]


class BackendPoller:
    """Reads every pooled backend on a timer (`inventory.backends_poll_s`) and on demand."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport_factory: TransportFactory,
        providers: Iterable[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        timeout = min(settings.inventory.ollama_timeout_s, max(settings.inventory.backends_poll_s * 2, 1.0))
        names = list(providers) if providers is not None else pooled_providers(settings)
        self.probes = {
            name: BackendProbe(name, settings.providers[name], transport=transport_factory(), timeout_s=timeout)
            for name in names
        }
        self.updated: Signal[BackendStatus] = Signal()
        self._clock = clock

    async def poll(self) -> list[BackendStatus]:
        """Read every backend now (concurrently); each status is published as it comes."""
        statuses = await asyncio.gather(*(probe.read() for probe in self.probes.values()))
        for status in statuses:
            self.updated.emit(status)
        return list(statuses)

    async def run_periodic(self) -> None:
        """Poll every `inventory.backends_poll_s` until cancelled; a failed round is logged, not fatal."""
        interval = self.settings.inventory.backends_poll_s
        while True:
            started = self._clock()
            try:
                await self.poll()
            except Exception:
                log.exception("backend poll failed")
            await asyncio.sleep(max(interval - (self._clock() - started), interval / 4))

    async def aclose(self) -> None:
        for probe in self.probes.values():
            await probe.aclose()
