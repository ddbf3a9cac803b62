"""Batched report runs and the report lifecycle, in process against the demo platform: one run
processes many requests, a failed request fails its run, actionable causes are said, scheduled
requests wait for their data, operator retries get a fresh run key, and the watchdog never fails
a run that has not started (nor one whose heartbeats only paused).

The session's database is shared with other tests, so every request here gets a priority no
other test uses and the batches run in a lane that claims only that priority."""

from __future__ import annotations

import errno
import os
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from exports import db
from exports.requests import lifecycle, processing, store
from exports.requests.processing import Lane
from exports.storage import get_storage

pytestmark = pytest.mark.integration

PRIORITY = 5000
TEST_LANE = Lane("bulk", PRIORITY, max_requests=50, max_seconds=120, run_priority=0)
PARAMS = {"interval_start": 1790812800, "interval_end": 1793491200}  # 2026-10-01 .. 2026-11-01


def _account(settings) -> str:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 1").fetchone()[0]


def _request(settings, account, *, parameters=PARAMS, source="api", report_type="balance.summary.1"):
    row, _ = store.create(store.NewRequest(account_id=account, report_type=report_type,
                                           parameters=parameters, format="csv", source=source,
                                           priority=PRIORITY), settings)
    return row["id"]


@pytest.fixture
def test_lane(monkeypatch):
    """report_job's bulk lane claims only this module's requests."""
    import orchestration.defs.reports.jobs as jobs

    monkeypatch.setitem(jobs.LANES, "bulk", TEST_LANE)
    return TEST_LANE


def _execute_batch(instance=None):
    from orchestration.defs.reports.jobs import report_job

    instance = instance or dg.DagsterInstance.ephemeral()
    result = report_job.execute_in_process(
        run_config={"ops": {"process_report_batch": {"config": {"lane": "bulk"}}}},
        instance=instance, raise_on_error=False)
    return result, instance.get_run_by_id(result.run_id)


def test_one_run_processes_a_batch_and_fails_when_a_request_fails(demo_platform, test_lane):
    settings = demo_platform.settings
    account = _account(settings)
    ids = [_request(settings, account) for _ in range(6)]
    result, run = _execute_batch()
    assert result.success
    rows = [store.get(i, settings=settings) for i in ids]
    assert [r["status"] for r in rows] == ["completed"] * 6
    assert {r["dagster_run_id"] for r in rows} == {result.run_id}  # one run for all six
    assert all(get_storage(settings).exists(r["file_key"]) for r in rows)
    assert run.tags["payreports/requests"] == "6" and run.tags["payreports/completed"] == "6"
    assert run.tags["payreports/summary"] == "6 requests: balance.summary.1:csv x6"
    assert (run.tags["report_type"], run.tags["format"]) == ("balance.summary.1", "csv")

    good = _request(settings, account)
    bad = _request(settings, account, parameters={"interval_start": 1793491200,
                                                  "interval_end": 1790812800})
    result, run = _execute_batch()
    assert not result.success  # a request that failed for good does not leave its run green
    assert store.get(good, settings=settings)["status"] == "completed"
    failed = store.get(bad, settings=settings)
    assert failed["status"] == "failed" and "interval_end" in failed["error_message"]
    assert failed["attempt_count"] == 1  # the user's error is not retried
    assert (run.tags["payreports/completed"], run.tags["payreports/failed"]) == ("1", "1")


def test_a_batch_logs_its_totals_not_a_line_per_completed_request(demo_platform, test_lane):
    """Each INFO line of an `exports` logger is a row of the run's event log (dagster.yaml
    python_logs) written over a new database connection: a completed request adds none, the
    batch logs its totals."""
    settings = demo_platform.settings
    account = _account(settings)
    ids = [_request(settings, account) for _ in range(3)]
    instance = dg.DagsterInstance.ephemeral(settings={"python_logs": {
        "python_log_level": "INFO", "managed_python_loggers": ["exports"]}})
    result, _ = _execute_batch(instance)
    assert result.success
    assert [store.get(i, settings=settings)["status"] for i in ids] == ["completed"] * 3
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)
                if entry.dagster_event is None]
    assert any(m.startswith("batch ") and "'completed': 3" in m for m in messages), messages
    assert not [m for m in messages if "report request" in m], messages


