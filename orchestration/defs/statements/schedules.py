"""`statements_month_end_sensor`: materialize the month that just closed once its data is there.

Each tick (every 5 minutes) looks at the newest monthly partition. While the data
(exports.replication.data_available_end) stops short of the month's end in the latest of the
accounts' timezones it renders nothing and says what it waits for (SkipReason); past
PAYREPORTS_STATEMENT_DATA_DEADLINE_HOURS it also logs an error and records a failing
`statements_data_on_time` check (once per month). When the data is there it requests the
month's 64 shards as ranges of MAX_PARTITIONS_PER_RUN partitions, one run each, with run keys
that make the request exactly-once, and records the check passing.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dagster as dg

from exports.settings import get_settings
from exports.statements import accounts as statement_accounts
from exports.statements.availability import Readiness, last_closed_month, readiness
from exports.statements.periods import StatementPeriod
from exports.statements.shards import SHARD_COUNT
from orchestration.defs.statements.assets import (DATA_ON_TIME_CHECK, MAX_PARTITIONS_PER_RUN,
                                                  readiness_metadata, statements)
from orchestration.defs.statements.partitions import range_tags, statement_months, statement_partitions

TICK_SECONDS = 300


def run_tags() -> dict[str, str]:
    """Tags of every statements run (sensor, ops backfill). A run is re-executed whole only when
    its process dies; per-account failures are recorded on their reports instead. A statements
    run opens the embedded warehouse once per report (the lock interleaves it with report and
    platform runs, so an on-demand report never waits behind a month-end), and dagster.yaml
    runs one `statements=embedded` run at a time: two would only take turns on the lock."""
    tags = {"dagster/retry_on_asset_or_op_failure": "false"}
    if get_settings().warehouse_is_embedded:
        tags["statements"] = "embedded"
    return tags


statements_job = dg.define_asset_job(
    "statements_job", selection=[statements], partitions_def=statement_partitions,
    tags=run_tags(),
    description="Render per-account statements for a range of month x shard partitions.")


def month_run_requests(period: StatementPeriod) -> list[dg.RunRequest]:
    """The month's shards in ranges of MAX_PARTITIONS_PER_RUN, one run each (run keys: once)."""
    requests = []
    for first in range(0, SHARD_COUNT, MAX_PARTITIONS_PER_RUN):
        last = min(first + MAX_PARTITIONS_PER_RUN, SHARD_COUNT) - 1
        requests.append(dg.RunRequest(run_key=f"statements:{period.key}:{first:02d}-{last:02d}",
                                      tags={**range_tags(period, first, last),
                                            "statements/period": period.label}))
    return requests


def _check_evaluation(state: Readiness) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=statements.key, check_name=DATA_ON_TIME_CHECK, passed=not state.late,
        severity=dg.AssetCheckSeverity.ERROR, description=state.describe(),
        metadata=readiness_metadata(state))


def month_end_tick(instance: dg.DagsterInstance, cursor: str | None, now: datetime,
                   log=None) -> dg.SensorResult | dg.SkipReason:
    """One evaluation of the sensor at `now` (separate so tests can pick the instant)."""
    state_seen = json.loads(cursor) if cursor else {}
    period = last_closed_month(now)
    if period.start < statement_months.start.date():
        return dg.SkipReason(f"statements start with {statement_months.start:%Y-%m}")
    if state_seen.get("launched") == period.key:
        return dg.SkipReason(f"the {period.label} statements were requested; the next month's "
                             "follow when it has closed and its data is available")
    state = readiness(period, statement_accounts.timezones(), now)
    if not state.ready:
        if state.late and state_seen.get("late") != period.key:
            if log is not None:
                log.error(f"statements alert: {state.describe()}")
            instance.report_runless_asset_event(_check_evaluation(state))
            state_seen["late"] = period.key
        return dg.SensorResult(skip_reason=state.describe(), cursor=json.dumps(state_seen))
    if state_seen.get("late") == period.key:  # the alert clears once the data is there
        instance.report_runless_asset_event(_check_evaluation(state))
    return dg.SensorResult(run_requests=month_run_requests(period),
                           cursor=json.dumps({"launched": period.key}))


@dg.sensor(job=statements_job, minimum_interval_seconds=TICK_SECONDS,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Render the month that just closed once its data is available in every "
                       "account's timezone; alert when it is late past the deadline.")
def statements_month_end_sensor(context: dg.SensorEvaluationContext):
    return month_end_tick(context.instance, context.cursor, datetime.now(timezone.utc), context.log)
