"""Per-account statements end to end: the partitioned `statements` asset renders real files
(through the report processing code) into report_requests, idempotently; the month-end sensor
waits for the data; a backfill through a Dagster instance renders each pack exactly once."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import dagster as dg
import pytest

from exports import db
from exports.requests import store
from exports.statements.items import statement_set
from exports.statements.packs import statement_request_id
from exports.statements.periods import StatementPeriod
from exports.statements.shards import SHARD_KEYS, shard_of
from exports.storage import get_storage

pytestmark = pytest.mark.integration

OCTOBER = StatementPeriod.from_key("2026-10-01")


def _accounts(settings) -> list[tuple[str, str]]:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT id, email FROM accounts ORDER BY id").fetchall()


def _statement_rows(settings, account_ids, periods) -> list[dict]:
    ids = [statement_request_id(a, p, item) for a in account_ids for p in periods
           for item in statement_set(settings)]
    with db.connect("app", settings, dict_rows=True) as conn:
        return conn.execute("SELECT * FROM report_requests WHERE id = ANY(%s) ORDER BY id",
                            (ids,)).fetchall()


def _email_deliveries(settings, request_ids) -> list[dict]:
    with db.connect("app", settings, dict_rows=True) as conn:
        return conn.execute("SELECT * FROM deliveries WHERE request_id = ANY(%s) AND channel = 'email'",
                            (list(request_ids),)).fetchall()


def _all_statement_rows(settings) -> int:
    with db.connect("app", settings) as conn:
        return conn.execute("SELECT count(*) FROM report_requests WHERE source = 'statement'").fetchone()[0]


@pytest.fixture()
def dagster_instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_materializing_a_partition_renders_each_accounts_pack_once(demo_platform, smtp_server,
                                                                    dagster_instance):
    from orchestration.defs.statements.assets import statements
    from orchestration.defs.statements.partitions import partition_key

    settings = demo_platform.settings
    account_id, email = _accounts(settings)[0]
    shard = shard_of(account_id)
    in_shard = [a for a, _ in _accounts(settings) if shard_of(a) == shard]
    key = partition_key(OCTOBER, shard)
    smtp_server.clear()

    result = dg.materialize([statements], partition_key=str(key), instance=dagster_instance)
    assert result.success
    rows = _statement_rows(settings, in_shard, [OCTOBER])
    items = statement_set(settings)
    assert len(rows) == len(in_shard) * len(items) == 3 * len(in_shard)
    assert {r["status"] for r in rows} == {"completed"}, [r["error_message"] for r in rows]
    assert {r["source"] for r in rows} == {"statement"}
    storage = get_storage(settings)
    for row in rows:
        with storage.open(row["file_key"]) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == row["sha256"]
        assert row["parameters"]["interval_start"] == "2026-10-01"
        assert row["expires_at"] is not None  # retention applies as to any report
    mine = [r for r in rows if r["account_id"] == account_id]
    assert sorted((r["report_type"], r["format"]) for r in mine) == sorted(
        (i.report_type, i.format) for i in items)
    pdf = next(r for r in mine if r["format"] == "pdf")
    with storage.open(pdf["file_key"]) as fh:
        assert fh.read(5) == b"%PDF-"
    # Delivered like any report: one email per file to the account's address, and in-app.
    assert len(smtp_server.messages_to(email)) == len(items)

    materialization = dagster_instance.fetch_materializations(statements.key, limit=10).records
    assert [m.partition_key for m in materialization] == [str(key)]
    metadata = materialization[0].event_log_entry.asset_materialization.metadata
    assert metadata["completed"].value == len(rows) and metadata["failed"].value == 0
    assert metadata["manifest"].data["balance.summary:pdf"]["files"] == len(in_shard)

    # Re-running the partition: the same rows and file keys, nothing rendered, no second email.
    before = {r["id"]: (r["file_key"], r["completed_at"]) for r in rows}
    count_before = _all_statement_rows(settings)
    again = dg.materialize([statements], partition_key=str(key), instance=dagster_instance)
    assert again.success
    after = _statement_rows(settings, in_shard, [OCTOBER])
    assert {r["id"]: (r["file_key"], r["completed_at"]) for r in after} == before
    assert _all_statement_rows(settings) == count_before
    assert len(smtp_server.messages_to(email)) == len(items)
    assert len(_email_deliveries(settings, before)) == len(rows)
    latest = dagster_instance.fetch_materializations(statements.key, limit=1).records[0]
    assert latest.event_log_entry.asset_materialization.metadata["rendered_now"].value == 0


def test_a_statements_run_serves_on_demand_requests_between_packs(demo_platform, smtp_server,
                                                                  dagster_instance):
    """In embedded mode an on-demand request made during a month-end is rendered by the
    statements run that holds the warehouse (the report sensor starts no run for it); a
    scheduled one is left to the report runs."""
    from orchestration.defs.statements.assets import statements
    from orchestration.defs.statements.partitions import partition_key

    settings = demo_platform.settings
    account_id, _ = _accounts(settings)[0]
    params = {"interval_start": "2026-10-01", "interval_end": "2026-11-01"}

    def new_request(source: str) -> str:
        row, _ = store.create(store.NewRequest(account_id=account_id, report_type="balance.summary",
                                               parameters=params, format="csv", source=source),
                              settings)
        return row["id"]

    on_demand, scheduled = new_request("api"), new_request("schedule")
    try:
        result = dg.materialize([statements], partition_key=str(partition_key(OCTOBER, shard_of(account_id))),
                                instance=dagster_instance)
        assert result.success
        served = store.get(on_demand, settings=settings)
        assert served["status"] == "completed" and served["dagster_run_id"] == result.run_id
        assert served["file_key"] and served["row_count"]
        assert store.get(scheduled, settings=settings)["status"] == "pending"
    finally:
        store.cancel(scheduled, account_id, settings)


def test_rerun_of_one_account_renders_only_that_account(demo_platform, dagster_instance):
    from orchestration.defs.statements.assets import statements
    from orchestration.defs.statements.partitions import partition_key

    settings = demo_platform.settings
    september = StatementPeriod.from_key("2026-09-01")
    account_id = _accounts(settings)[1][0]
    others = [a for a, _ in _accounts(settings) if a != account_id and shard_of(a) == shard_of(account_id)]
    result = dg.materialize(
        [statements], partition_key=str(partition_key(september, shard_of(account_id))),
        instance=dagster_instance,
        run_config={"ops": {"statements": {"config": {"account_ids": [account_id]}}}})
    assert result.success
    assert {r["status"] for r in _statement_rows(settings, [account_id], [september])} == {"completed"}
    assert _statement_rows(settings, others, [september]) == []

    # A failed file is retried by re-running the partition; the completed ones are left alone.
    failed_id = _statement_rows(settings, [account_id], [september])[0]["id"]
    with db.connect("app", settings) as conn:
        conn.execute("UPDATE report_requests SET status = 'failed', error_message = 'test' "
                     "WHERE id = %s", (failed_id,))
        conn.commit()
    again = dg.materialize(
        [statements], partition_key=str(partition_key(september, shard_of(account_id))),
        instance=dagster_instance,
        run_config={"ops": {"statements": {"config": {"account_ids": [account_id]}}}})
    assert again.success
    rows = _statement_rows(settings, [account_id], [september])
    assert {r["status"] for r in rows} == {"completed"} and len(rows) == 3
    latest = dagster_instance.fetch_materializations(statements.key, limit=1).records[0]
    assert latest.event_log_entry.asset_materialization.metadata["rendered_now"].value == 1


def test_unknown_account_in_config_fails_the_run_naming_it(demo_platform, dagster_instance):
    from orchestration.defs.statements.assets import statements
    from orchestration.defs.statements.partitions import partition_key

    result = dg.materialize(
        [statements], partition_key=str(partition_key(OCTOBER, 0)), instance=dagster_instance,
        run_config={"ops": {"statements": {"config": {"account_ids": ["acct_nope"]}}}},
        raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "acct_nope" in failure.message


@pytest.fixture()
def data_available_until(demo_platform):
    """Pretend replication has only reached a given instant (every table's watermark), then put
    the real watermarks back."""
    settings = demo_platform.settings
    with db.connect("app", settings) as conn:
        saved = conn.execute("SELECT table_name, watermark FROM replication_watermarks").fetchall()

    def set_until(instant: datetime) -> None:
        with db.connect("app", settings) as conn:
            conn.execute("UPDATE replication_watermarks SET watermark = %s", (instant,))
            conn.commit()

    yield set_until
    with db.connect("app", settings) as conn:
        for table, watermark in saved:
            conn.execute("UPDATE replication_watermarks SET watermark = %s WHERE table_name = %s",
                         (watermark, table))
        conn.commit()


def _account_in(settings, timezone_name: str) -> str:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT id FROM accounts WHERE timezone = %s ORDER BY id LIMIT 1",
                            (timezone_name,)).fetchone()[0]


def test_late_data_fails_the_partition_not_the_reports_and_respects_each_timezone(
        demo_platform, dagster_instance, data_available_until):
    """Data through 2026-10-31 20:00 UTC: October has ended in Tokyo (15:00 UTC) but not in New
    York (04:00 UTC on Nov 1). The Tokyo account's partition renders; the New York account's
    fails saying what it waits for and creates no report row. Once the data is there it renders."""
    from orchestration.defs.statements.assets import statements
    from orchestration.defs.statements.partitions import partition_key

    settings = demo_platform.settings
    tokyo, new_york = _account_in(settings, "Asia/Tokyo"), _account_in(settings, "America/New_York")
    assert shard_of(tokyo) != shard_of(new_york)
    august = StatementPeriod.from_key("2026-08-01")
    data_available_until(datetime(2026, 8, 31, 20, tzinfo=timezone.utc))

    def run(account_id: str) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [statements], partition_key=str(partition_key(august, shard_of(account_id))),
            instance=dagster_instance, raise_on_error=False,
            run_config={"ops": {"statements": {"config": {"account_ids": [account_id]}}}})

    assert run(tokyo).success
    late = run(new_york)
    assert not late.success
    message = late.get_step_failure_events()[0].step_failure_data.error.message
    assert "did not complete" in message
    failures = late.get_step_failure_events()[0].step_failure_data.user_failure_data.metadata["failures"].data
    assert "need data through 2026-09-01T04:00:00+00:00" in next(iter(failures.values()))
    assert _statement_rows(settings, [new_york], [august]) == []
    assert {r["status"] for r in _statement_rows(settings, [tokyo], [august])} == {"completed"}

    data_available_until(datetime(2026, 9, 1, 5, tzinfo=timezone.utc))
    assert run(new_york).success
    assert {r["status"] for r in _statement_rows(settings, [new_york], [august])} == {"completed"}


def _run_requested(instance, run_request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Execute a sensor's run request the way the daemon would launch it (same tags)."""
    from orchestration.defs.statements.assets import statements

    return dg.materialize([statements], instance=instance, tags=dict(run_request.tags))


def test_month_end_tick_waits_for_the_data_then_renders_every_account_once(
        demo_platform, dagster_instance, data_available_until):
    from orchestration.defs.statements.assets import DATA_ON_TIME_CHECK, statements
    from orchestration.defs.statements.schedules import month_end_tick

    settings = demo_platform.settings
    accounts = [a for a, _ in _accounts(settings)]
    september = StatementPeriod.from_key("2026-09-01")
    # The latest demo timezone is America/New_York: September ends there at 04:00 UTC Oct 1.
    data_available_until(datetime(2026, 10, 1, 3, tzinfo=timezone.utc))
    rows_before = _all_statement_rows(settings)

    waiting = month_end_tick(dagster_instance, None, datetime(2026, 10, 1, 6, tzinfo=timezone.utc))
    assert isinstance(waiting, dg.SensorResult) and not waiting.run_requests
    assert "waiting for data through 2026-10-01T04:00:00+00:00" in waiting.skip_reason.skip_message
    assert _all_statement_rows(settings) == rows_before  # a tick renders nothing itself

    # Past the deadline (12 h after that end) the wait becomes an alert: a failing check.
    late = month_end_tick(dagster_instance, waiting.cursor, datetime(2026, 10, 1, 17, tzinfo=timezone.utc))
    assert not late.run_requests and "LATE" in late.skip_reason.skip_message
    check_key = dg.AssetCheckKey(statements.key, DATA_ON_TIME_CHECK)
    evaluation = dagster_instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [check_key])[check_key]
    assert evaluation.evaluation.passed is False

    data_available_until(datetime(2026, 10, 1, 5, tzinfo=timezone.utc))
    ready = month_end_tick(dagster_instance, late.cursor, datetime(2026, 10, 1, 18, tzinfo=timezone.utc))
    assert len(ready.run_requests) == 4  # 64 shards, 16 partitions per run
    assert len({r.run_key for r in ready.run_requests}) == 4
    evaluation = dagster_instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [check_key])[check_key]
    assert evaluation.evaluation.passed is True
    for run_request in ready.run_requests:
        assert _run_requested(dagster_instance, run_request).success
    rows = _statement_rows(settings, accounts, [september])
    assert len(rows) == 3 * len(accounts) and {r["status"] for r in rows} == {"completed"}

    after = month_end_tick(dagster_instance, ready.cursor, datetime(2026, 10, 1, 19, tzinfo=timezone.utc))
    assert isinstance(after, dg.SkipReason) and "were requested" in after.skip_message
