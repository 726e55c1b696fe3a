"""Read the ledger for views: totals grouped by model, day or route; per-request rows; tags
with their local share and bad-rating rate (seed 000 found its heavy tags that way)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from router_core.errors import BadRequest
from router_core.ledger.periods import AGGREGATES, day_bounds, month_bounds

GroupBy = Literal["model", "day", "route"]
_AGO = re.compile(r"^(\d+)\s*([hdw])$")
_UNIT_S = {"h": 3600, "d": 86400, "w": 7 * 86400}

# A tag is worth escalating when its local answers are rated bad this often (with enough
# ratings), and at least this many times as often as other local answers.
ESCALATE_MIN_RATINGS = 3
ESCALATE_BAD_RATE = 0.3
ESCALATE_VS_OTHERS = 2.0


def parse_since(text: str, now: float | None = None) -> float:
    """`today`, `month`, `all`, `24h`, `7d`, `2w`, or a date `YYYY-MM-DD` (local time)."""
    now = time.time() if now is None else now
    value = text.strip().lower()
    if value == "today":
        return day_bounds(now)[0]
    if value == "month":
        return month_bounds(now)[0]
    if value == "all":
        return 0.0
    if m := _AGO.match(value):
        return now - int(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        return datetime.strptime(value, "%Y-%m-%d").timestamp()
    except ValueError:
        raise BadRequest(f"--since {text!r}: use today, month, all, 24h, 7d, 2w or YYYY-MM-DD") from None


_GROUPS: Mapping[GroupBy, tuple[str, str]] = {
    # (columns selected, GROUP BY)
    "model": ("route, provider, model", "route, provider, model"),
    "day": ("date(started_at, 'unixepoch', 'localtime') AS day", "day"),
    "route": ("route", "route"),
}


def grouped(conn: sqlite3.Connection, since: float, by: GroupBy) -> list[sqlite3.Row]:
    columns, group = _GROUPS[by]
    order = "day" if by == "day" else "requests DESC"
    return conn.execute(
        f"SELECT {columns}, {AGGREGATES} FROM requests WHERE started_at >= ? GROUP BY {group} ORDER BY {order}",
        (since,),
    ).fetchall()


def totals(conn: sqlite3.Connection, since: float) -> sqlite3.Row:
    row: sqlite3.Row = conn.execute(f"SELECT {AGGREGATES} FROM requests WHERE started_at >= ?", (since,)).fetchone()
    return row


def unpriced_models(conn: sqlite3.Connection, since: float) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT provider || '/' || model FROM requests WHERE started_at >= ? AND cost_usd IS NULL",
        (since,),
    )
    return [str(r[0]) for r in rows]


def baseline_models(conn: sqlite3.Connection, since: float) -> list[tuple[str, bool]]:
    """(baseline model, priced?) used by the rows since `since`."""
    rows = conn.execute(
        "SELECT baseline_model, MAX(baseline_cost_usd IS NOT NULL) FROM requests WHERE started_at >= ? "
        "GROUP BY baseline_model",
        (since,),
    )
    return [(str(r[0]), bool(r[1])) for r in rows]


@dataclass(frozen=True, slots=True)
class BackendFigures:
    """Local answers served by one backend (a provider at an address), for tok/s per backend."""

    provider: str
    backend: str  # host:port
    pools: str  # the pools it served from, comma-separated ("" none)
    requests: int
    output_tokens: int
    decode_tps: float | None  # output tokens over decode time, across its answers
    ttft_s: float | None  # mean time to first token
    savings_usd: float


def backend_figures(conn: sqlite3.Connection, since: float) -> list[BackendFigures]:
    """Each local backend's answers since `since` (outcome ok), busiest first."""
    rows = conn.execute(
        """
        SELECT provider, backend, group_concat(DISTINCT NULLIF(pool, '')) AS pools, COUNT(*) AS requests,
            COALESCE(SUM(output_tokens), 0) AS output_tokens,
            SUM(CASE WHEN decode_tps > 0 THEN output_tokens END) AS timed_tokens,
            SUM(CASE WHEN decode_tps > 0 THEN output_tokens / decode_tps END) AS decode_s,
            AVG(ttft_s) AS ttft_s, COALESCE(SUM(savings_usd), 0.0) AS savings_usd
        FROM requests WHERE route = 'local' AND outcome = 'ok' AND started_at >= ?
        GROUP BY provider, backend ORDER BY requests DESC, provider
        """,
        (since,),
    ).fetchall()
    return [
        BackendFigures(
            provider=r["provider"],
            backend=r["backend"],
            pools=r["pools"] or "",
            requests=r["requests"],
            output_tokens=r["output_tokens"],
            decode_tps=r["timed_tokens"] / r["decode_s"] if r["decode_s"] else None,
            ttft_s=r["ttft_s"],
            savings_usd=r["savings_usd"],
        )
        for r in rows
    ]


