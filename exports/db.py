"""Postgres connections for the three databases and the SQL migration runner.

Migrations are plain, numbered SQL files under `exports/migrations/<database>/`, applied in order
inside a transaction each, and recorded in `schema_migrations`; re-running is a no-op.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.rows import dict_row

from exports.services import postgres as embedded
from exports.settings import Settings, get_settings

Database = Literal["source", "app", "dagster"]
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def database_url(which: Database, settings: Settings | None = None) -> str:
    """The URL of one of the three databases; starts the embedded server when no URL is set."""
    settings = settings or get_settings()
    configured = {
        "source": settings.source_database_url,
        "app": settings.app_database_url,
        "dagster": settings.dagster_database_url,
    }[which]
    if configured:
        return configured
    _ensure_embedded_running(settings)
    return embedded.server_url(settings, embedded.DATABASES[which])


# Checking that the embedded server runs is a connection of its own (and a file lock): done on
# every connect, it doubled the connections of every caller without a pool (the daemon's
# sensors, the API). Once seen running, a process looks again only after this long; a server
# stopped meanwhile makes connects fail as with any database outage, and is started again then.
EMBEDDED_CHECK_SECONDS = 10.0
_embedded_seen_running: dict[int, float] = {}  # port -> when this process last saw it running


def _ensure_embedded_running(settings: Settings) -> None:
    port = settings.embedded_postgres_port
    seen = _embedded_seen_running.get(port)
    if seen is not None and time.monotonic() - seen < EMBEDDED_CHECK_SECONDS:
        return
    embedded.ensure_running(settings)
    _embedded_seen_running[port] = time.monotonic()


# While a `pooled()` block is open: its settings, and one psycopg_pool pool per kind of connection.
_pooling: list[Settings] = []
_pools: dict[tuple, object] = {}
_pools_lock = threading.Lock()


@contextmanager
def pooled(settings: Settings | None = None, *, max_size: int = 4) -> Iterator[None]:
    """Within the block, `connect()` in this process borrows connections from pools (one per
    database and connection kind, opened on first use) instead of connecting anew each time:
    a report batch makes a few statements per request, and a new connection costs ~10 ms."""
    from psycopg_pool import ConnectionPool

    def make_pool(which: Database, autocommit: bool, dict_rows: bool):
        return ConnectionPool(database_url(which, settings), min_size=1, max_size=max_size,
                              open=True, name=f"payreports-{which}",
                              kwargs={"autocommit": autocommit,
                                      "row_factory": dict_row if dict_rows else psycopg.rows.tuple_row,
                                      **_connect_options(which, settings)})

    settings = settings or get_settings()
    with _pools_lock:
        if _pooling:
            raise RuntimeError("db.pooled() blocks do not nest")
        _pooling.append(settings)
        _pools["factory"] = make_pool
    try:
        yield
    finally:
        with _pools_lock:
            _pooling.clear()
            _pools.pop("factory", None)
            opened = list(_pools.values())
            _pools.clear()
        for pool in opened:
            pool.close()


def connect(which: Database, settings: Settings | None = None, *, autocommit: bool = False,
            dict_rows: bool = False):
    """A connection, used as `with connect(...) as conn:` (commit or roll back, then close or
    give back to the pool), that gives up instead of hanging: connecting (TCP + start-up
    handshake) is bounded by settings.database_connect_timeout_seconds, and every statement on the
    app database by settings.database_statement_timeout_seconds. Both surface as
    psycopg.OperationalError, which the API answers as 503 with Retry-After (api/errors.py)."""
    if _pooling:
        key = (which, autocommit, dict_rows)
        with _pools_lock:
            if _pooling and key not in _pools:
                _pools[key] = _pools["factory"](which, autocommit, dict_rows)
            pool = _pools.get(key)
        if pool is not None:
            return pool.connection()
    settings = settings or get_settings()
    return psycopg.connect(database_url(which, settings), autocommit=autocommit,
                           row_factory=dict_row if dict_rows else psycopg.rows.tuple_row,
                           **_connect_options(which, settings))


def _connect_options(which: Database, settings: Settings) -> dict:
    options: dict = {"connect_timeout": settings.database_connect_timeout_seconds}
    if which == "app":
        # A startup option, so it costs no extra round trip; SET LOCAL overrides it (migrate()).
        options["options"] = f"-c statement_timeout={int(settings.database_statement_timeout_seconds * 1000)}"
    return options


def migrate(which: Literal["source", "app"], settings: Settings | None = None) -> list[str]:
    """Apply pending migrations for one database; return the names applied now."""
    applied_now: list[str] = []
    with connect(which, settings) as conn:
        # A migration may rewrite a big table: no statement timeout for it.
        conn.execute("SET LOCAL statement_timeout = 0")
        # One migrator at a time per database (API, daemon and CLI may all start together).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('payreports.migrate'))")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        for path in sorted((MIGRATIONS_DIR / which).glob("*.sql")):
            if path.name in done:
                continue
            conn.execute(path.read_text())
            conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
            applied_now.append(path.name)
        conn.commit()
    return applied_now


def pg_conninfo_parts(url: str) -> dict[str, str]:
    """host, port, dbname, user, password of a Postgres URL (for ClickHouse's postgresql())."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return {
        "host": str(info.get("host") or "127.0.0.1"),
        "port": str(info.get("port") or "5432"),
        "dbname": str(info.get("dbname") or "postgres"),
        "user": str(info.get("user") or "postgres"),
        "password": str(info.get("password") or ""),
    }
