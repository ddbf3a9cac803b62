"""Sensors turning report_requests rows into runs and keeping rows and runs consistent."""


from datetime import datetime, timedelta, timezone

import dagster as dg

from exports.requests import store
from exports.requests.processing import MAX_ATTEMPTS, STALE_AFTER_SECONDS, internal_error_message
from exports.settings import get_settings
from orchestration.defs.reports.jobs import report_job
from orchestration.tags import warehouse_tags

REQUEST_TAG = "report_request_id"
PENDING_BATCH = 100
ALIVE_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                  dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                  dg.DagsterRunStatus.CANCELING]


def run_request_for(row: dict) -> dg.RunRequest:
    return dg.RunRequest(
        # The same request seen on several ticks yields one run; a re-queued request (its worker
        # died and no retry was left in Dagster) has a higher attempt_count and gets a new run.
        run_key=f"{row['id']}:{row['attempt_count']}",
        run_config=dg.RunConfig(ops={"process_report_request": {"config": {"request_id": row["id"]}}}),
        tags={
            REQUEST_TAG: row["id"],
            "account": row["account_id"],
            "dagster/priority": str(row["priority"]),
            **warehouse_tags(brief=True),
        },
    )


@dg.sensor(job=report_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING,
           description="One run of report_job per pending report request.")
def report_request_sensor(context: dg.SensorEvaluationContext):
    rows = store.list_pending(PENDING_BATCH)
    if not rows:
        return dg.SkipReason("no pending report requests")
    return [run_request_for(row) for row in rows]


@dg.run_failure_sensor(monitored_jobs=[report_job], minimum_interval_seconds=5,
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Fail a report request whose run failed and will not be retried.")
def report_run_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    request_id = run.tags.get(REQUEST_TAG)
    if not request_id:
        return
    retry_number = int(run.tags.get("dagster/retry_number", "0"))
    max_retries = int(run.tags.get("dagster/max_retries", "0"))
    if retry_number < max_retries:
        return  # the daemon re-executes this run; the retry claims the request again
    failed = store.fail(request_id, internal_error_message(run.run_id))
    if failed is not None:
        context.log.warning(f"report request {request_id} failed: its run {run.run_id} ended "
                            f"unexpectedly ({context.failure_event.message})")
        from exports.requests.processing import notify_finished

        notify_finished(request_id, get_settings())


def _runs_for(instance: dg.DagsterInstance, request_id: str, statuses=None) -> list:
    return instance.get_runs(filters=dg.RunsFilter(tags={REQUEST_TAG: request_id}, statuses=statuses))


@dg.sensor(minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Cancel queued runs of canceled requests; rescue requests whose worker died.")
def report_watchdog_sensor(context: dg.SensorEvaluationContext):
    instance = context.instance
    actions: list[str] = []
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    for row in store.list_canceled_with_runs(since):
        for run in _runs_for(instance, row["id"], [dg.DagsterRunStatus.QUEUED,
                                                    dg.DagsterRunStatus.NOT_STARTED]):
            if instance.run_coordinator.cancel_run(run.run_id):
                actions.append(f"canceled queued run {run.run_id} of {row['id']}")

    for row in store.list_stuck(timedelta(seconds=STALE_AFTER_SECONDS)):
        alive = _runs_for(instance, row["id"], ALIVE_STATUSES)
        started = [r for r in alive if r.status in (dg.DagsterRunStatus.STARTED,
                                                    dg.DagsterRunStatus.STARTING)]
        if started:
            # The run says it is running but its worker stopped heartbeating (e.g. killed -9):
            # report it failed so the run-retry daemon re-executes it (or the failure sensor fails
            # the request when retries are exhausted).
            for run in started:
                instance.report_run_failed(run, message=(
                    f"report request {row['id']} stopped heartbeating for over "
                    f"{int(STALE_AFTER_SECONDS)} s; its worker is presumed dead"))
                actions.append(f"failed dead run {run.run_id} of {row['id']}")
        elif alive:
            continue  # a retry is queued and will claim the row
        elif row["attempt_count"] < MAX_ATTEMPTS:
            if store.requeue(row["id"]) is not None:
                actions.append(f"re-queued {row['id']}")
        elif store.fail(row["id"], internal_error_message(row["dagster_run_id"])) is not None:
            actions.append(f"failed {row['id']} after {row['attempt_count']} attempts")
    for action in actions:
        context.log.warning(action)
    return dg.SkipReason("; ".join(actions) or "nothing to do")
