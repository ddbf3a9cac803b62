"""The `statements` asset: each partition renders one month's statement packs for the accounts
of one shard (exports.statements.packs); its check says whether the month that just closed is
waiting for data past its deadline."""

from collections.abc import Iterator
from datetime import datetime, timezone

import dagster as dg
from pydantic import Field

from exports.errors import ReportingError
from exports.logging import configure_logging
from exports.settings import get_settings
from exports.statements import accounts as statement_accounts
from exports.statements.availability import (DataNotAvailable, Readiness, last_closed_month,
                                              readiness)
from exports.statements.packs import check_accounts_exist, render_shard, statement_run
from exports.statements.shards import SHARD_KEYS
from orchestration.defs.statements.partitions import period_and_shard, statement_partitions

# A run of a backfill renders up to this many partitions (month x shard) in one process. At
# 10,000 accounts a partition is ~156 packs, so 16 partitions keep a run well under an hour.
MAX_PARTITIONS_PER_RUN = 16
# Unexpected errors (database or storage outage) retry the step; finished files are skipped on
# the retry. Per-account failures raise a Failure that bypasses it: they are recorded on their
# reports, and re-running the partition is the retry.
STEP_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)

class StatementsConfig(dg.Config):
    account_ids: list[str] = Field(
        default_factory=list,
        description="Render only these accounts (e.g. re-run one account's month); accounts "
                    "outside a partition's shard are skipped there. Empty: every account.")

def _metadata(summary: dict) -> dict[str, dg.MetadataValue]:
    statuses = summary["statuses"]
    return {
        "accounts": dg.MetadataValue.int(summary["accounts"]),
        "statements": dg.MetadataValue.int(summary["statements"]),
        "rendered_now": dg.MetadataValue.int(summary["rendered"]),
        "completed": dg.MetadataValue.int(statuses.get("completed", 0)),
        "failed": dg.MetadataValue.int(statuses.get("failed", 0)),
        "statuses": dg.MetadataValue.json(statuses),
        "manifest": dg.MetadataValue.json(summary["manifest"]),
        "data_available_end": dg.MetadataValue.text(summary["data_available_end"] or "-"),
    }

@dg.asset(
    partitions_def=statement_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    retry_policy=STEP_RETRY_POLICY,
    # Materializations are reported per partition (each with its own manifest), not per run.
    output_required=False,
    group_name="statements",
    description="Month-end statement packs (PAYREPORTS_STATEMENT_REPORTS) for the accounts of one "
                "shard; every file is a report in report_requests (source 'statement').",
)
def statements(context: dg.AssetExecutionContext, config: StatementsConfig
               ) -> Iterator[dg.AssetMaterialization]:
    configure_logging()
    settings = get_settings()
    wanted = config.account_ids or None
    try:
        accounts = (check_accounts_exist(wanted, settings) if wanted
                    else statement_accounts.list_accounts(settings))
    except ReportingError as exc:
        raise dg.Failure(description=exc.message, allow_retries=False) from None
    failures: dict[str, str] = {}
    with statement_run(settings, run_id=context.run.run_id) as run:
        for key in context.partition_keys:
            period, shard = period_and_shard(key)
            try:
                result = render_shard(period, shard, account_ids=wanted, run_id=context.run.run_id,
                                      settings=settings, accounts=accounts, run=run)
            except DataNotAvailable as exc:  # nothing rendered, no report touched
                failures[key] = str(exc)
                continue
            summary = result.summary()
            context.log.info(f"statements {period.label} shard {SHARD_KEYS[shard]}: {summary['statuses']}")
            if result.failed:
                failures[key] = "; ".join(f"{f['account_id']} {f['statement']}: {f['error']}"
                                          for f in summary["failed"])
                continue
            yield dg.AssetMaterialization(asset_key=context.asset_key, partition=key,
                                          metadata=_metadata(summary))
        if run.on_demand is not None and run.on_demand.served:
            context.log.info(f"served {run.on_demand.served} on-demand report request(s) "
                             "while holding the warehouse")
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} of {len(context.partition_keys)} statement partition(s) "
                        "did not complete; each failed file's report says why, and re-running a "
                        "partition retries only what is not completed.",
            metadata={"failures": dg.MetadataValue.json(failures)},
            allow_retries=False)

DATA_ON_TIME_CHECK = "statements_data_on_time"

def readiness_metadata(state: Readiness) -> dict[str, str]:
    return {"period": state.period.label,
            "data_needed_through": state.needed.isoformat() if state.needed else "-",
            "data_available_through": state.available.isoformat() if state.available else "-"}

@dg.asset_check(asset=statements, name=DATA_ON_TIME_CHECK,
                description="Fails while the month that just closed is still waiting for its data "
                            "past PAYREPORTS_STATEMENT_DATA_DEADLINE_HOURS after its end (the "
                            "month-end sensor records it; it can also be executed by hand).")
def statements_data_on_time() -> dg.AssetCheckResult:
    now = datetime.now(timezone.utc)
    state = readiness(last_closed_month(now), statement_accounts.timezones(), now)
    return dg.AssetCheckResult(passed=not state.late, severity=dg.AssetCheckSeverity.ERROR,
                               description=state.describe(), metadata=readiness_metadata(state))
