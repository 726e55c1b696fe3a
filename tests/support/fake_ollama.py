"""An Ollama test engine: Ollama's HTTP API and scheduler in front of real llama-server runners.

Ollama itself cannot be installed here, so this stands in for it, and it behaves as
Ollama's source does (github.com/ollama/ollama), each behaviour below naming the file it
follows. The tokens come from llama.cpp's llama-server running the real Gemma 3 270M GGUF,
which is the engine Ollama wraps.

Scheduler (server/sched.go):
- one runner per model, holding the runner options it was loaded with (`num_ctx`,
  `num_batch`, `num_gpu`, `main_gpu`, `use_mmap`, `num_thread`: api.Runner in api/types.go);
- `needsReload`: a request whose runner options differ (num_gpu < 0 matches any) unloads the
  runner and loads a new one: here a real llama-server restart with the new `-c`, whose
  measured time is reported as `load_duration`, as Ollama does (server/routes.go
  ChatHandler: `checkpointLoaded.Sub(checkpointStart)`);
- `keep_alive` (api/types.go Duration: a number of seconds or a Go duration string;
  negative = forever; 0 = unload when done; default 5m, envconfig OLLAMA_KEEP_ALIVE): the
  runner expires that long after its last request; `/api/ps` shows `expires_at` and the
  runner's `context_length`.

Chat (server/routes.go ChatHandler, server/prompt.go chatPrompt):
- a name without a tag means `:latest` (types/model/name.go);
- `tools` need the `tools` capability, `think` the `thinking` capability (400
  `"<model>" does not support thinking`); a model with the capability thinks when `think`
  is absent; level strings ("low"/"medium"/"high") only for models that take levels
  (gpt-oss, the harmony parser), else 400 `think value "x" is not supported for this model`;
- `truncate` (default true): the oldest messages are dropped, system messages and the
  last message kept, a tool result never parted from its call (prompt.go
  toolBlockStartIndex), silently with HTTP 200; `truncate: false` makes an over-long prompt
  a 400 `the input length exceeds the context length` (runner/ollamarunner);
- the prompt goes to the runner, whose KV prefix cache (llama-server's own `cache_prompt`)
  processes only the tokens after the shared prefix: `prompt_eval_duration` falls on a
  repeated prefix while `prompt_eval_count` stays the whole prompt (runner/ollamarunner/
  runner.go reports `seq.numPromptInputs`, counted before the cache is applied);
- a thinking model streams `message.thinking` before `message.content`
  (docs/capabilities/thinking.mdx). The base model has no thinking tokens, so the engine's
  parser labels the first `thinking_tokens` generated pieces as thinking, the way Ollama's
  thinking parser splits a `<think>` section off the generated text;
- tool calls carry ids (`call_…`, assigned when the model's parser finds a call; api/types.go
  ToolCall.ID) and tool messages may carry `tool_call_id` (api/types.go Message.ToolCallID);
- NDJSON lines `{"model","created_at","message","done":false}`, then a final line with
  `done_reason` and the counters in nanoseconds (docs/api.md); `"stream": false` gives one
  object; `stream` defaults to true.

Also `/api/version` (a current version string), `/api/tags`, `/api/show` (model_info,
capabilities; 404 for an unknown model) and `/api/status` (the cloud switch).

Canned mode (`FakeOllama(canned="some text")`), for tests about everything but the tokens:
no llama-server runs. Every chat without a script answers the canned text, a whitespace word
per streamed piece (up to `num_predict`, then `done_reason` "length"), through the same
validation, scheduler bookkeeping (runner options, `needsReload` counted in `loads`,
`keep_alive`, `/api/ps`), thinking split and NDJSON framing as above. A prompt token there is
four characters of each rendered message (rounded up), about what a BPE tokenizer makes of
English, so tests can count by hand and Hybridge's own estimate (which errs high) sees no
truncation; nothing is cached, so every prompt token is evaluated.

Test hooks on `state`: `requests` (every /api/chat body), `replies` (generated texts by
request index), `cancelled`, `script` (queued scripted replies, each a list of `message`
dicts, for tool calls the base model cannot produce), `loads` ((model, num_ctx) per runner
load), `evaluated_tokens` (prompt tokens the runners really processed, from llama-server's
`timings.prompt_n`).
"""

