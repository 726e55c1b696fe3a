"""Writes to the ledger: request rows (a batch in one transaction) and ratings."""

from __future__ import annotations

import functools
import itertools
import sqlite3
import time
from collections.abc import Sequence
from typing import Literal

from router_core.ledger.batch_sums import BatchSums, last_id, sum_batch
from router_core.ledger.entry import LedgerEntry

Rating = Literal["good", "bad"]

# sqlite3 binds int, float and str directly, but sends any other value (None included) through
# its adapter protocol first: a lookup in its adapter registry, then `__adapt__` and
# `__conform__` looked up and their AttributeErrors cleared, all holding the GIL. A row binds
# about nine Nones (no session, no TTFT, no price key...), and those failed lookups were a third
# of what inserting it cost (1.7 of 5.1 µs a row, scratch measurement of the 37-column insert).
# Registered, None is found at the first lookup and handed back as itself (dict.get of a key an
# empty dict lacks: None, in C), which sqlite3 binds as NULL. Process-wide, and a no-op for
# every other sqlite3 user: NULL is what None was bound as before.
_EMPTY: dict[None, None] = {}
sqlite3.register_adapter(type(None), _EMPTY.get)

_COLUMNS = (
    "request_id, started_at, client, session, api, requested_model, route, reason, provider, model, "
    "streamed, outcome, error_kind, fallbacks, input_tokens, output_tokens, cache_read_tokens, "
    "cache_write_tokens, reasoning_tokens, ttft_s, duration_s, decode_tps, cost_usd, price_key, "
    "baseline_model, baseline_cost_usd, energy_wh, energy_cost_usd, savings_usd, "
    "price_note, baseline_input_tokens, baseline_cache_read_tokens, baseline_cache_write_tokens, energy_estimated, "
    "pool, backend, error"
)
_WIDTH = _COLUMNS.count(",") + 1
# The most rows one INSERT statement takes. Every statement is a call into SQLite, around
# which Python's sqlite3 lets go of the GIL and must then win it back from the event loop's
# thread: under load each such hand-over cost the loop ~80 µs (two thread wake-ups), so a
# statement per row (executemany) cost the router far more than the rows' own writing.
MAX_ROWS_PER_STATEMENT = 512


@functools.cache  # a few texts (power-of-two sizes), made once: SQLite's statement cache is keyed by them
def _insert(rows: int, table: str, columns: str, width: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return f"INSERT OR IGNORE INTO {table} ({columns}) VALUES " + ", ".join([one] * rows)


def _row(entry: LedgerEntry) -> tuple[object, ...]:
    r, c, u = entry.record, entry.costing, entry.record.usage
    b = c.baseline_usage
    return (
        r.request_id, r.started_at, r.client, r.session, r.api, r.requested_model, r.route, r.reason,
        r.provider, r.model, int(r.streamed), r.outcome, r.error_kind, "; ".join(r.fallbacks),
        u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens,
        r.ttft_s, r.duration_s, entry.decode_tps, c.cost_usd, c.price_key, c.baseline_model,
        c.baseline_cost_usd, c.energy_wh, c.energy_cost_usd, c.savings_usd,
        c.price_note, b.input_tokens if b else None, b.cache_read_tokens if b else None,
        b.cache_write_tokens if b else None, int(c.energy_estimated), r.pool, r.backend, r.error or None,
    )  # fmt: skip


def insert_entries(
    conn: sqlite3.Connection, entries: Sequence[LedgerEntry], now: float | None = None
) -> BatchSums | None:
    """Insert rows and their tags in one transaction: after a crash the batch is there whole
    or not at all (so a kill loses at most the rows in flight, never half a row). With `now`,
    the rows this batch added are summed in the same transaction (for the running figures,
    batch_sums.py); a row already there (the same request id) is not added, nor counted."""
    if not entries:
        return None
    rows = [_row(entry) for entry in entries]
    tags = [(e.record.request_id, tag) for e in entries for tag in sorted(e.record.tags)]
    conn.execute("BEGIN IMMEDIATE")
    try:
        after = last_id(conn) if now is not None else 0
        _insert_rows(conn, "requests", _COLUMNS, _WIDTH, rows)
        _insert_rows(conn, "request_tags", "request_id, tag", 2, tags)
        sums = sum_batch(conn, after, now) if now is not None else None
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return sums


def _insert_rows(
    conn: sqlite3.Connection, table: str, columns: str, width: int, rows: Sequence[tuple[object, ...]]
) -> None:
    """`rows` in a few statements: chunks of power-of-two sizes (a batch of 300 rows is 256 +
    32 + 8 + 4), so the statement cache holds a handful of texts whatever the batch sizes, and
    none holds more host parameters than this SQLite allows (999 before 3.32)."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width
    size = 1 << (min(MAX_ROWS_PER_STATEMENT, limit).bit_length() - 1)
    start = 0
    while start < len(rows):
        while size > len(rows) - start:
            size >>= 1
        chunk = rows[start : start + size]
        # chain: the rows' values flattened in C (a nested comprehension cost 0.6 µs a row)
        conn.execute(_insert(size, table, columns, width), list(itertools.chain.from_iterable(chunk)))
        start += size


def insert_entry(conn: sqlite3.Connection, entry: LedgerEntry) -> None:
    """Insert one row and its tags in one transaction."""
    insert_entries(conn, [entry])


def last_response(conn: sqlite3.Connection, session: str | None) -> str | None:
    """The request id of the latest answered request (of `session`, when given)."""
    query = "SELECT request_id FROM requests WHERE outcome NOT IN ('error', 'refused')"
    args: tuple[str, ...] = ()
    if session is not None:
        query += " AND session = ?"
        args = (session,)
    row = conn.execute(query + " ORDER BY started_at DESC, id DESC LIMIT 1", args).fetchone()
    return str(row[0]) if row else None


def request_exists(conn: sqlite3.Connection, request_id: str) -> bool:
    return conn.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone() is not None


def rate(conn: sqlite3.Connection, request_id: str, rating: Rating) -> None:
    """Attach (or replace) a rating on one response."""
    conn.execute(
        "INSERT INTO ratings (request_id, rating, rated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(request_id) DO UPDATE SET rating = excluded.rating, rated_at = excluded.rated_at",
        (request_id, rating, time.time()),
    )
