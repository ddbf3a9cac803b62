"""Sensors turning report_requests rows into batch runs and keeping rows and runs consistent.

The rules (attempts, backoff, what a dead worker's request becomes) are the lifecycle's
(exports/requests/lifecycle.py); these sensors only notice when to apply them.
"""

import json
import math
import time
import uuid
from datetime import timedelta

import dagster as dg

from exports.replication import data_available_end
from exports.requests import lifecycle, store
from exports.requests.processing import LANES, ON_DEMAND_PRIORITY, Lane
from exports.settings import get_settings
from exports.warehouse import on_demand_served_by_holder
from orchestration.defs.reports.jobs import report_job
from orchestration.tags import warehouse_tags

LANE_TAG = "payreports/lane"
ALIVE_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                  dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                  dg.DagsterRunStatus.CANCELING]
RUNNING_STATUSES = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)


def runs_wanted(lane: Lane, claimable: int, *, embedded: bool, running: int = 0) -> int:
    """Batch runs a lane should have alive for `claimable` requests. Embedded: one (each run
    holds the single-process warehouse for its whole batch), and no on-demand run while
    `running` report runs (or a statements run that is looking for on-demand requests between
    packs) already hold the warehouse: they claim on-demand requests first, so a run of its own
    would only wait for the warehouse and start an engine for nothing. Against a server:
    enough runs to split the backlog into batches, at most two per lane."""
    if claimable <= 0:
        return 0
    if embedded:
        return 0 if lane.name == "on_demand" and running else 1
    return min(2, math.ceil(claimable / lane.max_requests))


def batch_run_request(lane: Lane, sequence: int) -> dg.RunRequest:
    return dg.RunRequest(
        # Unique per batch: never a key Dagster already used (it would drop the run), whatever
        # happens to the requests (retried, reset by an operator) or to the sensor's cursor (the
        # count, for people; the random part survives a cursor reset). A batch claims its work
        # itself, so even a tick Dagster submitted twice only adds a run that finds nothing.
        run_key=f"{lane.name}-batch-{sequence}-{uuid.uuid4().hex[:8]}",
        run_config=dg.RunConfig(ops={"process_report_batch": {"config": {"lane": lane.name}}}),
        tags={
            LANE_TAG: lane.name,
            "dagster/priority": str(lane.run_priority),
            # A batch holds the warehouse for its whole life: one at a time in embedded mode.
            **warehouse_tags(),
        },
    )


@dg.sensor(job=report_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Batch runs of report_job for claimable report requests, by lane "
                       "(on-demand requests never wait behind scheduled ones).")
def report_request_sensor(context: dg.SensorEvaluationContext):
    settings = get_settings()
    counts = store.claimable_counts(data_available_end(settings),
                                    on_demand_priority=ON_DEMAND_PRIORITY, settings=settings)
    if not any(counts.values()):
        return dg.SkipReason("no claimable report requests")
    sequence = int(context.cursor or 0)
    alive_runs = context.instance.get_runs(filters=dg.RunsFilter(job_name=report_job.name,
                                                                 statuses=ALIVE_STATUSES))
    running = sum(run.status in RUNNING_STATUSES for run in alive_runs)
    if settings.warehouse_is_embedded and on_demand_served_by_holder(settings):
        # The warehouse's holder (a statements run between packs) claims on-demand requests
        # itself; once it stops looking, this counts no more and runs start as before.
        running += 1
    requests = []
    for name, lane in LANES.items():
        wanted = runs_wanted(lane, counts[name], embedded=settings.warehouse_is_embedded,
                             running=running)
        alive = sum(run.tags.get(LANE_TAG) == name for run in alive_runs)
        for _ in range(wanted - alive):
            sequence += 1
            requests.append(batch_run_request(lane, sequence))
    context.update_cursor(str(sequence))
    if not requests:
        return dg.SkipReason(f"claimable {counts}; batch runs already alive for them")
    return requests


