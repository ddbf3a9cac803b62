"""`payreports ops ...` against the embedded app database and local file store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from cli import app
from exports.requests import store
from exports.storage import get_storage

pytestmark = pytest.mark.integration
runner = CliRunner()


def _new(settings) -> str:
    row, _ = store.create(store.NewRequest(account_id="acct_ops", report_type="ops_cli_test",
                                           parameters={}, format="csv"), settings)
    return row["id"]


def test_queue_retry_and_expire(postgres, tmp_path):
    settings = postgres
    before = json.loads(runner.invoke(app, ["ops", "queue", "--json"]).output)

    failed = _new(settings)
    store.claim_for_processing(failed, "run-1", settings)
    store.fail(failed, "internal error while generating the report", settings)
    _new(settings)  # pending
    after = json.loads(runner.invoke(app, ["ops", "queue", "--json"]).output)
    assert after["failed"] - before["failed"] == 1
    assert after["pending"] - before["pending"] == 1
    assert after["oldest_pending_age_seconds"] >= 0

    result = runner.invoke(app, ["ops", "retry", failed])
    assert result.exit_code == 0, result.output
    row = store.get(failed, settings=settings)
    assert (row["status"], row["attempt_count"], row["error_message"]) == ("pending", 0, None)
    again = runner.invoke(app, ["ops", "retry", failed])  # pending now: not retryable
    assert again.exit_code == 2 and "is pending" in again.output

    # A completed report past its expiry: its file goes, its metadata stays.
    done = _new(settings)
    store.claim_for_processing(done, "run-2", settings)
    source = tmp_path / "r.csv"
    source.write_text("id\n1\n")
    key = f"reports/acct_ops/{done}.csv"
    get_storage(settings).put(source, key)
    store.complete(done, file_key=key, file_size_bytes=5, row_count=1, sha256="0" * 64,
                   manifest={}, data_version=None,
                   expires_at=datetime.now(timezone.utc) - timedelta(minutes=1), settings=settings)
    result = runner.invoke(app, ["ops", "expire-now"])
    assert result.exit_code == 0, result.output
    assert done in result.output
    assert store.get(done, settings=settings)["status"] == "expired"
    assert not get_storage(settings).exists(key)


def test_backfill_rejects_bad_ranges_and_unknown_accounts(postgres):
    result = runner.invoke(app, ["ops", "backfill", "--from", "2024-02-30", "--to", "2024-03"])
    assert result.exit_code == 2 and "--from must be a month like 2026-10" in result.output
    result = runner.invoke(app, ["ops", "backfill", "--from", "2024-03", "--to", "2024-02"])
    assert result.exit_code == 2 and "--to must not be before --from" in result.output
    future = f"{datetime.now(timezone.utc).year + 1}-01"
    result = runner.invoke(app, ["ops", "backfill", "--from", "2024-03", "--to", future])
    assert result.exit_code == 2 and "--to must be a month that has ended" in result.output
    result = runner.invoke(app, ["ops", "backfill", "--from", "2024-03", "--to", "2024-04",
                                 "--account", "acct_nobody"])
    assert result.exit_code == 2 and "no such account: acct_nobody" in result.output
    # `ops refresh` (platform_refresh over days) keeps its own range checks.
    result = runner.invoke(app, ["ops", "refresh", "--from", "2024-03-02", "--to", "2024-03-01"])
    assert result.exit_code == 2 and "--to must not be before --from" in result.output
    from dagster import DagsterInstance

    from exports.dagster_home import prepare_dagster_home

    prepare_dagster_home(postgres)
    with DagsterInstance.get() as instance:  # nothing was submitted
        assert not [b for b in instance.get_backfills() if b.title and "2024-03" in b.title]
