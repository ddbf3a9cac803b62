"""Postgres connections for the three databases and the SQL migration runner.

Migrations are plain, numbered SQL files under `exports/migrations/<database>/`, applied in order
inside a transaction each, and recorded in `schema_migrations`; re-running is a no-op.
"""

from __future__ import annotations

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
    embedded.ensure_running(settings)
    return embedded.server_url(settings, embedded.DATABASES[which])


def connect(which: Database, settings: Settings | None = None, *, autocommit: bool = False,
            dict_rows: bool = False) -> psycopg.Connection:
    """A new connection that gives up instead of hanging: connecting (TCP + start-up handshake)
    is bounded by settings.database_connect_timeout_seconds, and every statement on the app
    database by settings.database_statement_timeout_seconds. Both surface as
    psycopg.OperationalError, which the API answers as 503 with Retry-After (api/errors.py)."""
    settings = settings or get_settings()
    extra = {}
    if which == "app":
        # A startup option, so it costs no extra round trip; SET LOCAL overrides it (migrate()).
        extra["options"] = f"-c statement_timeout={int(settings.database_statement_timeout_seconds * 1000)}"
    return psycopg.connect(database_url(which, settings), autocommit=autocommit,
                           row_factory=dict_row if dict_rows else psycopg.rows.tuple_row,
                           connect_timeout=settings.database_connect_timeout_seconds, **extra)


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
