"""The ledger's SQLite file: WAL mode, a versioned schema, migrations in code.

Each migration runs in one transaction with the version bump, so a crash mid-migration
leaves the previous version intact. Add a migration by appending to MIGRATIONS; never edit
one that has shipped.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from router_core.errors import HybridgeError
from router_core.settings import Settings, data_dir

FILE_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_MS = 5000

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: one row per request, its tags, and the ratings users give responses.
    (
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL UNIQUE,
            started_at REAL NOT NULL,            -- Unix time
            client TEXT NOT NULL,                -- user agent
            session TEXT,
            api TEXT NOT NULL,                   -- openai | anthropic
            requested_model TEXT NOT NULL,
            route TEXT NOT NULL,                 -- local | cloud | '' (no candidate ran)
            reason TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            streamed INTEGER NOT NULL,
            outcome TEXT NOT NULL,               -- ok | error | cancelled
            error_kind TEXT,
            fallbacks TEXT NOT NULL DEFAULT '',
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            ttft_s REAL,
            duration_s REAL NOT NULL,
            decode_tps REAL,
            cost_usd REAL,                       -- NULL: unpriced
            price_key TEXT,
            baseline_model TEXT NOT NULL,
            baseline_cost_usd REAL,              -- NULL: the baseline model is unpriced
            energy_wh REAL,                      -- NULL: not measured (or not local)
            energy_cost_usd REAL,
            savings_usd REAL                     -- NULL: unknown (something unpriced)
        )
        """,
        "CREATE INDEX requests_started_at ON requests(started_at)",
        "CREATE INDEX requests_session ON requests(session, started_at)",
        """
        CREATE TABLE request_tags (
            request_id TEXT NOT NULL,
            tag TEXT NOT NULL,
            PRIMARY KEY (request_id, tag)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX request_tags_tag ON request_tags(tag)",
        """
        CREATE TABLE ratings (
            request_id TEXT PRIMARY KEY,
            rating TEXT NOT NULL CHECK (rating IN ('good', 'bad')),
            rated_at REAL NOT NULL
        )
        """,
    ),
    # 2: outcomes refused/interrupted (outcome is free text; `reason` holds the refusal's
    # message for rows no model ran), the price note of unbilled-per-token routes (Ollama
    # cloud), the baseline's cache split, and electricity estimated rather than measured.
    (
        "ALTER TABLE requests ADD COLUMN price_note TEXT",
        "ALTER TABLE requests ADD COLUMN baseline_input_tokens INTEGER",
        "ALTER TABLE requests ADD COLUMN baseline_cache_read_tokens INTEGER",
        "ALTER TABLE requests ADD COLUMN baseline_cache_write_tokens INTEGER",
        "ALTER TABLE requests ADD COLUMN energy_estimated INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX requests_outcome ON requests(outcome, started_at)",
    ),
    # 3: the error message of a failed or refused request (as its client was told, redacted),
    # for the dashboard's tooltips and `stats --csv`.
    ("ALTER TABLE requests ADD COLUMN error TEXT",),
    # 4: backend pools (routing.pools): the pool a request was served from and the local
    # engine (`host:port`) that served it, so speed and savings can be read per backend.
    (
        "ALTER TABLE requests ADD COLUMN pool TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE requests ADD COLUMN backend TEXT NOT NULL DEFAULT ''",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class LedgerError(HybridgeError):
    """The ledger file cannot be opened or used."""

    kind = "ledger_error"


def ledger_path(settings: Settings) -> Path:
    return Path(settings.ledger.path).expanduser() if settings.ledger.path else data_dir() / FILE_NAME


def connect(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (and create or migrate) the ledger. A connection is used by one thread at a time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (BEGIN ... COMMIT) where they are needed.
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=check_same_thread
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives a killed process (only a power cut can lose the last commits).
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
    except (OSError, sqlite3.Error) as exc:
        raise LedgerError(f"cannot open the ledger {path}: {exc}") from None
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this file has not had yet, each in its own transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if current > SCHEMA_VERSION:
        raise LedgerError(f"the ledger's schema (v{current}) is newer than this Hybridge's (v{SCHEMA_VERSION})")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if schema_version(conn) < version:
                for statement in MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
