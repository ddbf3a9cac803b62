"""Incremental replication of the payment source (Postgres) into ClickHouse `raw.*`.

ClickHouse pulls the rows itself through its `postgresql()` table function, so no row passes
through Python: `INSERT INTO raw.t SELECT ... FROM postgresql(...) WHERE updated_at in window`.
Each table's window is (last watermark - overlap, high mark], where the high mark is the source's
`now()` read before the pull. The overlap re-reads rows whose transaction committed late with an
older `updated_at`; raw tables are `ReplacingMergeTree(updated_at)`, so re-pulled and updated
rows collapse to their newest version under `FINAL`. A table without a watermark is loaded in full.

The watermark of each table lives in the app database (`replication_watermarks`). Replication
alone does not make data reportable: "data available up to T" means the marts reports read were
built through T, so after every successful dbt model build the launcher (dbt_project/chdb_dbt.py,
used by Dagster, the CLI and the tests alike) records the oldest watermark that build consumed
(`record_model_builds`, table `marts_builds`), and `data_available_end` reads the oldest over the
models reports read (`REPORT_MODELS`) — without opening the warehouse.

Source session timezone: ClickHouse's postgresql() reads timestamptz values as the wall-clock
text of its Postgres session (dropping the offset) and sends the window bounds as zone-less text,
so both are right only in a session whose TimeZone is UTC — a source database or role set to
e.g. Asia/Kolkata would shift every timestamp by 5:30 and pull the wrong window. The session
TimeZone comes from libpq's PGTZ: for the embedded engine (chdb runs libpq in this process)
`sync_table` sets PGTZ=UTC; a ClickHouse server needs PGTZ=UTC in its environment or the
replication role pinned (`ALTER ROLE <user> SET timezone = 'UTC'`). Every sync verifies it
(`check_source_session_timezone`) and refuses to pull through a shifted session.

Pure Python: Dagster assets and the CLI both call `sync_table` with a client from
`exports.warehouse.open_warehouse()`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from clickhouse_connect.driver.client import Client

from exports import db
from exports.reports.types.buckets import PREAGGREGATES
from exports.settings import Settings, get_settings

# Parents first: the order a full load should follow so marts never see a child before its parent.
REPLICATED_TABLES: tuple[str, ...] = (
    "currencies", "accounts", "customers", "payments", "refunds", "disputes", "payouts",
    "balance_transactions",
)
_PRIMARY_KEY = {"currencies": "code"}

# Money columns that never change after a row is created: their sums over rows created up to the
# watermark must be identical in Postgres and in the warehouse (the replication asset check).
IMMUTABLE_AMOUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "currencies": (), "accounts": (), "customers": (),
    "payments": ("amount",), "refunds": ("amount",), "disputes": ("amount",),
    "payouts": ("amount",), "balance_transactions": ("amount", "fee", "net"),
}

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class SyncResult:
    table: str
    rows_pulled: int
    watermark: datetime  # the new high mark (source now() at the start of this pull)
    previous_watermark: datetime | None  # None: this was a full load
    seconds: float

    @property
    def full_load(self) -> bool:
        return self.previous_watermark is None


@dataclass(frozen=True)
class TableReconciliation:
    """Source vs warehouse for rows created up to the table's watermark."""

    table: str
    watermark: datetime | None
    source: dict[str, int]  # row_count and sum_<column> per immutable amount column
    warehouse: dict[str, int]

    @property
    def matches(self) -> bool:
        return self.source == self.warehouse

    @property
    def differences(self) -> dict[str, dict[str, int]]:
        return {k: {"source": self.source[k], "warehouse": self.warehouse.get(k, 0)}
                for k in self.source if self.source[k] != self.warehouse.get(k, 0)}


def _check_table(table: str) -> str:
    if table not in REPLICATED_TABLES:
        raise ValueError(f"{table!r} is not a replicated table (one of {', '.join(REPLICATED_TABLES)})")
    return table


def _source_parameters(settings: Settings) -> dict[str, str]:
    """Connection parts for ClickHouse's postgresql(), bound as server-side parameters."""
    parts = db.pg_conninfo_parts(db.database_url("source", settings))
    return {
        "pg_host": settings.source_host_for_clickhouse or f"{parts['host']}:{parts['port']}",
        "pg_db": parts["dbname"],
        "pg_user": parts["user"],
        "pg_password": parts["password"],
    }