def test_unwritable_storage_is_retried_then_said(demo_platform, monkeypatch):
    settings = demo_platform.settings
    from exports.storage.local import LocalStorage

    def refuse(self, local_path, key, content_type=None):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.root / key))

    monkeypatch.setattr(LocalStorage, "put", refuse)
    request_id = _request(settings, _account(settings))
    assert processing.process_request(request_id, settings, run_id="run-1") == "pending"
    waiting = store.get(request_id, settings=settings)
    assert "retrying after attempt 1 of 3" in waiting["status_reason"]
    assert "storage is not writable" in waiting["status_reason"]
    assert waiting["not_before"] > datetime.now(timezone.utc)
    assert processing.process_request(request_id, settings, run_id="run-2") == "pending"
    assert processing.process_request(request_id, settings, run_id="run-3") == "failed"
    failed = store.get(request_id, settings=settings)
    assert failed["attempt_count"] == lifecycle.RETRY_POLICY.max_attempts
    assert "storage is not writable" in failed["error_message"]
    assert "internal error" not in failed["error_message"]
    assert str(settings.files_dir) not in failed["error_message"]  # the path stays in the logs


def test_scheduled_request_waits_for_its_data_then_runs(demo_platform):
    settings = demo_platform.settings
    account = _account(settings)
    request_id = _request(settings, account, source="schedule")
    interval_end = datetime.fromtimestamp(PARAMS["interval_end"], timezone.utc)
    with db.connect("app", settings) as conn:
        saved = conn.execute("SELECT table_name, watermark FROM replication_watermarks").fetchall()
        conn.execute("UPDATE replication_watermarks SET watermark = %s",
                     (interval_end - timedelta(days=3),))
        conn.commit()
    try:
        summary = processing.run_batch("run-early", TEST_LANE, settings)
        assert summary.processed == [(request_id, "pending")]
        row = store.get(request_id, settings=settings)
        assert row["status"] == "pending" and row["attempt_count"] == 0
        assert row["status_reason"].startswith(f"waiting for data up to {interval_end.isoformat()}")
        assert row["waiting_for_data_until"] == interval_end
        from exports.report_object import report_object

        assert report_object(row, settings).status_reason == row["status_reason"]  # what API users see
        # Not claimed again while the data is still missing.
        assert processing.run_batch("run-still-early", TEST_LANE, settings).processed == []
    finally:
        with db.connect("app", settings) as conn:
            for table, watermark in saved:
                conn.execute("UPDATE replication_watermarks SET watermark = %s WHERE table_name = %s",
                             (watermark, table))
            conn.commit()
    summary = processing.run_batch("run-on-time", TEST_LANE, settings)
    assert summary.processed == [(request_id, "completed")]
    done = store.get(request_id, settings=settings)
    assert done["attempt_count"] == 1 and done["status_reason"] is None


def test_ops_retry_of_a_failed_report_gets_a_new_run_key_and_completes(demo_platform, test_lane):
    from typer.testing import CliRunner

    from cli import app
    from orchestration.defs.reports.sensors import report_request_sensor

    settings = demo_platform.settings
    instance = dg.DagsterInstance.ephemeral()
    request_id = _request(settings, _account(settings))
    first = dg.build_sensor_context(instance=instance)
    keys_before = {r.run_key for r in report_request_sensor(first)}
    assert keys_before
    # Its run failed it for good; the operator retries it (attempts reset to 0).
    store.claim_for_processing(request_id, "run-that-failed", settings)
    store.fail(request_id, "internal error while generating the report", settings)
    result = CliRunner().invoke(app, ["ops", "retry", request_id])
    assert result.exit_code == 0, result.output
    assert store.get(request_id, settings=settings)["attempt_count"] == 0
    # Even with the sensor's cursor reset (an operator may, in the UI), keys are new.
    second = dg.build_sensor_context(instance=instance, cursor=None)
    keys_after = {r.run_key for r in report_request_sensor(second)}
    # Dagster drops a run request whose key it has seen: a reused key would leave it pending.
    assert keys_after and not keys_after & keys_before
    _execute_batch(instance)
    assert store.get(request_id, settings=settings)["status"] == "completed"


def _stale_claim(settings, run_id: str) -> str:
    request_id = _request(settings, "acct_watchdog")
    store.claim_for_processing(request_id, run_id, settings)
    with db.connect("app", settings) as conn:
        conn.execute("UPDATE report_requests SET updated_at = now() - interval '10 minutes' "
                     "WHERE id = %s", (request_id,))
        conn.commit()
    return request_id


