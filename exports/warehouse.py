"""Access to the ClickHouse warehouse through clickhouse-connect, embedded (chdb) or server.

Embedded mode: the chdb engine lets only one process at a time open its data directory. Every
opener goes through `open_warehouse()`, which takes an exclusive advisory lock on a file beside
the data directory, records who holds it, and releases it when the block ends — "open late, close
early". Callers that must not wait (the analyst CLI) pass `wait_seconds=0` and get a
`WarehouseBusy` naming the holder. Against a ClickHouse server the lock is a no-op.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from exports.settings import Settings, get_settings


class WarehouseBusy(RuntimeError):
    """The embedded warehouse is open in another process."""


def _lock_path(settings: Settings) -> Path:
    return settings.chdb_dir.parent / (settings.chdb_dir.name + ".lock")


def _waiting_path(settings: Settings) -> Path:
    return settings.chdb_dir.parent / (settings.chdb_dir.name + ".waiting")


def others_waiting(settings: Settings | None = None, *, within_seconds: float = 1.0) -> bool:
    """Whether another process has been waiting for the embedded warehouse in the last
    `within_seconds` (waiters touch a marker file each time they poll the lock): a long holder
    (a month of statements) hands it over only when someone needs it."""
    settings = settings or get_settings()
    try:
        return time.time() - _waiting_path(settings).stat().st_mtime < within_seconds
    except OSError:
        return False


def _serving_path(settings: Settings) -> Path:
    return settings.chdb_dir.parent / (settings.chdb_dir.name + ".serving")


def mark_serving_on_demand(settings: Settings) -> None:
    """Say that this process holds the embedded warehouse and is claiming on-demand requests
    itself (a statements run between packs, exports/statements/packs.OnDemandRequests)."""
    _serving_path(settings).touch()


def on_demand_served_by_holder(settings: Settings | None = None, *,
                               within_seconds: float = 2.0) -> bool:
    """Whether the warehouse's holder looked for on-demand requests in the last
    `within_seconds`: then a report run of their own would only wait for the warehouse. A holder
    that stopped looking (busy, dead, or done) stops counting within seconds."""
    settings = settings or get_settings()
    try:
        return time.time() - _serving_path(settings).stat().st_mtime < within_seconds
    except OSError:
        return False


def describe_holder(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    try:
        info = json.loads(_lock_path(settings).read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    return f"pid {info.get('pid')} ({info.get('purpose', 'unknown')}, since {info.get('since', '?')})"


@contextmanager
def warehouse_lock(settings: Settings | None = None, *, purpose: str = "",
                   wait_seconds: float = 3600.0) -> Iterator[None]:
    """Hold the embedded warehouse exclusively (no-op for a ClickHouse server)."""
    settings = settings or get_settings()
    if not settings.warehouse_is_embedded:
        yield
        return
    path = _lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                _waiting_path(settings).touch()
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"the embedded warehouse ({settings.chdb_dir}) is in use by "
                        f"{describe_holder(settings)}; try again when it finishes"
                    ) from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "purpose": purpose,
                             "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        fh.flush()
        yield
    finally:
        try:
            fcntl.flock(fh, fcntl.LOCK_UN)
        finally:
            fh.close()


def get_client(settings: Settings | None = None, **kwargs) -> Client:
    """A clickhouse-connect client for the configured warehouse. In embedded mode call this only
    inside `warehouse_lock()` (or use `open_warehouse()`, which does both)."""
    settings = settings or get_settings()
    url = settings.resolved_clickhouse_url
    if url.startswith("chdb:"):
        settings.chdb_dir.mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=url, **kwargs)


@contextmanager
def open_warehouse(settings: Settings | None = None, *, purpose: str = "",
                   wait_seconds: float = 3600.0) -> Iterator[Client]:
    """Lock (embedded mode), open a client, and close both at the end of the block."""
    settings = settings or get_settings()
    with warehouse_lock(settings, purpose=purpose, wait_seconds=wait_seconds):
        client = get_client(settings)
        try:
            yield client
        finally:
            client.close()
