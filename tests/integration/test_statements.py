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


def test_partition_before_its_data_is_available_fails_without_touching_reports(
        demo_platform, dagster_instance):
    """The current month has not ended: the partition fails saying what it waits for; no report
    row is created (late data never fails a report)."""
    from orchestration.defs.statements.assets import statements
    from orchestration.defs.statements.partitions import partition_key

    settings = demo_platform.settings
    now = datetime.now(timezone.utc)
    current = StatementPeriod.from_key(f"{now:%Y-%m}-01")
    account_id = _accounts(settings)[0][0]
    # The current month is not a partition yet (months appear when they end), so the run targets
    # it through the range tags the way a hand-made run would.
    key = str(partition_key(current, shard_of(account_id)))
    result = dg.materialize(
        [statements], instance=dagster_instance, raise_on_error=False,
        tags={"dagster/asset_partition_range_start": key, "dagster/asset_partition_range_end": key})
    assert not result.success
    assert _statement_rows(settings, [account_id], [current]) == []
    assert SHARD_KEYS[shard_of(account_id)] in key
