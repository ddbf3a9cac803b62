"""`report_job`: one run processes a batch of report requests (exports.requests.processing)."""

import dagster as dg

from exports.logging import configure_logging
from exports.requests.lifecycle import RUN_RETRY_TAGS
from exports.requests.processing import LANES, BatchSummary, run_batch

# Run tags a batch run gets when it ends (the UI's run list can filter and show them).
SUMMARY_TAG = "payreports/summary"
COUNT_TAG_PREFIX = "payreports/"
SINGLE_REQUEST_TAG = "report_request_id"
MAX_TAG_LENGTH = 200


class ReportBatchConfig(dg.Config):
    lane: str = "bulk"


def summary_tags(summary: BatchSummary) -> dict[str, str]:
    """`payreports/summary` ("12 requests: balance.summary:csv x10, …"), one count tag per status
    and, for a run that processed a single request, that request's id, type and format."""
    kinds = ", ".join(f"{kind} x{n}" for kind, n in summary.kinds.most_common())
    tags = {SUMMARY_TAG: f"{len(summary.processed)} requests: {kinds or 'none'}"[:MAX_TAG_LENGTH],
            f"{COUNT_TAG_PREFIX}requests": str(len(summary.processed))}
    tags.update({f"{COUNT_TAG_PREFIX}{status}": str(n) for status, n in summary.statuses.items()})
    if len(summary.kinds) == 1:
        report_type, fmt = next(iter(summary.kinds)).split(":", 1)
        tags.update({"report_type": report_type, "format": fmt})
    if len(summary.processed) == 1:
        tags[SINGLE_REQUEST_TAG] = summary.processed[0][0]
    return tags


@dg.op(description="Claim and process report requests of one lane (most urgent first) until "
                   "the lane is empty or the batch budget is spent; fails when any request failed.")
def process_report_batch(context: dg.OpExecutionContext, config: ReportBatchConfig) -> dict:
    configure_logging()  # JSON lines in production, each carrying report_id and run_id
    lane = LANES[config.lane]
    summary = run_batch(context.run_id, lane)
    context.instance.add_run_tags(context.run_id, summary_tags(summary))
    metadata = {
        "requests": len(summary.processed),
        "seconds": round(summary.seconds, 2),
        **{status: n for status, n in summary.statuses.items()},
        "report_types": dg.MetadataValue.json(dict(summary.kinds)),
    }
    context.add_output_metadata(metadata)
    context.log.info(f"{lane.name} batch: {dict(summary.statuses)} in {summary.seconds:.1f} s")
    if summary.failed:
        # A request that failed for good must not leave its run green.
        raise dg.Failure(
            description=f"{len(summary.failed)} of {len(summary.processed)} report requests failed: "
                        + "; ".join(f"{rid}: {message}" for rid, message in summary.failed[:5]),
            metadata={"failed": dg.MetadataValue.json(dict(summary.failed[:100])), **metadata},
            allow_retries=False,
        )
    return dict(summary.statuses)


@dg.job(
    # One op: the in-process executor saves the ~1 s subprocess start of the multiprocess one.
    executor_def=dg.in_process_executor,
    tags=RUN_RETRY_TAGS,  # from the lifecycle: requests are retried one by one, not whole runs
    description="Process a batch of on-demand/scheduled report requests (op config: lane).",
)
def report_job() -> None:
    process_report_batch()