class _Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def time(self):
        return self.now


def _watch(instance, cursor=None):
    from orchestration.defs.reports.sensors import report_watchdog_sensor

    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    report_watchdog_sensor(context)
    return context.cursor


def test_watchdog_never_fails_a_starting_or_heartbeating_run_and_confirms_before_failing(postgres, monkeypatch):
    import orchestration.defs.reports.sensors as sensors
    from orchestration.defs.reports.jobs import report_job

    clock = _Clock()
    monkeypatch.setattr(sensors, "time", clock)
    instance = dg.DagsterInstance.ephemeral()
    starting = instance.create_run_for_job(report_job, status=dg.DagsterRunStatus.STARTING)
    started = instance.create_run_for_job(report_job, status=dg.DagsterRunStatus.STARTED)
    paused = instance.create_run_for_job(report_job, status=dg.DagsterRunStatus.STARTED)
    busy = instance.create_run_for_job(report_job, status=dg.DagsterRunStatus.STARTED)
    # Rows whose heartbeat is stale: e.g. from a previous attempt, or after a database outage.
    on_starting = _stale_claim(postgres, starting.run_id)
    on_started = _stale_claim(postgres, started.run_id)
    on_paused = _stale_claim(postgres, paused.run_id)
    # A live run with one silent row (it waited without a heartbeat) and one heartbeating.
    on_busy = _stale_claim(postgres, busy.run_id)
    on_busy_live = _request(postgres, "acct_watchdog")
    store.claim_for_processing(on_busy_live, busy.run_id, postgres)

    cursor = _watch(instance)  # first look: suspects only
    assert instance.get_run_by_id(started.run_id).status == dg.DagsterRunStatus.STARTED
    # The paused run's heartbeat resumes (the database is back); the dead one stays silent.
    assert store.heartbeat(on_paused, postgres) == "processing"
    clock.now += lifecycle.CONFIRM_SECONDS + 1
    _watch(instance, cursor)

    assert instance.get_run_by_id(starting.run_id).status == dg.DagsterRunStatus.STARTING
    assert store.get(on_starting, settings=postgres)["status"] == "processing"
    assert instance.get_run_by_id(paused.run_id).status == dg.DagsterRunStatus.STARTED
    assert store.get(on_paused, settings=postgres)["status"] == "processing"
    assert instance.get_run_by_id(busy.run_id).status == dg.DagsterRunStatus.STARTED
    assert store.get(on_busy, settings=postgres)["status"] == "processing"
    assert instance.get_run_by_id(started.run_id).status == dg.DagsterRunStatus.FAILURE
    rescued = store.get(on_started, settings=postgres)
    assert rescued["status"] == "pending" and started.run_id in rescued["status_reason"]
    for request_id in (on_starting, on_started, on_paused, on_busy, on_busy_live):
        # leave nothing claimable to others
        store.fail(request_id, "test over", postgres)


def test_no_on_demand_run_is_started_while_the_warehouse_holder_serves_them(demo_platform):
    """Embedded: while a statements run looks for on-demand requests between packs, the sensor
    starts no on-demand run that would only wait for the warehouse; once it stops looking (done,
    dead, busy), runs start again."""
    from exports.warehouse import _serving_path, mark_serving_on_demand
    from orchestration.defs.reports.sensors import LANE_TAG, report_request_sensor

    settings = demo_platform.settings
    account = _account(settings)
    row, _ = store.create(store.NewRequest(account_id=account, report_type="balance.summary.1",
                                           parameters=PARAMS, format="csv", source="api"), settings)
    instance = dg.DagsterInstance.ephemeral()
    try:
        def on_demand_runs() -> int:
            requests = report_request_sensor(dg.build_sensor_context(instance=instance))
            return sum(r.tags.get(LANE_TAG) == "on_demand" for r in (
                requests if isinstance(requests, list) else []))

        assert on_demand_runs() == 1
        mark_serving_on_demand(settings)
        assert on_demand_runs() == 0
        stopped = time.time() - 3  # the holder's last look, 3 s ago
        os.utime(_serving_path(settings), (stopped, stopped))
        assert on_demand_runs() == 1
    finally:
        store.cancel(row["id"], account, settings)
