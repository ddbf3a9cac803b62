"""Daily retention: delete report files past expires_at, keep their metadata (status expired)."""


import dagster as dg

from exports.requests.retention import expire_reports
from exports.tempdirs import clean_stale


@dg.op(description="Delete expired report files and mark their requests expired.")
def expire_report_files(context: dg.OpExecutionContext) -> int:
    expired = expire_reports()
    context.log.info(f"expired {len(expired)} report file(s)")
    # Scratch dirs of workers that were killed mid-report (each worker also sweeps on start).
    context.log.info(f"removed {len(clean_stale())} stale scratch dir(s)")
    return len(expired)


@dg.job(executor_def=dg.in_process_executor, description="Report file retention.")
def maintenance_retention_job() -> None:
    expire_report_files()


maintenance_retention_schedule = dg.ScheduleDefinition(
    name="maintenance_retention_schedule", job=maintenance_retention_job,
    cron_schedule="17 3 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