from __future__ import annotations

import asyncio
import atexit
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.llama import LlamaServer
from tests.support.servers import free_port

DEFAULT_NUM_CTX = 4096  # Ollama's default below 24 GiB of VRAM (server/routes.go, envconfig)
DEFAULT_KEEP_ALIVE_S = 300.0  # envconfig.KeepAlive: 5 minutes
VERSION = "0.32.5"
# Generated tokens when the client sets no num_predict. Ollama's default is -1 (until the
# context is full); the base model never stops on its own, so tests keep answers short.
DEFAULT_NUM_PREDICT = 128
# api.Runner's fields and Ollama's defaults for them (api/types.go DefaultOptions).
RUNNER_DEFAULTS: dict[str, Any] = {
    "num_ctx": DEFAULT_NUM_CTX,
    "num_batch": 512,
    "num_gpu": -1,
    "main_gpu": 0,
    "use_mmap": None,
    "num_thread": 0,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class FakeModel:
    name: str
    family: str = "gemma3"
    parameter_size: str = "268.10M"
    quantization_level: str = "Q4_K_M"
    size: int = 253_113_024
    context_length: int = 32768
    block_count: int = 18
    head_count_kv: int = 1
    key_length: int = 256
    value_length: int = 256
    embedding_length: int = 640
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    # Loaded when the engine starts (as by an earlier `ollama run`): in /api/ps with this many
    # bytes on the GPU, at DEFAULT_NUM_CTX (its llama-server starts on first use).
    loaded_vram: int | None = None
    remote_host: str | None = None  # cloud models carry remote fields in /api/tags
    # The upstream model a remote entry relays to (`ollama cp gpt-oss:120b-cloud mybig`);
    # default: the name without `-cloud`.
    remote_model: str | None = None
    # A runner that does not honour a larger options.num_ctx and runs at this context instead
    # (Ollama's older llama.cpp runner kept qwen2.5-coder:14b at 32k when 64k was asked).
    runner_context: int | None = None
    # Takes think levels ("low"/"medium"/"high"), as gpt-oss does (harmony parser).
    think_levels: bool = False
    # Generated pieces the thinking parser labels as thinking when thinking is on.
    thinking_tokens: int = 8
    # Bumped by a test to stand for a new pull of the same name (a new digest).
    revision: int = 0

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def upstream(self) -> str:
        return self.remote_model or self.name.rsplit("-cloud", 1)[0]

    def digest(self) -> str:
        # A model pulled anew has a new manifest digest (`ollama pull` replaces the manifest).
        seed = self.name if not self.revision else f"{self.name}#{self.revision}"
        return (seed.encode().hex() * 8)[:64]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def full_name(name: str) -> str:
    """A name without a tag means `:latest` (types/model/name.go)."""
    tail = name.rsplit("/", 1)[-1]
    return name if ":" in tail else f"{name}:latest"


def keep_alive_seconds(value: Any) -> float | None:
    """api.Duration: seconds as a number, or a Go duration string; negative: forever (None)."""
    if value is None:
        return DEFAULT_KEEP_ALIVE_S
    if isinstance(value, bool):
        raise ValueError("keep_alive must be a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        parts = _DURATION.findall(body)
        if not parts or "".join(a + u for a, u in parts) != body:
            raise ValueError(f'time: missing unit in duration "{text}"')
        seconds = sign * sum(float(a) * _UNIT_S[u] for a, u in parts)
    return None if seconds < 0 else seconds


@dataclass
class Runner:
    """A loaded model: its llama-server and the runner options it was started with."""

    model: str
    options: dict[str, Any]
    server: LlamaServer | None  # None: pre-loaded, its process not started yet
    expires_at: float | None = None  # monotonic; None: never
    busy: int = 0


@dataclass
class FakeOllamaState:
    llama_url: str | None
    models: dict[str, FakeModel]
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    script: list[list[dict[str, Any]]] = field(default_factory=list)
    replies: dict[int, str] = field(default_factory=dict)  # generated text, by index in `requests`
    runners: dict[str, Runner] = field(default_factory=dict)
    loads: list[tuple[str, int]] = field(default_factory=list)
    evaluated_tokens: int = 0
    cloud_disabled: bool = False
    shows: list[str] = field(default_factory=list)  # every /api/show model asked
    # Older Ollama versions have no /api/status: False answers 404 as they do.
    status_endpoint: bool = True


def _error(message: str, status: int) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


def _render_tools(tools: list[dict[str, Any]]) -> str:
    return "You may call these tools:\n" + "\n".join(orjson.dumps(t).decode() for t in tools)


def _llama_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Ollama chat messages as plain-text chat for llama-server (the base model has no tool format)."""
    out: list[dict[str, str]] = []
    if tools:
        out.append({"role": "system", "content": _render_tools(tools)})
    for m in messages:
        role = m.get("role", "user")
        text = str(m.get("content") or "")
        if m.get("tool_calls"):
            text += "".join(f"\n[tool call] {orjson.dumps(c).decode()}" for c in m["tool_calls"])
        if role == "tool":
            who = m.get("tool_name") or m.get("tool_call_id") or ""
            role, text = "user", f"[tool result {who}] {text}"
        out.append({"role": role if role in ("system", "user", "assistant") else "user", "content": text})
    return out


def _tool_block_start(messages: list[dict[str, Any]], i: int) -> int:
    """server/prompt.go toolBlockStartIndex: a tool result starts at the call that asked for it."""
    if i <= 0 or i >= len(messages) or messages[i].get("role") != "tool":
        return i
    start = i
    while start > 0 and messages[start - 1].get("role") == "tool":
        start -= 1
    if start - 1 >= 0 and messages[start - 1].get("role") == "assistant" and messages[start - 1].get("tool_calls"):
        return start - 1
    return i


def _runner_options(options: dict[str, Any], model: FakeModel) -> dict[str, Any]:
    runner = {k: options.get(k, v) for k, v in RUNNER_DEFAULTS.items()}
    runner["num_ctx"] = int(runner["num_ctx"] or DEFAULT_NUM_CTX)
    if model.runner_context:
        runner["num_ctx"] = min(runner["num_ctx"], model.runner_context)
    return runner


def _piece(name: str, text: str, thinking: bool) -> dict[str, Any]:
    """One streamed NDJSON line: a thinking piece (beside an empty content, as Ollama sends it)
    or a content piece."""
    message = (
        {"role": "assistant", "content": "", "thinking": text} if thinking else {"role": "assistant", "content": text}
    )
    return {"model": name, "created_at": _now(), "message": message, "done": False}


def _final(
    name: str, done_reason: str, started_ns: int, load_ns: int, prompt: tuple[int, int], output: tuple[int, int]
) -> dict[str, Any]:
    """The last NDJSON line: the counters, durations in nanoseconds (docs/api.md); `prompt` and
    `output` are (token count, duration ns)."""
    return {
        "model": name,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": done_reason,
        "total_duration": time.perf_counter_ns() - started_ns,
        "load_duration": load_ns,
        "prompt_eval_count": prompt[0],
        "prompt_eval_duration": prompt[1],
        "eval_count": output[0],
        "eval_duration": output[1],
    }


def _needs_reload(loaded: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """server/sched.go needsReload: any runner option differs (num_gpu < 0 matches any)."""
    old, new = dict(loaded), dict(wanted)
    if int(new.get("num_gpu") or 0) < 0:
        old["num_gpu"] = new["num_gpu"] = -1
    return old != new


class FakeOllama:
    """The engine. `llama_url` is accepted for older call sites and unused: runners are its own."""

    def __init__(
        self,
        llama_url: str | None = None,
        models: list[FakeModel] | None = None,
        *,
        threads: int = 2,
        version: str = VERSION,
        canned: str | None = None,
    ) -> None:
        models = models or [FakeModel("gemma3:270m", capabilities=["completion", "tools"], loaded_vram=0)]
        # Canned mode (see the module's docstring): this text answers, no llama-server runs.
        self.canned = canned
        self.state = FakeOllamaState(llama_url, {full_name(m.name): m for m in models})
        self.version_string = version
        # `truncate` came in 0.12.4 (api/types.go ChatRequest.Truncate); older servers ignore it.
        self.has_truncate = tuple(int(p) for p in version.split(".")) >= (0, 12, 4)
        self.threads = threads
        self._schedule = asyncio.Lock()
        for m in models:
            if m.loaded_vram is not None:
                options = _runner_options({}, m)
                self.state.runners[full_name(m.name)] = Runner(m.name, options, None, None)
        self.app = Starlette(
            routes=[
                Route("/api/version", self.version, methods=["GET"]),
                Route("/api/tags", self.tags, methods=["GET"]),
                Route("/api/ps", self.ps, methods=["GET"]),
                Route("/api/show", self.show, methods=["POST"]),
                Route("/api/chat", self.chat, methods=["POST"]),
                Route("/api/status", self.status, methods=["GET"]),
            ]
        )
        atexit.register(self.close)

    # -- runners ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every runner's llama-server."""
        for runner in list(self.state.runners.values()):
            if runner.server:
                runner.server.stop()
        self.state.runners.clear()

    def _expire(self) -> None:
        now = time.monotonic()
        for key, runner in list(self.state.runners.items()):
            if runner.busy == 0 and runner.expires_at is not None and runner.expires_at <= now:
                if runner.server:
                    runner.server.stop()
                del self.state.runners[key]

    async def _runner(self, model: FakeModel, options: dict[str, Any]) -> tuple[Runner, int]:
        """The loaded runner for these options, loading it first when needed; (runner, load ns)."""
        key = full_name(model.name)
        async with self._schedule:
            self._expire()
            runner = self.state.runners.get(key)
            if runner is not None and not _needs_reload(runner.options, options):
                if runner.server is None and self.canned is None:  # pre-loaded: its process was already running
                    runner.server = await asyncio.to_thread(self._start, options)
                runner.busy += 1
                return runner, 0
            if runner is not None and runner.server is not None:
                await asyncio.to_thread(runner.server.stop)
            started = time.perf_counter_ns()
            server = None if self.canned is not None else await asyncio.to_thread(self._start, options)
            load_ns = time.perf_counter_ns() - started
            runner = Runner(model.name, options, server)
            self.state.runners[key] = runner
            self.state.loads.append((model.name, int(options["num_ctx"])))
            runner.busy += 1
            return runner, load_ns

    def _start(self, options: dict[str, Any]) -> LlamaServer:
        threads = int(options.get("num_thread") or 0) or self.threads
        return LlamaServer(free_port(), context=int(options["num_ctx"]), threads=threads).start()

    def _release(self, runner: Runner, keep_s: float | None) -> None:
        runner.busy -= 1
        runner.expires_at = None if keep_s is None else time.monotonic() + keep_s
        if keep_s == 0 and runner.busy == 0:
            self._expire()

    # -- discovery -------------------------------------------------------------------------

    async def version(self, request: Request) -> Response:
        return Response(orjson.dumps({"version": self.version_string}), media_type="application/json")

    async def status(self, request: Request) -> Response:
        if not self.state.status_endpoint:
            return Response(b"404 page not found", status_code=404, media_type="text/plain")
        source = "env" if self.state.cloud_disabled else "none"
        body = {"cloud": {"disabled": self.state.cloud_disabled, "source": source}, "context_length": DEFAULT_NUM_CTX}
        return Response(orjson.dumps(body), media_type="application/json")

    async def tags(self, request: Request) -> Response:
        models = []
        for m in self.state.models.values():
            entry: dict[str, Any] = {
                "name": m.name,
                "model": m.name,
                "modified_at": _now(),
                "size": m.size,
                "digest": m.digest(),
                "details": m.details(),
            }
            if m.remote_host:
                entry.update({"remote_model": m.upstream(), "remote_host": m.remote_host})
            models.append(entry)
        return Response(orjson.dumps({"models": models}), media_type="application/json")

    async def ps(self, request: Request) -> Response:
        self._expire()
        loaded = []
        for key, runner in self.state.runners.items():
            m = self.state.models[key]
            left = (runner.expires_at - time.monotonic()) if runner.expires_at is not None else 10 * 365 * 86400
            if runner.expires_at is None and runner.server is None:
                left = DEFAULT_KEEP_ALIVE_S
            expires = (datetime.now(UTC) + timedelta(seconds=max(left, 0))).isoformat().replace("+00:00", "Z")
            loaded.append(
                {
                    "name": m.name,
                    "model": m.name,
                    "size": m.size,
                    "digest": m.digest(),
                    "details": m.details(),
                    "expires_at": expires,
                    "size_vram": m.loaded_vram or 0,
                    "context_length": int(runner.options["num_ctx"]),
                }
            )
        return Response(orjson.dumps({"models": loaded}), media_type="application/json")

    def _model(self, body: dict[str, Any]) -> FakeModel | None:
        name = str(body.get("model") or body.get("name") or "")
        return self.state.models.get(full_name(name)) if name else None

    async def show(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        asked = str(body.get("model") or body.get("name") or "")
        self.state.shows.append(asked)
        m = self._model(body)
        if m is None:
            return _error(f"model '{asked}' not found", 404)
        if m.remote_host:
            # server/routes.go GetModelInfo: a remote model shows its relay fields and no tensors;
            # with the cloud switched off, Ollama refuses to describe it.
            if self.state.cloud_disabled:
                return _error("ollama cloud is disabled: remote model details are unavailable", 403)
            return Response(
                orjson.dumps(
                    {
                        "modelfile": f"FROM {m.name}\n",
                        "details": m.details(),
                        "remote_model": m.upstream(),
                        "remote_host": m.remote_host,
                        "model_info": {"general.architecture": m.family},
                        "capabilities": m.capabilities,
                        "modified_at": _now(),
                    }
                ),
                media_type="application/json",
            )
        arch = m.family
        return Response(
            orjson.dumps(
                {
                    "modelfile": f"FROM {m.name}\n",
                    "parameters": "",
                    "template": "{{ .Prompt }}",
                    "details": m.details(),
                    "model_info": {
                        "general.architecture": arch,
                        "general.parameter_count": 268_098_176,
                        f"{arch}.context_length": m.context_length,
                        f"{arch}.block_count": m.block_count,
                        f"{arch}.embedding_length": m.embedding_length,
                        f"{arch}.attention.head_count": 4,
                        f"{arch}.attention.head_count_kv": m.head_count_kv,
                        f"{arch}.attention.key_length": m.key_length,
                        f"{arch}.attention.value_length": m.value_length,
                    },
                    "capabilities": m.capabilities,
                    "modified_at": _now(),
                }
            ),
            media_type="application/json",
        )

    # -- chat ------------------------------------------------------------------------------

    async def _prompt_tokens(self, client: httpx.AsyncClient | None, messages: list[dict[str, str]]) -> int:
        if client is None:  # canned mode: four characters a token
            return sum((len(m["content"]) + 3) // 4 for m in messages)
        prompt = (await client.post("/apply-template", json={"messages": messages})).json()["prompt"]
        return len((await client.post("/tokenize", json={"content": prompt})).json()["tokens"])

    async def _fit(
        self, client: httpx.AsyncClient | None, messages: list[dict[str, Any]], tools: Any, num_ctx: int
    ) -> list[dict[str, str]] | None:
        """server/prompt.go chatPrompt with truncate: drop the oldest messages until it fits."""
        last = len(messages) - 1
        for i in range(last + 1):
            start = _tool_block_start(messages, i)
            system = [m for m in messages[:start] if m.get("role") == "system"]
            rendered = _llama_messages(system + messages[start:], tools)
            if await self._prompt_tokens(client, rendered) <= num_ctx or i == last:
                return rendered
        return _llama_messages(messages, tools)

    def _think(self, model: FakeModel, body: dict[str, Any]) -> tuple[bool, Response | None]:
        """server/routes.go ChatHandler's think rules: (thinking on, error answer)."""
        think = body.get("think")
        if isinstance(think, str) and not model.think_levels:
            return False, _error(f'think value "{think}" is not supported for this model', 400)
        if isinstance(think, str) and think not in ("low", "medium", "high"):
            return False, _error(f'invalid think value: "{think}"', 400)
        if "thinking" in model.capabilities:
            return (True if think is None else bool(think)), None
        if think:
            return False, _error(f'"{body["model"]}" does not support thinking', 400)
        return False, None

    async def chat(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error("invalid character in request body", 400)
        if not isinstance(body, dict) or not body.get("model"):
            return _error("model is required", 400)
        self.state.requests.append(body)
        index = len(self.state.requests) - 1
        model = self._model(body)
        if model is None:
            return _error(f"model '{body['model']}' not found", 404)
        if body.get("tools") and "tools" not in model.capabilities:
            return _error(f"registry.ollama.ai/library/{full_name(model.name)} does not support tools", 400)
        thinking, refusal = self._think(model, body)
        if refusal is not None:
            return refusal
        try:
            keep_s = keep_alive_seconds(body.get("keep_alive"))
        except ValueError as exc:
            return _error(str(exc), 400)
        stream = body.get("stream", True) is not False
        options = body.get("options") or {}
        if self.state.script:
            return self._scripted(model.name, self.state.script.pop(0), stream)
        runner, load_ns = await self._runner(model, _runner_options(options, model))
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._release(runner, keep_s)

        try:
            client = None
            if self.canned is None:
                assert runner.server is not None
                client = httpx.AsyncClient(
                    base_url=runner.server.url,
                    timeout=httpx.Timeout(300, connect=5),
                    limits=httpx.Limits(max_keepalive_connections=0),
                    trust_env=False,  # its runner is on loopback: proxy variables (egress tests set them) do not apply
                )
            num_ctx = int(runner.options["num_ctx"])
            raw = body.get("messages") or []
            if body.get("truncate", True) is False and self.has_truncate:
                messages = _llama_messages(raw, body.get("tools"))
                if await self._prompt_tokens(client, messages) > num_ctx:
                    if client is not None:
                        await client.aclose()
                    release()
                    return _error("the input length exceeds the context length", 400)
            else:
                fitted = await self._fit(client, raw, body.get("tools"), num_ctx)
                messages = fitted or []
        except BaseException:
            release()
            raise
        upstream: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": int(options.get("num_predict") or DEFAULT_NUM_PREDICT),
            "cache_prompt": True,
        }
        for key in ("temperature", "top_p", "seed", "stop"):
            if key in options:
                upstream[key] = options[key]
        if isinstance(body.get("format"), dict):
            upstream["response_format"] = {"type": "json_schema", "json_schema": {"schema": body["format"]}}
        think_left = model.thinking_tokens if thinking else 0
        if client is None:
            prompt_tokens = await self._prompt_tokens(None, messages)
            lines = self._canned_lines(model.name, upstream, index, load_ns, think_left, prompt_tokens, release)
        else:
            lines = self._generate(client, model.name, upstream, index, load_ns, think_left, release)
        if stream:
            return StreamingResponse(self._ndjson(lines), media_type="application/x-ndjson")
        content, thought, final = "", "", {}
        async for line in lines:
            content += line["message"].get("content", "")
            thought += line["message"].get("thinking", "")
            final = line
        final["message"]["content"] = content
        if thought:
            final["message"]["thinking"] = thought
        return Response(orjson.dumps(final), media_type="application/json")

    async def _ndjson(self, lines: Any) -> Any:
        finished = False
        try:
            async for line in lines:
                finished = line["done"]
                yield orjson.dumps(line) + b"\n"
        finally:
            if not finished:
                self.state.cancelled += 1
            await lines.aclose()

    async def _generate(
        self,
        client: httpx.AsyncClient,
        name: str,
        upstream: dict[str, Any],
        index: int,
        load_ns: int,
        think_left: int,
        release: Any,
    ) -> Any:
        started = time.perf_counter_ns() - load_ns
        finish, usage, timings, text_so_far = "stop", {}, {}, []
        try:
            async with client.stream("POST", "/v1/chat/completions", json=upstream) as response:
                async for raw in response.aiter_lines():
                    if not raw.startswith("data: ") or raw == "data: [DONE]":
                        continue
                    event = orjson.loads(raw[6:])
                    usage = event.get("usage") or usage
                    timings = event.get("timings") or timings
                    for choice in event.get("choices") or []:
                        finish = choice.get("finish_reason") or finish
                        text = (choice.get("delta") or {}).get("content")
                        if not text:
                            continue
                        thinking = think_left > 0
                        if thinking:
                            think_left -= 1
                        else:
                            text_so_far.append(text)
                        yield _piece(name, text, thinking)
        finally:
            await client.aclose()
            release()
        self.state.replies[index] = "".join(text_so_far)
        self.state.evaluated_tokens += int(timings.get("prompt_n", 0) or 0)
        prompt_ns = int(float(timings.get("prompt_ms", 0)) * 1e6)
        eval_ns = int(float(timings.get("predicted_ms", 0)) * 1e6)
        yield _final(
            name,
            "length" if finish == "length" else "stop",
            started,
            load_ns,
            (int(usage.get("prompt_tokens", 0)), prompt_ns),
            (int(usage.get("completion_tokens", 0)), eval_ns),
        )

    async def _canned_lines(
        self,
        name: str,
        upstream: dict[str, Any],
        index: int,
        load_ns: int,
        think_left: int,
        prompt_tokens: int,
        release: Any,
    ) -> Any:
        """The canned text as the runner would stream it: a word a piece, up to max_tokens."""
        assert self.canned is not None
        started = time.perf_counter_ns() - load_ns
        words = self.canned.split()
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)] or [""]
        limit = int(upstream["max_tokens"])
        said: list[str] = []
        try:
            for text in pieces[:limit]:
                thinking = think_left > 0
                if thinking:
                    think_left -= 1
                else:
                    said.append(text)
                yield _piece(name, text, thinking)
                await asyncio.sleep(0)
        finally:
            release()
        self.state.replies[index] = "".join(said)
        self.state.evaluated_tokens += prompt_tokens
        counted = min(len(pieces), limit)
        yield _final(
            name,
            "length" if len(pieces) > limit else "stop",
            started,
            load_ns,
            (prompt_tokens, 1_000 * max(prompt_tokens, 1)),
            (counted, 1_000 * max(counted, 1)),
        )

    def _scripted(self, name: str, script: list[dict[str, Any]], stream: bool) -> Response:
        for m in script:
            for call in m.get("tool_calls") or []:
                call.setdefault("id", f"call_{secrets.token_hex(4)}")  # the parser names each call
        lines: list[dict[str, Any]] = [
            {"model": name, "created_at": _now(), "message": {"role": "assistant", **m}, "done": False} for m in script
        ]
        final = {
            "model": name,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_000_000,
            "load_duration": 0,
            "prompt_eval_count": 12,
            "prompt_eval_duration": 500_000,
            "eval_count": len(lines),
            "eval_duration": 500_000,
        }
        if stream:
            return Response(
                b"".join(orjson.dumps(x) + b"\n" for x in [*lines, final]), media_type="application/x-ndjson"
            )
        merged: dict[str, Any] = {"role": "assistant", "content": "".join(m.get("content", "") for m in script)}
        thinking = "".join(m.get("thinking", "") for m in script)
        if thinking:
            merged["thinking"] = thinking
        calls = [c for m in script for c in m.get("tool_calls", [])]
        if calls:
            merged["tool_calls"] = calls
        return Response(orjson.dumps({**final, "message": merged}), media_type="application/json")
