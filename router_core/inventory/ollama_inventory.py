"""What one Ollama server has: version, installed and loaded models, and each model's details.

Reads Ollama's documented API (docs/api.md): `GET /api/version`, `GET /api/tags`,
`GET /api/ps` and `POST /api/show`. Cloud models (`-cloud`/`:cloud` names, or the
`remote_host` field) are listed but never shown: their details live on Ollama's servers.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from router_core.inventory.shown_models import ShownModels
from router_core.providers.http import make_client

# Bytes per cached key/value element for Ollama's OLLAMA_KV_CACHE_TYPE (q8_0/q4_0: 32-value blocks).
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
START_HINT = "start it with `ollama serve` (or open the Ollama app), or set its address in settings or OLLAMA_HOST"


def is_cloud_name(name: str) -> bool:
    return name.endswith(("-cloud", ":cloud"))


def _arch_value(model_info: dict[str, Any], key: str) -> Any:
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.{key}") if arch else None
    if value is None:
        value = next((v for k, v in model_info.items() if k.endswith(f".{key}")), None)
    return value


def _largest(value: Any) -> int | None:
    """An integer field, or the largest entry of a per-layer list."""
    if isinstance(value, list):
        numbers = [int(v) for v in value if isinstance(v, int | float)]
        return max(numbers) if numbers else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def kv_cache_bytes_per_token(model_info: dict[str, Any], bytes_per_element: float = 2.0) -> int | None:
    """block_count × head_count_kv × (key_length + value_length) × bytes per element.

    head_count_kv may be a per-layer list (summed over layers); without key/value lengths the
    head size is embedding_length / head_count. Sliding-window layers are counted in full, so
    the figure errs high, which is the safe side for a fit.
    """
    blocks = _largest(_arch_value(model_info, "block_count"))
    heads = _largest(_arch_value(model_info, "attention.head_count"))
    raw_kv = _arch_value(model_info, "attention.head_count_kv")
    if raw_kv is None:
        raw_kv = heads  # plain multi-head attention caches every head
    if not blocks or raw_kv is None:
        return None
    if isinstance(raw_kv, list):
        kv_heads_total = sum(int(v) for v in raw_kv if isinstance(v, int | float))
    else:
        kv_heads_total = blocks * int(raw_kv)
    key_length = _largest(_arch_value(model_info, "attention.key_length"))
    value_length = _largest(_arch_value(model_info, "attention.value_length"))
    if key_length is None or value_length is None:
        embedding = _largest(_arch_value(model_info, "embedding_length"))
        if not embedding or not heads:
            return None
        key_length = value_length = embedding // heads
    return math.ceil(kv_heads_total * (key_length + value_length) * bytes_per_element) or None


@dataclass(frozen=True, slots=True)
class ModelDetails:
    """What `/api/show` says about a model."""

    architecture: str | None
    max_context: int | None
    capabilities: tuple[str, ...]
    kv_bytes_per_token: int | None
    parameter_count: int | None = None


def parse_show(body: dict[str, Any], bytes_per_element: float = 2.0) -> ModelDetails:
    info = body.get("model_info") or {}
    if not isinstance(info, dict):
        info = {}
    context = _largest(_arch_value(info, "context_length"))
    capabilities = body.get("capabilities") or []
    count = info.get("general.parameter_count")
    return ModelDetails(
        architecture=info.get("general.architecture") if isinstance(info.get("general.architecture"), str) else None,
        max_context=context or None,
        capabilities=tuple(str(c) for c in capabilities) if isinstance(capabilities, list) else (),
        kv_bytes_per_token=kv_cache_bytes_per_token(info, bytes_per_element),
        parameter_count=int(count) if isinstance(count, int | float) else None,
    )


@dataclass(frozen=True, slots=True)
class OllamaModel:
    """An installed model, from `/api/tags` (and `/api/show` once read)."""

    name: str
    size_bytes: int
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    digest: str = ""
    cloud: bool = False
    details: ModelDetails | None = None

    @property
    def capabilities(self) -> tuple[str, ...]:
        return self.details.capabilities if self.details else ()

    @property
    def max_context(self) -> int | None:
        return self.details.max_context if self.details else None

    @property
    def kv_bytes_per_token(self) -> int | None:
        return self.details.kv_bytes_per_token if self.details else None


def parse_tags(body: dict[str, Any]) -> list[OllamaModel]:
    models = []
    for entry in body.get("models") or []:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("model") or entry.get("name") or "")
        if not name:
            continue
        raw_details = entry.get("details")
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
        models.append(
            OllamaModel(
                name=name,
                size_bytes=int(entry.get("size") or 0),
                family=str(details.get("family") or ""),
                parameter_size=str(details.get("parameter_size") or ""),
                quantization=str(details.get("quantization_level") or ""),
                digest=str(entry.get("digest") or ""),
                cloud=is_cloud_name(name) or bool(entry.get("remote_host") or entry.get("remote_model")),
            )
        )
    return models


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model in memory now, from `/api/ps`."""

    name: str
    size_bytes: int
    vram_bytes: int
    context_length: int | None
    expires_at: str | None

    @property
    def fully_on_gpu(self) -> bool:
        return self.size_bytes > 0 and self.vram_bytes >= self.size_bytes


