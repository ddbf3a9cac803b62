"""`PooledPostgresStorage`: Dagster's Postgres storage, keeping its connections open.

Dagster's Postgres storages open a new connection for every operation (SQLAlchemy NullPool), so
that short-lived instances hold none. The daemon and the run processes are not short-lived: an
idle local stack (daemon, code servers, webserver) opened ~38 connections a second to the Dagster
database, mostly the sensor loop re-reading instigator state, each one a new Postgres backend
plus SQLAlchemy's first-connect queries. Those backends used 0.21 of a core with nothing to do,
and ~0.34 of a core during a month-end, on a 2-core machine (docs/capacity.md).

Here each of the three storages keeps a small pool instead, built as `optimize_for_webserver`
builds dagster-webserver's (one connection kept, overflow connections for concurrent threads),
with a ping on checkout so that a connection that died with a database restart is replaced
rather than failing a run's next event write, and without the webserver's statement timeout
(the daemon and the runs make long queries). Dagster's storages do not close their engine on
`dispose()`, since they kept nothing open; these do, so an instance opened for a moment (a sensor
evaluation in a code server) gives its connections back at once. Both touch a private attribute,
which lives with the other Dagster internals in orchestration/dagster_internals.py.

Opt-in in dagster.yaml (`storage: custom: ... PooledPostgresStorage`); `storage: postgres:`
restores Dagster's own behaviour. In production a pooler such as PgBouncer in front of the Dagster
database does this for every client, and works with either.
"""

from __future__ import annotations

from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from orchestration.dagster_internals import dispose_storage_engine, use_pooled_engine

# dagster-webserver's own pool settings: one connection kept, overflow for concurrent threads
# (the daemon ticks sensors on a thread pool), recycled hourly.
POOL_SIZE = 1
POOL_MAX_OVERFLOW = 20
POOL_RECYCLE_SECONDS = 3600


class _KeepsConnections:
    """Mixed into a dagster_postgres storage: the same storage over a pool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        use_pooled_engine(self, pool_size=POOL_SIZE, max_overflow=POOL_MAX_OVERFLOW,
                          pool_recycle=POOL_RECYCLE_SECONDS)

    def optimize_for_webserver(self, statement_timeout: int, pool_recycle: int,
                               max_overflow: int) -> None:
        # The webserver replaces the pool with its own (statement timeout): close this one.
        dispose_storage_engine(self)
        super().optimize_for_webserver(statement_timeout, pool_recycle, max_overflow)

    def dispose(self) -> None:
        super().dispose()
        for storage in (self, *self.disposes_with_it):
            dispose_storage_engine(storage)

    # A DagsterInstance disposes its run and event log storage, not its schedule storage: the
    # run storage closes the schedule storage's connections with its own.
    disposes_with_it: tuple = ()


class PooledRunStorage(_KeepsConnections, PostgresRunStorage):
    pass


class PooledEventLogStorage(_KeepsConnections, PostgresEventLogStorage):
    pass


class PooledScheduleStorage(_KeepsConnections, PostgresScheduleStorage):
    pass


class PooledPostgresStorage(DagsterPostgresStorage):
    """Dagster's Postgres run, event log and schedule storage over pooled connections."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data=None, token_provider=None):
        # Not DagsterPostgresStorage.__init__: it would open three unpooled storages first.
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._storages = tuple(cls(postgres_url, should_autocreate_tables, token_provider=token_provider)
                               for cls in (PooledRunStorage, PooledEventLogStorage, PooledScheduleStorage))
        self.run_storage.disposes_with_it = (self.schedule_storage,)
        super(DagsterPostgresStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # ty: ignore[invalid-method-override]
        return cls(postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data,
                   token_provider=get_token_provider_from_config(config_value))

    @property
    def run_storage(self) -> PostgresRunStorage:
        return self._storages[0]

    @property
    def event_log_storage(self) -> PostgresEventLogStorage:
        return self._storages[1]

    @property
    def schedule_storage(self) -> PostgresScheduleStorage:
        return self._storages[2]
