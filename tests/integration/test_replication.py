"""Replication Postgres -> ClickHouse raw.*: full load equals the source, later runs are
incremental and updated rows replace their old versions under FINAL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exports import db, replication
from exports.services import postgres as embedded
from exports.settings import Settings
from exports.warehouse import open_warehouse
from tests.fixtures.services import free_port

pytestmark = pytest.mark.integration


def test_full_replication_equals_source(demo_platform):
    settings = demo_platform.settings
    assert all(r.full_load for r in demo_platform.replication)
    pulled = {r.table: r.rows_pulled for r in demo_platform.replication}
    assert pulled["payments"] == demo_platform.source_rows["payments"] == 5_000
    with open_warehouse(settings) as client, db.connect("source", settings) as conn:
        for table in replication.REPLICATED_TABLES:
            rec = replication.reconcile_table(client, table, settings)
            assert rec.matches, (table, rec.differences)
            source_count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert pulled[table] == source_count, table
            # Every column, not only amounts: an order-independent fingerprint of the rows.
            assert rec.source["row_count"] == source_count
        source_refunded = conn.execute("SELECT sum(amount_refunded), count(*) FILTER (WHERE status = 'refunded') "
                                       "FROM payments").fetchone()
        warehouse_refunded = client.query("SELECT sum(amount_refunded), countIf(status = 'refunded') "
                                          "FROM raw.payments FINAL").result_rows[0]
        assert tuple(int(v) for v in source_refunded) == tuple(int(v) for v in warehouse_refunded)
        column_types = dict(client.query(
            "SELECT name, type FROM system.columns WHERE database = 'raw' AND table = 'payments'").result_rows)
    assert column_types["updated_at"] == "DateTime64(6, 'UTC')"
    assert column_types["_synced_at"] == "DateTime64(6, 'UTC')"
    assert column_types["amount"] == "Int64"
    assert column_types["customer_id"] == "Nullable(String)"
    watermarks = replication.get_watermarks(settings)
    assert set(watermarks) == set(replication.REPLICATED_TABLES)
    # Live, not the fixture's snapshot: other tests (a dg.materialize run) may re-sync the
    # session's platform and advance the watermarks.
    assert replication.replicated_through(settings) == min(mark for mark, _, _ in watermarks.values())


@pytest.fixture(scope="module")
def private_source(postgres: Settings) -> Settings:
    """A private Postgres + warehouse: this module mutates the source, which the session's demo
    platform must not see. (Under the session state dir, whose permissions the embedded server's
    system user already has.)"""
    settings = Settings(state_dir=postgres.state_dir / "replication-private", embedded_postgres_port=free_port())
    embedded.ensure_running(settings)
    db.migrate("source", settings)
    db.migrate("app", settings)
    yield settings
    embedded.stop(settings)


def _changed_since(settings: Settings, table: str, since: datetime) -> int:
    with db.connect("source", settings) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE updated_at > %s", (since,)).fetchone()[0]


def test_second_run_pulls_only_changed_rows_and_final_shows_new_versions(private_source):
    from exports.source.generator import generate_platform
    from exports.source.mutations import mutate_recent

    settings = private_source
    today = datetime.now(UTC).date()
    generate_platform(settings, seed=11, payments=600, days=20, end_date=today - timedelta(days=1))
    with open_warehouse(settings) as client:
        first = {r.table: r for r in replication.sync_all(client, settings)}
        assert all(r.full_load for r in first.values())
        again = {r.table: r for r in replication.sync_all(client, settings)}
        # Nothing changed: only rows inside the overlap window could be re-read.
        for table, result in again.items():
            low = first[table].watermark - timedelta(seconds=settings.replication_overlap_seconds)
            assert result.rows_pulled == _changed_since(settings, table, low), table
            assert not result.full_load

        with db.connect("source", settings) as conn:
            before = dict(conn.execute("SELECT id, amount_refunded FROM payments").fetchall())
        summary = mutate_recent(settings, seed=3, refunds=5)
        with db.connect("source", settings) as conn:
            after = dict(conn.execute("SELECT id, amount_refunded FROM payments").fetchall())
        refunded = {pid for pid in after if after[pid] != before.get(pid)}
        assert refunded, summary

        expected = {t: _changed_since(settings, t, again[t].watermark
                                      - timedelta(seconds=settings.replication_overlap_seconds))
                    for t in replication.REPLICATED_TABLES}
        third = {r.table: r for r in replication.sync_all(client, settings)}
        for table in replication.REPLICATED_TABLES:
            assert third[table].rows_pulled == expected[table], table
        assert third["payments"].rows_pulled >= len(refunded)
        assert third["payments"].rows_pulled < 600  # incremental, not a reload
        assert third["refunds"].rows_pulled >= len(refunded)

        final = dict(client.query(
            "SELECT id, amount_refunded FROM raw.payments FINAL WHERE id IN {ids:Array(String)}",
            parameters={"ids": sorted(refunded)}).result_rows)
        assert final == {pid: after[pid] for pid in refunded}
        # Old versions are still stored until a merge; FINAL hides them.
        versions = client.query("SELECT count() FROM raw.payments WHERE id IN {ids:Array(String)}",
                                parameters={"ids": sorted(refunded)}).result_rows[0][0]
        assert versions >= 2 * len(refunded)
        for table in replication.REPLICATED_TABLES:
            rec = replication.reconcile_table(client, table, settings)
            assert rec.matches, (table, rec.differences)
    assert replication.replicated_through(settings) == min(r.watermark for r in third.values())


def test_replicated_through_is_none_until_every_table_synced(private_source):
    settings = Settings(state_dir=private_source.state_dir, embedded_postgres_port=private_source.embedded_postgres_port)
    with db.connect("app", settings) as conn:
        saved = conn.execute("SELECT table_name, watermark, rows_pulled, synced_at FROM replication_watermarks "
                             "WHERE table_name = 'disputes'").fetchone()
        conn.execute("DELETE FROM replication_watermarks WHERE table_name = 'disputes'")
        conn.commit()
    try:
        assert replication.replicated_through(settings) is None
        assert replication.data_available_end(settings) is None
    finally:
        if saved:
            with db.connect("app", settings) as conn:
                conn.execute("INSERT INTO replication_watermarks VALUES (%s, %s, %s, %s)", saved)
                conn.commit()


def test_unknown_table_is_rejected(private_source):
    with open_warehouse(private_source) as client, pytest.raises(ValueError, match="not a replicated table"):
        replication.sync_table(client, "pg_authid", private_source)


def test_replication_is_exact_whatever_the_source_session_timezone(private_source, monkeypatch):
    """A source database whose sessions default to Asia/Kolkata (+5:30): the window and the
    timestamps read must still be exact (ClickHouse's postgresql() works in session wall-clock
    time), and a session that would shift timestamps is refused with the fix named."""
    from exports.services import postgres as embedded
    from exports.source.generator import generate_platform
    from exports.source.mutations import mutate_recent

    settings = private_source
    source_db = db.pg_conninfo_parts(db.database_url("source", settings))["dbname"]
    with db.connect("source", settings) as conn:
        empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM payments)").fetchone()[0]
    if empty:
        generate_platform(settings, seed=11, payments=600, days=20,
                          end_date=datetime.now(UTC).date() - timedelta(days=1))
    import psycopg

    with psycopg.connect(embedded.server_url(settings), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE \"{source_db}\" SET timezone TO 'Asia/Kolkata'")
    monkeypatch.delenv("PGTZ", raising=False)  # as a fresh process would start
    try:
        with open_warehouse(settings) as client:
            replication.sync_all(client, settings)
            mutate_recent(settings, seed=5, refunds=5)
            with psycopg.connect(db.database_url("source", settings)) as conn:
                conn.execute("SET TimeZone = 'Asia/Kolkata'")
                changed = dict(conn.execute(
                    "SELECT id, updated_at FROM payments WHERE updated_at > now() - interval '10 minutes'"
                ).fetchall())
            assert changed
            replication.sync_all(client, settings)
            raw = dict(client.query(
                "SELECT id, updated_at FROM raw.payments FINAL WHERE id IN {ids:Array(String)}",
                parameters={"ids": sorted(changed)}).result_rows)
            assert {k: v.replace(tzinfo=UTC) for k, v in raw.items()} == {
                k: v.astimezone(UTC) for k, v in changed.items()}
            for table in replication.REPLICATED_TABLES:
                rec = replication.reconcile_table(client, table, settings)
                assert rec.matches, (table, rec.differences)
            monkeypatch.setenv("PGTZ", "Asia/Kolkata")  # what an unpinned ClickHouse server does
            with pytest.raises(replication.SourceSessionTimezoneError, match="PGTZ=UTC"):
                replication.check_source_session_timezone(client, "payments", settings)
    finally:
        monkeypatch.setenv("PGTZ", "UTC")
        with psycopg.connect(embedded.server_url(settings), autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE \"{source_db}\" RESET timezone")
