"""`report_job`: one run processes one report request (exports.requests.processing)."""


import dagster as dg

from exports.logging import configure_logging
from exports.requests.processing import MAX_ATTEMPTS, process_request


class ReportRequestConfig(dg.Config):
    request_id: str


@dg.op(description="Generate, store and record one report request; notify its recipients.")
def process_report_request(context: dg.OpExecutionContext, config: ReportRequestConfig) -> str:
    configure_logging()  # JSON lines in production, each carrying report_id and run_id
    status = process_request(config.request_id, run_id=context.run_id)
    context.log.info(f"report request {config.request_id}: {status}")
    return status


@dg.job(
    # One op: the in-process executor saves the ~1 s subprocess start of the multiprocess one.
    executor_def=dg.in_process_executor,
    tags={
        # Run-level retries (dagster.yaml enables run_retries): a crashed run is re-executed whole.
        "dagster/max_retries": str(MAX_ATTEMPTS - 1),
        "dagster/retry_strategy": "ALL_STEPS",
    },
    description="Process one on-demand/scheduled report request (op config: request_id).",
)
def report_job() -> None:
    process_report_request()