def parse_ps(body: dict[str, Any]) -> list[LoadedModel]:
    loaded = []
    for entry in body.get("models") or []:
        if not isinstance(entry, dict):
            continue
        context = entry.get("context_length")
        loaded.append(
            LoadedModel(
                name=str(entry.get("model") or entry.get("name") or ""),
                size_bytes=int(entry.get("size") or 0),
                vram_bytes=int(entry.get("size_vram") or 0),
                context_length=int(context) if isinstance(context, int) and context > 0 else None,
                expires_at=str(entry["expires_at"]) if entry.get("expires_at") else None,
            )
        )
    return loaded


def same_model(a: str, b: str) -> bool:
    """Ollama names without a tag mean `:latest`."""
    return (a if ":" in a else f"{a}:latest") == (b if ":" in b else f"{b}:latest")


@dataclass(frozen=True, slots=True)
class OllamaStatus:
    """One look at an Ollama server. `problem` says what is wrong and how to fix it."""

    base_url: str
    up: bool
    version: str | None = None
    models: tuple[OllamaModel, ...] = ()
    loaded: tuple[LoadedModel, ...] = ()
    problem: str | None = None
    checked_at: float = field(default_factory=time.time)

    def model(self, name: str) -> OllamaModel | None:
        return next((m for m in self.models if same_model(m.name, name)), None)

    def loaded_model(self, name: str) -> LoadedModel | None:
        return next((m for m in self.loaded if same_model(m.name, name)), None)


class OllamaInventory:
    """Reads one Ollama server; `/api/show` answers are kept per model digest."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport,
        timeout_s: float = 5.0,
        kv_cache_type: str = "f16",
        show_concurrency: int = 4,
        shown: ShownModels | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._bytes_per_element = KV_BYTES_PER_ELEMENT.get(kv_cache_type, 2.0)
        self._client = make_client(
            self.base_url, connect_timeout_s=min(timeout_s, 2.0), read_timeout_s=timeout_s, transport=transport
        )
        self._shown: dict[tuple[str, str], ModelDetails] = {}
        # The raw answers this server's provider shares (whichever reads first).
        self._shown_answers = shown if shown is not None else ShownModels()
        self._show_slots = asyncio.Semaphore(show_concurrency)
        self.status: OllamaStatus | None = None

    async def _get(self, path: str) -> dict[str, Any]:
        response = await self._client.get(path)
        response.raise_for_status()
        body = response.json()
        return body if isinstance(body, dict) else {}

    def _down(self, exc: Exception) -> OllamaStatus:
        where = f"Ollama at {self.base_url}"
        if isinstance(exc, httpx.ConnectError):
            problem = f"{where} is not running: {START_HINT}"
        elif isinstance(exc, httpx.TimeoutException):
            problem = f"{where} did not answer within {self.timeout_s:g} s: is it stuck loading a model?"
        elif isinstance(exc, httpx.HTTPStatusError):
            problem = f"{where} answered HTTP {exc.response.status_code} on {exc.request.url.path}: is this Ollama?"
        elif isinstance(exc, ValueError):
            problem = f"{where} did not answer with JSON: is this Ollama?"
        else:
            problem = f"{where} cannot be reached: {exc or type(exc).__name__}"
        return OllamaStatus(self.base_url, up=False, problem=problem)

    async def _details(self, model: OllamaModel) -> ModelDetails | None:
        key = (model.name, model.digest)
        if key not in self._shown:
            body = self._shown_answers.get(model.name, model.digest or None)
            if body is None:
                async with self._show_slots:
                    try:
                        response = await self._client.post("/api/show", json={"model": model.name})
                        response.raise_for_status()
                        body = response.json()
                    except (httpx.HTTPError, ValueError):
                        return None
                if not isinstance(body, dict):
                    return None
                self._shown_answers.put(model.name, body, model.digest or None)
            self._shown[key] = parse_show(body, self._bytes_per_element)
        return self._shown[key]

    async def refresh(self) -> OllamaStatus:
        """Read the server now; never raises for a server that is down or odd."""
        try:
            version = str((await self._get("/api/version")).get("version") or "") or None
            listed = parse_tags(await self._get("/api/tags"))
            loaded = parse_ps(await self._get("/api/ps"))
        except (httpx.HTTPError, ValueError) as exc:
            self.status = self._down(exc)
            return self.status
        local = [m for m in listed if not m.cloud]
        shown = await asyncio.gather(*(self._details(m) for m in local))
        details = {m.name: d for m, d in zip(local, shown, strict=True)}
        models = tuple(replace(m, details=details.get(m.name)) for m in listed)
        self.status = OllamaStatus(self.base_url, up=True, version=version, models=models, loaded=tuple(loaded))
        return self.status

    async def aclose(self) -> None:
        await self._client.aclose()