REQUEST_COLUMNS = (
    "started_at", "client", "session", "api", "requested_model", "route", "reason", "provider", "model", "streamed",
    "outcome", "error_kind", "fallbacks", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "reasoning_tokens", "ttft_s", "duration_s", "decode_tps", "cost_usd", "price_key", "baseline_model",
    "baseline_cost_usd", "energy_wh", "energy_cost_usd", "savings_usd", "price_note", "baseline_input_tokens",
    "baseline_cache_read_tokens", "baseline_cache_write_tokens", "energy_estimated", "pool", "backend", "error",
)  # fmt: skip


def request_rows(conn: sqlite3.Connection, since: float) -> list[sqlite3.Row]:
    """Every request since `since`, oldest first, with its tags and rating."""
    columns = ", ".join(f"r.{c}" for c in REQUEST_COLUMNS)
    return conn.execute(
        f"SELECT r.request_id, {columns}, "
        "(SELECT group_concat(tag, ' ') FROM request_tags t WHERE t.request_id = r.request_id) AS tags, "
        "g.rating FROM requests r LEFT JOIN ratings g ON g.request_id = r.request_id "
        "WHERE r.started_at >= ? ORDER BY r.started_at, r.id",
        (since,),
    ).fetchall()


@dataclass(frozen=True, slots=True)
class TagFigures:
    tag: str
    requests: int
    local_requests: int
    rated: int
    bad: int
    local_rated: int
    local_bad: int
    conventions: tuple[str, ...]  # path globs that produce this tag
    escalate: bool
    why: str

    @property
    def local_share(self) -> float:
        return self.local_requests / self.requests if self.requests else 0.0

    @property
    def bad_rate(self) -> float | None:
        return self.bad / self.rated if self.rated else None

    @property
    def local_bad_rate(self) -> float | None:
        return self.local_bad / self.local_rated if self.local_rated else None


def tag_figures(
    conn: sqlite3.Connection, since: float, conventions: Mapping[str, str], heavy_tags: tuple[str, ...] | list[str]
) -> list[TagFigures]:
    rows = conn.execute(
        """
        SELECT t.tag AS tag, COUNT(*) AS requests,
            COALESCE(SUM(r.route = 'local'), 0) AS local_requests,
            COALESCE(SUM(g.rating IS NOT NULL), 0) AS rated,
            COALESCE(SUM(g.rating = 'bad'), 0) AS bad,
            COALESCE(SUM(r.route = 'local' AND g.rating IS NOT NULL), 0) AS local_rated,
            COALESCE(SUM(r.route = 'local' AND g.rating = 'bad'), 0) AS local_bad
        FROM request_tags t JOIN requests r ON r.request_id = t.request_id
        LEFT JOIN ratings g ON g.request_id = r.request_id
        WHERE r.started_at >= ?
        GROUP BY t.tag ORDER BY requests DESC, tag
        """,
        (since,),
    ).fetchall()
    overall: Any = conn.execute(
        """
        SELECT COALESCE(SUM(g.rating IS NOT NULL), 0) AS rated, COALESCE(SUM(g.rating = 'bad'), 0) AS bad
        FROM requests r JOIN ratings g ON g.request_id = r.request_id
        WHERE r.route = 'local' AND r.started_at >= ?
        """,
        (since,),
    ).fetchone()
    globs: dict[str, list[str]] = {}
    for glob, tag in conventions.items():
        if tag:
            globs.setdefault(tag, []).append(glob)
    out = []
    for r in rows:
        escalate, why = _escalation(r, overall["rated"], overall["bad"], r["tag"] in heavy_tags)
        out.append(
            TagFigures(
                tag=r["tag"],
                requests=r["requests"],
                local_requests=r["local_requests"],
                rated=r["rated"],
                bad=r["bad"],
                local_rated=r["local_rated"],
                local_bad=r["local_bad"],
                conventions=tuple(globs.get(r["tag"], ())),
                escalate=escalate,
                why=why,
            )
        )
    return out


def _escalation(r: sqlite3.Row, all_rated: int, all_bad: int, already_heavy: bool) -> tuple[bool, str]:
    rated, bad = r["local_rated"], r["local_bad"]
    if already_heavy or rated < ESCALATE_MIN_RATINGS:
        return False, ""
    rate = bad / rated
    if rate < ESCALATE_BAD_RATE:
        return False, ""
    others_rated, others_bad = all_rated - rated, all_bad - bad
    if others_rated >= ESCALATE_MIN_RATINGS:
        others = others_bad / others_rated
        if others > 0 and rate < ESCALATE_VS_OTHERS * others:
            return False, ""
        versus = f" vs {others:.0%} for other local answers"
    else:
        versus = ""
    return True, f"{bad} of {rated} local answers rated bad ({rate:.0%}{versus}): add it to routing.heavy_tags"
