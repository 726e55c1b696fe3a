"""Backend pools at run time: what each pooled backend is doing now, and the choice per request.

The executor asks `choose()` when a plan's candidate is a pool member; the answer comes
from memory only (the last background poll, router_core/inventory/backends.py, and our own
in-flight counts), so choosing costs no network round trip. `begin`/`end` count our
requests in flight per backend; a connect failure marks a backend down at once, and only
a successful background poll brings it back (the probe before it gets traffic again).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson

from router_core.addresses import destination_allowed, is_loopback_host
from router_core.errors import UpstreamError
from router_core.inventory.backends import BackendStatus, address_of, backend_url
from router_core.privacy.state import PrivacyState
from router_core.routing.backends import BackendView, Ranking, rank
from router_core.routing.cooldowns import Cooldowns
from router_core.routing.tokens import estimate_prompt_tokens
from router_core.settings import Settings
from router_core.signals import Signal
from router_core.types import ChatRequest

STICKY_SESSIONS = 4096
# A slot count for engines that report none: Ollama runs one request per model at a time
# unless OLLAMA_NUM_PARALLEL says otherwise (docs/faq.md); LM Studio queues per model.
DEFAULT_SLOTS = {"ollama": 1, "lmstudio": 1}


@dataclass(frozen=True, slots=True)
class BackendState:
    """A pooled backend as health views show it (doctor, /hybridge/backends, the dashboard)."""

    provider: str
    engine: str
    address: str
    pools: tuple[str, ...]
    up: bool | None  # None: not read yet
    down_reason: str | None  # known down: skipped until a poll sees it up
    loaded: tuple[tuple[str, int | None], ...]  # (model, context)
    in_flight: int  # ours, now
    running: int | None  # the engine's own figures at the last poll
    waiting: int | None
    busy: int  # what choosing uses: ours now + the engine's beyond ours at the last poll
    slots: int | None
    cooling: tuple[str, ...]  # members cooling down
    last_error: str | None
    checked_at: float | None  # Unix time of the last poll


def _ollama_key(ref: str) -> str:
    provider, _, model = ref.partition("/")
    return f"{provider}/{model if ':' in model.rpartition('/')[2] else model + ':latest'}"


def _loaded(status: BackendStatus | None, found: bool) -> bool | None:
    """Whether the model is loaded there: unknown until read, and for engines that do not say."""
    if status is None or not status.up or status.engine in ("openai", "unknown"):
        return None
    return found or status.serves_any


class BackendPools:
    def __init__(
        self,
        settings: Settings,
        privacy: PrivacyState,
        cooldowns: Cooldowns,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._privacy = privacy
        self._cooldowns = cooldowns
        self._clock = clock
        self.pools: dict[str, tuple[tuple[str, str], ...]] = {
            name: tuple((ref.partition("/")[0], ref.partition("/")[2]) for ref in refs)
            for name, refs in settings.routing.pools.items()
        }
        self._ollama = {n for n, c in settings.providers.items() if c.kind == "ollama"}
        self._pool_of: dict[str, str] = {}
        for name, members in self.pools.items():
            for provider, model in members:
                ref = f"{provider}/{model}"
                self._pool_of[ref] = name
                if provider in self._ollama:
                    self._pool_of[_ollama_key(ref)] = name
        providers = {p for members in self.pools.values() for p, _ in members}
        self.addresses = {
            p: address_of(backend_url(p, settings.providers[p])) for p in settings.providers if p in providers
        }
        self._hosts = {p: a.rpartition(":")[0].strip("[]") for p, a in self.addresses.items()}
        self._lock = threading.Lock()
        self._status: dict[str, BackendStatus] = {}
        self._down: dict[str, str] = {}
        self._in_flight: dict[str, int] = dict.fromkeys(providers, 0)
        self._ours_at_poll: dict[str, int] = {}
        self._sticky: OrderedDict[str, str] = OrderedDict()
        self._fits: dict[str, Mapping[str, int]] = {}
        self._sticky_on = settings.routing.pool_sticky_sessions
        # Health views listen (the dashboard through app/bridge.py).
        self.updated: Signal[list[BackendState]] = Signal()

    def __bool__(self) -> bool:
        return bool(self.pools)

    def pool_of(self, ref: str) -> str | None:
        """The pool a `<provider>/<model>` belongs to, if any."""
        if not self._pool_of:
            return None
        found = self._pool_of.get(ref)
        if found is None and ref.partition("/")[0] in self._ollama:
            found = self._pool_of.get(_ollama_key(ref))
        return found

    # -- what the poller and the inventory say --------------------------------------------

    def apply(self, status: BackendStatus) -> None:
        """A background poll's answer: a backend seen up is back in the pool."""
        with self._lock:
            self._status[status.provider] = status
            self._ours_at_poll[status.provider] = self._in_flight.get(status.provider, 0)
            if status.up:
                self._down.pop(status.provider, None)
            else:
                self._down[status.provider] = status.problem or "not answering"
        self.updated.emit(self.states())

    def note_fits(self, provider: str, fits: Mapping[str, int]) -> None:
        """The most context each model can have on this machine (the inventory's fit verdicts):
        only for backends on this machine, whose hardware the inventory read."""
        if provider in self._hosts and is_loopback_host(self._hosts[provider]):
            self._fits[provider] = {_ollama_key(f"{provider}/{m}").partition("/")[2]: v for m, v in fits.items()}

    # -- per request ----------------------------------------------------------------------

    def _busy(self, provider: str) -> int:
        ours = self._in_flight.get(provider, 0)
        status = self._status.get(provider)
        if status is None or (status.running is None and status.waiting is None):
            return ours
        engine = (status.running or 0) + (status.waiting or 0)
        # The engine's figure counts our requests too: only what it had beyond ours is others'.
        return ours + max(engine - self._ours_at_poll.get(provider, 0), 0)

    def _engine(self, provider: str) -> str:
        status = self._status.get(provider)
        return status.engine if status is not None else ("ollama" if provider in self._ollama else "unknown")

    def _slots(self, provider: str) -> int | None:
        """How many requests it runs at once: the engine's figure, else its default."""
        status = self._status.get(provider)
        return status.slots if status is not None and status.slots else DEFAULT_SLOTS.get(self._engine(provider))

    def _untrusted(self, provider: str) -> str | None:
        if not self._privacy.enabled:
            return None
        host = self._hosts.get(provider, "")
        if destination_allowed(host, self._privacy.trusted):
            return None
        return f"privacy mode: {self.addresses.get(provider)} is not in privacy.trusted_hosts"

    def _view(self, provider: str, model: str, cooling: frozenset[str]) -> BackendView:
        status = self._status.get(provider)
        loaded = status.loaded_model(model) if status is not None else None
        if loaded is None and status is not None and status.serves_any and status.loaded:
            loaded = status.loaded[0]  # a single-model llama-server answers to any name
        fit = loaded.context if loaded is not None else None
        if fit is None:
            fits = self._fits.get(provider, {})
            fit = fits.get(model) or fits.get(_ollama_key(f"{provider}/{model}").partition("/")[2])
        return BackendView(
            provider=provider,
            model=model,
            down=self._down.get(provider),
            untrusted=self._untrusted(provider),
            installed=status.has(model) if status is not None and status.up else None,
            loaded=_loaded(status, loaded is not None),
            loaded_context=loaded.context if loaded is not None else None,
            busy=self._busy(provider),
            slots=self._slots(provider),
            fit_context=fit,
            cooling=f"{provider}/{model}" in cooling,
        )

    def views(self, pool: str) -> list[BackendView]:
        cooling = self._cooldowns.cooling()
        return [self._view(p, m, cooling) for p, m in self.pools[pool]]

    def session(self, pool: str, request: ChatRequest) -> str:
        """The key a session sticks by: the session id the client sends (OpenCode's
        x-session-id, Claude Code's, Codex's), else its opening (system prompt and first
        message: agents share a system prompt, so that alone would make every session one)."""
        if request.session_id:
            return f"{pool}\0{request.session_id}"
        opening = orjson.dumps(request.messages[:2], option=orjson.OPT_SORT_KEYS)
        return f"{pool}\0" + hashlib.blake2b(opening, digest_size=16).hexdigest()

    def choose(self, pool: str, request: ChatRequest, prompt_tokens: int | None = None) -> Ranking:
        """The pool's backends in the order to try them for `request` (memory only)."""
        views = self.views(pool)
        need = None
        if any(v.loaded and v.loaded_context for v in views):
            prompt = (
                prompt_tokens if prompt_tokens is not None else estimate_prompt_tokens(request.messages, request.tools)
            )
            need = prompt + self.settings.context.output_room(request.max_tokens)
        sticky = self._sticky.get(self.session(pool, request)) if self._sticky_on else None
        return rank(pool, views, need_tokens=need, sticky=sticky)

    def begin(self, provider: str) -> None:
        with self._lock:
            self._in_flight[provider] = self._in_flight.get(provider, 0) + 1

    def end(self, provider: str) -> None:
        with self._lock:
            self._in_flight[provider] = max(self._in_flight.get(provider, 0) - 1, 0)

    def failed(self, provider: str, exc: UpstreamError) -> None:
        """A request could not reach the backend: down now, until a poll sees it up."""
        if exc.kind == "connect":
            stamp = datetime.fromtimestamp(self._clock()).strftime("%H:%M:%S")
            with self._lock:
                self._down[provider] = f"connect failed at {stamp}"
            self.updated.emit(self.states())

    def served(self, pool: str, provider: str, request: ChatRequest) -> None:
        """The backend answered this session: its next turn goes there too."""
        if not self._sticky_on:
            return
        key = self.session(pool, request)
        with self._lock:
            self._sticky[key] = provider
            self._sticky.move_to_end(key)
            while len(self._sticky) > STICKY_SESSIONS:
                self._sticky.popitem(last=False)

    def plan_cooling(self, cooling: frozenset[str]) -> frozenset[str]:
        """Cooling ids as routing should see them: a pooled member counts as cooling only when
        no member of its pool can serve (the executor picks among members itself)."""
        if not self._pool_of or not cooling:
            return cooling
        out = set()
        for ref in cooling:
            pool = self.pool_of(ref)
            if pool is None or all(f"{p}/{m}" in cooling or p in self._down for p, m in self.pools[pool]):
                out.add(ref)
        return frozenset(out)

    def pool_members(self, pool: str) -> list[str]:
        return [f"{p}/{m}" for p, m in self.pools[pool]]

    # -- health ---------------------------------------------------------------------------

    def states(self) -> list[BackendState]:
        cooling = self._cooldowns.cooling()
        errors = {row.model.partition("/")[0]: row.last_error for row in self._cooldowns.status()}
        out = []
        for provider, address in self.addresses.items():
            status = self._status.get(provider)
            pools = tuple(name for name, members in self.pools.items() if any(p == provider for p, _ in members))
            down = self._down.get(provider)
            out.append(
                BackendState(
                    provider=provider,
                    engine=self._engine(provider),
                    address=address,
                    pools=pools,
                    up=None if status is None and down is None else (status is not None and status.up and not down),
                    down_reason=down,
                    loaded=tuple((m.name, m.context) for m in status.loaded) if status else (),
                    in_flight=self._in_flight.get(provider, 0),
                    running=status.running if status else None,
                    waiting=status.waiting if status else None,
                    busy=self._busy(provider),
                    slots=self._slots(provider),
                    cooling=tuple(sorted(r for r in cooling if r.partition("/")[0] == provider)),
                    last_error=down or (status.problem if status else None) or errors.get(provider),
                    checked_at=status.checked_at if status else None,
                )
            )
        return out
