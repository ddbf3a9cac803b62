"""exports/requests/lifecycle.py: the retry policy, how errors end an attempt, and the Dagster
settings that derive from it (no second copy of the attempt count anywhere)."""

from __future__ import annotations

import errno
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from exports.errors import InvalidParameter
from exports.requests import lifecycle
from exports.requests.lifecycle import RETRY_POLICY, classify, storage_error
from exports.settings import REPO_ROOT


def test_backoff_grows_and_is_capped():
    assert [RETRY_POLICY.backoff(n) for n in (1, 2, 3)] == [
        timedelta(seconds=5), timedelta(seconds=20), timedelta(seconds=80)]
    assert RETRY_POLICY.backoff(10) == timedelta(seconds=RETRY_POLICY.backoff_max_seconds)
    assert RETRY_POLICY.attempts_left(RETRY_POLICY.max_attempts - 1)
    assert not RETRY_POLICY.attempts_left(RETRY_POLICY.max_attempts)


@pytest.mark.parametrize(("exc", "says", "retryable"), [
    (InvalidParameter("interval_end is before interval_start", param="x"), "interval_end", False),
    (storage_error(PermissionError(errno.EACCES, "Permission denied", "/srv/files/r.csv")),
     "storage is not writable", True),
    (storage_error(OSError(errno.EROFS, "Read-only file system")), "storage is not writable", True),
    (storage_error(OSError(errno.ENOSPC, "No space left on device")), "storage is full", True),
    (RuntimeError("boom"), "internal error", True),
])
def test_errors_are_worded_by_their_cause(exc, says, retryable):
    failure = classify(exc, "run-1")
    assert says in failure.message and failure.retryable is retryable
    assert "/srv/files" not in failure.message  # paths stay in the logs


def test_the_warehouse_busy_and_database_errors_are_retryable_and_said():
    import psycopg

    from exports.warehouse import WarehouseBusy

    assert "warehouse" in classify(WarehouseBusy("held by pid 1"), "r").message
    assert "database" in classify(psycopg.OperationalError("down"), "r").message


def test_only_the_lifecycle_states_the_attempt_policy():
    """Dagster's run retries for report runs derive from the lifecycle, and no other module
    keeps its own attempt count (processing.py, the job, the sensors, the launcher, the CLI)."""
    from orchestration.defs.reports.jobs import report_job

    assert {k: report_job.tags[k] for k in lifecycle.RUN_RETRY_TAGS} == lifecycle.RUN_RETRY_TAGS
    offenders = []
    for root in ("exports", "orchestration", "api"):
        for path in (REPO_ROOT / root).rglob("*.py"):
            if path == Path(lifecycle.__file__):
                continue
            text = path.read_text()
            if re.search(r"\bMAX_ATTEMPTS\s*=|\bmax_attempts: int = \d|dagster/max_retries\"\s*:\s*\"?\d", text):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []


def test_transitions_match_the_statuses():
    assert set(lifecycle.TRANSITIONS) == set(lifecycle.STATUSES)
    assert all(targets <= set(lifecycle.STATUSES) for targets in lifecycle.TRANSITIONS.values())


def test_batch_runs_are_tagged_with_a_summary_and_counts():
    from exports.requests.processing import BatchSummary
    from orchestration.defs.reports.jobs import summary_tags

    batch = BatchSummary(statuses=Counter(completed=11, failed=1),
                         kinds=Counter({"balance.summary:csv": 10, "payouts.itemized:pdf": 2}),
                         processed=[(f"rpt_{i}", "completed") for i in range(12)])
    tags = summary_tags(batch)
    assert tags["payreports/summary"] == "12 requests: balance.summary:csv x10, payouts.itemized:pdf x2"
    assert (tags["payreports/requests"], tags["payreports/completed"], tags["payreports/failed"]) == (
        "12", "11", "1")
    assert "report_type" not in tags and "report_request_id" not in tags
    single = summary_tags(BatchSummary(statuses=Counter(failed=1), kinds=Counter({"fees.summary:xlsx": 1}),
                                       processed=[("rpt_x", "failed")]))
    assert (single["report_type"], single["format"], single["report_request_id"]) == (
        "fees.summary", "xlsx", "rpt_x")


def test_lanes_never_put_on_demand_requests_behind_bulk_work():
    from exports.requests.processing import LANES
    from orchestration.defs.reports.sensors import runs_wanted

    on_demand, bulk = LANES["on_demand"], LANES["bulk"]
    assert on_demand.min_priority == 10 and bulk.min_priority is None
    assert on_demand.run_priority > bulk.run_priority  # dequeued first by the run queue
    assert on_demand.max_requests < bulk.max_requests
    assert runs_wanted(on_demand, 1, embedded=True) == 1
    # Embedded: a report run already holding the warehouse claims on-demand requests first.
    assert runs_wanted(on_demand, 1, embedded=True, running=1) == 0
    assert runs_wanted(on_demand, 1, embedded=False, running=1) == 1
    assert runs_wanted(bulk, 0, embedded=True) == 0
    assert runs_wanted(bulk, 10_000, embedded=True) == 1  # one warehouse holder at a time
    assert runs_wanted(bulk, 10_000, embedded=False) == 2