def _postgresql(table: str) -> str:
    return (f"postgresql({{pg_host:String}}, {{pg_db:String}}, '{_check_table(table)}', "
            "{pg_user:String}, {pg_password:String})")


def raw_table(table: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"`{settings.warehouse_raw_database}`.`{_check_table(table)}`"


def _warehouse_type(source_type: str) -> str:
    # postgresql() reports timestamptz as zone-less DateTime64(6); the warehouse contract is UTC.
    if source_type == "DateTime64(6)":
        return "DateTime64(6, 'UTC')"
    if source_type == "Nullable(DateTime64(6))":
        return "Nullable(DateTime64(6, 'UTC'))"
    return source_type


def source_columns(client: Client, table: str, settings: Settings | None = None) -> list[tuple[str, str]]:
    """(name, ClickHouse type) of a source table, as ClickHouse's postgresql() infers them."""
    settings = settings or get_settings()
    rows = client.query(f"DESCRIBE TABLE {_postgresql(table)}",
                        parameters=_source_parameters(settings)).result_rows
    return [(row[0], _warehouse_type(row[1])) for row in rows]


def ensure_raw_tables(client: Client, settings: Settings | None = None) -> list[str]:
    """Create the raw database and any missing raw table; return the tables created now."""
    settings = settings or get_settings()
    client.command(f"CREATE DATABASE IF NOT EXISTS `{settings.warehouse_raw_database}`")
    existing = {row[0] for row in client.query(
        "SELECT name FROM system.tables WHERE database = {db:String}",
        parameters={"db": settings.warehouse_raw_database}).result_rows}
    created = []
    for table in REPLICATED_TABLES:
        if table in existing:
            continue
        columns = ",\n  ".join(f"`{name}` {ctype}" for name, ctype in source_columns(client, table, settings))
        client.command(
            f"CREATE TABLE IF NOT EXISTS {raw_table(table, settings)} (\n  {columns},\n"
            f"  `_synced_at` DateTime64(6, 'UTC')\n)\n"
            f"ENGINE = ReplacingMergeTree(updated_at) ORDER BY {_PRIMARY_KEY.get(table, 'id')}"
        )
        created.append(table)
    return created


def get_watermarks(settings: Settings | None = None) -> dict[str, tuple[datetime, int, datetime]]:
    """table -> (watermark, rows_pulled, synced_at) for every table synced at least once."""
    with db.connect("app", settings) as conn:
        rows = conn.execute(
            "SELECT table_name, watermark, rows_pulled, synced_at FROM replication_watermarks"
        ).fetchall()
    return {name: (mark, pulled, synced) for name, mark, pulled, synced in rows}


def replicated_through(settings: Settings | None = None) -> datetime | None:
    """The raw tables hold every source change before this: the oldest watermark over all
    replicated tables, or None while any table has never been synced. Reads Postgres only."""
    with db.connect("app", settings) as conn:
        count, oldest = conn.execute(
            "SELECT count(*), min(watermark) FROM replication_watermarks WHERE table_name = ANY(%s)",
            (list(REPLICATED_TABLES),),
        ).fetchone()
    return oldest if count == len(REPLICATED_TABLES) else None


# The marts report queries read (exports/reports/types/*): data is reportable up to the oldest
# time any of them is built through.
REPORT_MODELS: tuple[str, ...] = ("dim_accounts", "fct_balance_transactions", "fct_payments",
                                  "fct_payouts", *PREAGGREGATES)


def record_model_builds(built_through: dict[str, datetime], settings: Settings | None = None, *,
                        invocation: str | None = None) -> None:
    """After dbt built `model` from raw tables replicated through `built_through[model]`. A
    model's time never moves backwards (a slow build finishing after a newer one)."""
    settings = settings or get_settings()
    with db.connect("app", settings) as conn:
        for model, through in built_through.items():
            conn.execute(
                "INSERT INTO marts_builds (marts_database, model, built_through, built_at, dbt_invocation) "
                "VALUES (%s, %s, %s, now(), %s) ON CONFLICT (marts_database, model) DO UPDATE SET "
                "built_through = GREATEST(marts_builds.built_through, EXCLUDED.built_through), "
                "built_at = now(), dbt_invocation = EXCLUDED.dbt_invocation",
                (settings.warehouse_marts_database, model, through, invocation))
        conn.commit()


def model_built_through(settings: Settings | None = None) -> dict[str, datetime]:
    """model -> the replication time its last build consumed, for this marts database."""
    settings = settings or get_settings()
    with db.connect("app", settings) as conn:
        rows = conn.execute("SELECT model, built_through FROM marts_builds WHERE marts_database = %s",
                            (settings.warehouse_marts_database,)).fetchall()
    return dict(rows)


def marts_built_through(settings: Settings | None = None) -> datetime | None:
    """The oldest built-through time over REPORT_MODELS, or None while one was never built."""
    built = model_built_through(settings)
    if not all(model in built for model in REPORT_MODELS):
        return None
    return min(built[model] for model in REPORT_MODELS)


def data_available_end(settings: Settings | None = None) -> datetime | None:
    """Reports may cover time strictly before this: when the marts were last built through
    (never past what is replicated now, should the raw tables have been reset), or None before
    the first build. The report's data version. Reads Postgres only."""
    settings = settings or get_settings()
    built, replicated = marts_built_through(settings), replicated_through(settings)
    if built is None or replicated is None:
        return None
    return min(built, replicated)


def _raw_is_empty(client: Client, table: str, settings: Settings) -> bool:
    return not client.query(f"SELECT 1 FROM {raw_table(table, settings)} LIMIT 1").result_rows


def _source_now(settings: Settings) -> datetime:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT now()").fetchone()[0]


def _utc_text(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def _add_new_columns(client: Client, table: str, columns: list[tuple[str, str]],
                     settings: Settings) -> None:
    """Columns a later source migration added (e.g. 0002's invoice_id) join the raw table; rows
    pulled before read them as NULL until they change and are pulled again."""
    have = {row[0] for row in client.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        parameters={"db": settings.warehouse_raw_database, "t": table}).result_rows}
    previous = None
    for name, ctype in columns:
        if name not in have:  # in source order, before _synced_at (ClickHouse has no BEFORE)
            place = f"AFTER `{previous}`" if previous else "FIRST"
            client.command(f"ALTER TABLE {raw_table(table, settings)} "
                           f"ADD COLUMN IF NOT EXISTS `{name}` {ctype} {place}")
        previous = name


class SourceSessionTimezoneError(RuntimeError):
    """ClickHouse's Postgres session is not in UTC: timestamps would be shifted."""


def pin_source_session_timezone(settings: Settings) -> None:
    """Make the embedded engine's Postgres sessions UTC (libpq reads PGTZ when it connects)."""
    if settings.warehouse_is_embedded:
        os.environ["PGTZ"] = "UTC"


def check_source_session_timezone(client: Client, table: str, settings: Settings | None = None) -> None:
    """Read the newest and the oldest row's timestamps through ClickHouse and through psycopg;
    if they differ, ClickHouse's session shifts timestamps: raise, naming the fix."""
    settings = settings or get_settings()
    key = _PRIMARY_KEY.get(_check_table(table), "id")
    with db.connect("source", settings) as conn:
        probes = conn.execute(
            f"(SELECT {key}, updated_at FROM {table} ORDER BY updated_at DESC LIMIT 1) UNION ALL "
            f"(SELECT {key}, created_at FROM {table} ORDER BY created_at LIMIT 1)").fetchall()
        source_tz = conn.execute("SHOW TimeZone").fetchone()[0]
    for (pk, expected), column in zip(probes, ("updated_at", "created_at")):
        got = client.query(f"SELECT {column} FROM {_postgresql(table)} WHERE {key} = {{pk:String}}",
                           parameters={**_source_parameters(settings), "pk": pk}).result_rows
        if got and got[0][0].replace(tzinfo=None) != expected.astimezone(timezone.utc).replace(tzinfo=None):
            raise SourceSessionTimezoneError(
                f"ClickHouse reads {table}.{column} of {pk} as {got[0][0]} but it is "
                f"{expected.astimezone(timezone.utc)} UTC: its Postgres session is not in UTC "
                f"(the source database defaults to {source_tz}). Set PGTZ=UTC in the ClickHouse "
                "server's environment or run ALTER ROLE <replication user> SET timezone = 'UTC'.")


def sync_table(client: Client, table: str, settings: Settings | None = None) -> SyncResult:
    """Pull one table's new and changed rows into raw.<table>, then advance its watermark."""
    settings = settings or get_settings()
    _check_table(table)
    started = time.monotonic()
    pin_source_session_timezone(settings)
    check_source_session_timezone(client, table, settings)
    ensure_raw_tables(client, settings)
    previous = get_watermarks(settings).get(table)
    previous_watermark = previous[0] if previous else None
    if previous_watermark is not None and _raw_is_empty(client, table, settings):
        previous_watermark = None  # the warehouse was reset (or is new): load in full again
    high = _source_now(settings)
    # Every pulled row of this run carries the same _synced_at, which is how we count them
    # exactly afterwards (INSERT ... SELECT reports no row count on every client).
    synced_at = datetime.now(timezone.utc)
    parameters = {**_source_parameters(settings), "high": _utc_text(high), "synced_at": _utc_text(synced_at)}
    window = "updated_at <= {high:DateTime64(6, 'UTC')}"
    if previous_watermark is not None:
        low = previous_watermark - timedelta(seconds=settings.replication_overlap_seconds)
        parameters["low"] = _utc_text(low)
        window = "updated_at > {low:DateTime64(6, 'UTC')} AND " + window
    columns = source_columns(client, table, settings)
    _add_new_columns(client, table, columns, settings)
    names = [name for name, _ in columns]
    column_list = ", ".join(f"`{n}`" for n in names)
    client.command(
        f"INSERT INTO {raw_table(table, settings)} ({column_list}, `_synced_at`) "
        f"SELECT {column_list}, {{synced_at:DateTime64(6, 'UTC')}} FROM {_postgresql(table)} "
        f"WHERE {window}",
        parameters=parameters,
    )
    rows_pulled = int(client.query(
        f"SELECT count() FROM {raw_table(table, settings)} WHERE _synced_at = {{synced_at:DateTime64(6, 'UTC')}}",
        parameters={"synced_at": parameters["synced_at"]},
    ).result_rows[0][0])
    with db.connect("app", settings) as conn:
        conn.execute(
            "INSERT INTO replication_watermarks (table_name, watermark, rows_pulled, synced_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (table_name) DO UPDATE SET "
            "watermark = EXCLUDED.watermark, rows_pulled = EXCLUDED.rows_pulled, synced_at = now()",
            (table, high, rows_pulled),
        )
    return SyncResult(table=table, rows_pulled=rows_pulled, watermark=high,
                      previous_watermark=previous_watermark, seconds=time.monotonic() - started)


def sync_all(client: Client, settings: Settings | None = None) -> list[SyncResult]:
    settings = settings or get_settings()
    return [sync_table(client, table, settings) for table in REPLICATED_TABLES]


def reconcile_table(client: Client, table: str, settings: Settings | None = None) -> TableReconciliation:
    """Row count and immutable amount sums of rows created up to the watermark, both sides."""
    settings = settings or get_settings()
    _check_table(table)
    mark = get_watermarks(settings).get(table)
    watermark = mark[0] if mark else None
    sums = IMMUTABLE_AMOUNT_COLUMNS[table]
    keys = ["row_count", *(f"sum_{c}" for c in sums)]
    if watermark is None:
        return TableReconciliation(table, None, {}, {})
    pg_select = ", ".join(["count(*)", *(f"coalesce(sum({c}), 0)" for c in sums)])
    with db.connect("source", settings) as conn:
        source_row = conn.execute(f"SELECT {pg_select} FROM {table} WHERE created_at <= %s",
                                  (watermark,)).fetchone()
    ch_select = ", ".join(["count()", *(f"sum({c})" for c in sums)])
    warehouse_row = client.query(
        f"SELECT {ch_select} FROM {raw_table(table, settings)} FINAL "
        "WHERE created_at <= {mark:DateTime64(6, 'UTC')}",
        parameters={"mark": _utc_text(watermark)},
    ).result_rows[0]
    return TableReconciliation(
        table, watermark,
        source=dict(zip(keys, (int(v) for v in source_row))),
        warehouse=dict(zip(keys, (int(v) for v in warehouse_row))),
    )
