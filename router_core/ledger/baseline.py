"""The baseline priced honestly: what the baseline model would have cost with its prompt cache.

Coding agents resend the whole conversation every turn, and the vendors bill a prefix they
have cached at a fraction of the input price. So, per session (the client's session id,
else its user agent), a request whose prompt begins with everything the session's previous
request sent, within the vendor's cache lifetime, reads that prefix from the cache; the
rest of its prompt is written to the cache (billed at the vendor's write price, which is
the input price where the vendor charges no premium). A prompt below the vendor's minimum
cacheable length is plain input. This is the rule a real cloud request is billed by, and
a real cloud request is priced on its own reported usage; it still moves its session's
cache forward.

"Begins with" is checked exactly: a running hash over the tools and each message, compared
at the previous request's length, so a compacted or edited history earns no cache read.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from router_core.records import RequestRecord
from router_core.types import Usage

MAX_SESSIONS = 4096


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A vendor's prompt cache, as its pricing documentation states it."""

    ttl_s: float  # the lifetime of a cached prefix since its last use
    min_tokens: int  # shorter prompts are not cached at all
    note: str


# Anthropic: 5-minute default cache, at least 1024 tokens (Sonnet/Opus), writes billed 1.25x.
# OpenAI: automatic caching from 1024 tokens, kept 5-10 minutes idle (5 taken), no write price.
# Google: implicit caching from 1024 tokens (2.5 Flash); no write price for implicit caches.
POLICIES = {
    "anthropic": CachePolicy(300.0, 1024, "Anthropic's 5-minute prompt cache"),
    "openai": CachePolicy(300.0, 1024, "OpenAI's automatic prompt cache"),
    "google": CachePolicy(300.0, 1024, "Gemini's implicit prompt cache"),
    "gemini": CachePolicy(300.0, 1024, "Gemini's implicit prompt cache"),
}


def cache_policy(baseline_model: str) -> CachePolicy | None:
    return POLICIES.get(baseline_model.partition("/")[0].lower())


def describe(baseline_model: str) -> str:
    """The one line every view shows about how the baseline is computed."""
    policy = cache_policy(baseline_model)
    if policy is None:
        return f"baseline: every token priced on {baseline_model} as uncached input and output"
    return (
        f"baseline: the same tokens on {baseline_model} with {policy.note} per session "
        f"(the prefix the previous request sent read from cache within {policy.ttl_s / 60:g} min, "
        f"the rest written; prompts under {policy.min_tokens:,} tokens uncached)"
    )


def prefix_hashes(messages: Sequence[Any] | None, tools: Sequence[Any] | None) -> tuple[bytes, ...]:
    """h[i]: a hash of the tools and messages[0..i] (the cached prefix order: tools, then messages)."""
    if not messages:
        return ()
    running = hashlib.blake2b(orjson.dumps(tools or [], option=orjson.OPT_SORT_KEYS), digest_size=12)
    out = []
    for message in messages:
        running.update(orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
        out.append(running.copy().digest())
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Cached:
    at: float
    hashes: tuple[bytes, ...]
    prompt_tokens: int


class BaselineCache:
    """Per-session prompt-cache state of the baseline vendor (the ledger's writer thread)."""

    def __init__(self, baseline_model: str) -> None:
        self.policy = cache_policy(baseline_model)
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, _Cached] = OrderedDict()

    def trim(self, record: RequestRecord) -> None:
        """Drop the conversation from a record whose prompt `usage` will not hash (no cache
        policy, a refusal, a prompt too short to be cached), keeping that it had one (an
        empty list). Called on the event loop's thread as the record is queued: a queued
        record then holds none of the request's parsed JSON, which the garbage collector
        would otherwise walk on that thread for as long as the record waits for its batch."""
        if record.messages is None:
            return
        if (
            self.policy is None
            or record.outcome == "refused"
            or 0 < record.usage.prompt_tokens < self.policy.min_tokens
        ):
            record.messages = []
            record.tools = None

    def usage(self, record: RequestRecord) -> Usage:
        """The usage the baseline model would have billed for `record`."""
        usage = record.usage
        if self.policy is None or record.outcome == "refused":
            return usage
        key = record.session or f"client:{record.client}"
        prompt = usage.prompt_tokens
        if 0 < prompt < self.policy.min_tokens:
            # Too short to be cached, so nothing a later request could read either: the
            # session is forgotten (as storing it would do) without hashing its prompt.
            # (`messages` may have been trimmed to [], which still says there was a prompt.)
            had_messages = record.messages is not None
            if had_messages:
                with self._lock:
                    self._sessions.pop(key, None)
            if record.route != "local" or usage.cache_read_tokens or usage.cache_write_tokens or not had_messages:
                return usage
            return Usage(input_tokens=prompt, output_tokens=usage.output_tokens)
        hashes = prefix_hashes(record.messages, record.tools)
        with self._lock:
            previous = self._sessions.get(key)
            if hashes and prompt:
                self._sessions[key] = _Cached(record.started_at, hashes, prompt)
                self._sessions.move_to_end(key)
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
        if record.route != "local" or usage.cache_read_tokens or usage.cache_write_tokens or not hashes:
            # A real cloud answer is priced on what its vendor reported reading and writing.
            return usage
        if prompt < self.policy.min_tokens:
            return Usage(input_tokens=prompt, output_tokens=usage.output_tokens)
        read = 0
        if (
            previous is not None
            and record.started_at - previous.at <= self.policy.ttl_s
            and previous.prompt_tokens >= self.policy.min_tokens
            and len(hashes) >= len(previous.hashes)
            and hashes[len(previous.hashes) - 1] == previous.hashes[-1]
        ):
            read = min(previous.prompt_tokens, prompt)
        return Usage(
            input_tokens=0, output_tokens=usage.output_tokens, cache_read_tokens=read, cache_write_tokens=prompt - read
        )