def _rescue_run(run_id: str, why: str) -> list[str]:
    """Hand every request `run_id` claimed and did not finish to the lifecycle."""
    settings = get_settings()
    return [f"{row['id']} -> {lifecycle.rescue(row, why, settings)}"
            for row in store.list_processing_for_run(run_id, settings)]


@dg.run_failure_sensor(monitored_jobs=[report_job], minimum_interval_seconds=5,
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Retry or fail (with a reason) the requests a failed report "
                                   "run left unfinished.")
def report_run_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    message = (context.failure_event.message or "").splitlines()[0][:200] if context.failure_event else ""
    outcomes = _rescue_run(run.run_id, f"its run {run.run_id} failed ({message or 'no message'})")
    if outcomes:
        context.log.warning(f"run {run.run_id} failed with unfinished requests: {outcomes}")


@dg.sensor(minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Rescue requests whose batch run died (silent heartbeat, confirmed on a "
                       "later tick); fail requests waiting for data past their deadline.")
def report_watchdog_sensor(context: dg.SensorEvaluationContext):
    """Never acts on a run that is queued or starting: only a STARTED run whose rows stayed
    silent across two looks, CONFIRM_SECONDS apart, and none of whose rows heartbeats, is
    presumed dead; a run that is already finished (or gone) just has its leftover requests
    rescued."""
    instance = context.instance
    now = time.time()
    # Rows seen stale before: {request id: [updated_at seen, first seen at]}.
    suspects: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
    actions: list[str] = []
    still_suspect: dict[str, list] = {}
    stale = store.list_stuck(timedelta(seconds=lifecycle.STALE_AFTER_SECONDS))
    by_run: dict[str, list[dict]] = {}
    for row in stale:
        by_run.setdefault(row["dagster_run_id"] or "", []).append(row)
    for run_id, rows in by_run.items():
        record = instance.get_run_record_by_id(run_id) if run_id else None
        run = record.dagster_run if record else None
        if run is not None and run.status in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                                              dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING):
            continue  # not running the request (yet): never fail a run that has not started
        if run is None or run.is_finished:
            for row in rows:
                why = (f"its run {run_id} ended ({run.status.value}) while generating it" if run
                       else "it was claimed by a run Dagster does not know")
                actions.append(f"{row['id']} -> {lifecycle.rescue(row, why)}")
            continue
        # STARTED: dead only if every row stayed silent since an earlier look.
        confirmed = True
        for row in rows:
            seen = suspects.get(row["id"])
            stamp = row["updated_at"].isoformat()
            if seen is None or seen[0] != stamp:
                still_suspect[row["id"]] = [stamp, now]
                confirmed = False
            elif now - seen[1] < lifecycle.CONFIRM_SECONDS:
                still_suspect[row["id"]] = seen
                confirmed = False
        if not confirmed:
            continue
        if store.run_is_heartbeating(run_id, timedelta(seconds=lifecycle.STALE_AFTER_SECONDS)):
            # Another of its requests heartbeats: the process lives. Failing it would not stop
            # it, and would free its concurrency slot for a second run beside it; its silent
            # rows are rescued once it ends.
            still_suspect.update({row["id"]: suspects[row["id"]] for row in rows})
            continue
        why = (f"its run {run_id} stopped heartbeating for over "
               f"{int(lifecycle.STALE_AFTER_SECONDS)} s; its worker is presumed dead")
        instance.report_run_failed(run, message=why)
        actions.append(f"failed dead run {run_id}")
        for row in rows:
            actions.append(f"{row['id']} -> {lifecycle.rescue(row, why)}")
    for request_id in lifecycle.fail_overdue_waits():
        actions.append(f"{request_id} -> failed (data still not available)")
    context.update_cursor(json.dumps(still_suspect))
    for action in actions:
        context.log.warning(action)
    return dg.SkipReason("; ".join(actions) or "nothing to do")
