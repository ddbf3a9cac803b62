"""Statement backfills through the Dagster instance: what `payreports ops backfill` submits.

A backfill of the `statements` asset for months x shards, exactly what the UI's "Materialize"
dialog creates: the daemon's backfill loop launches its runs (BackfillPolicy: up to
MAX_PARTITIONS_PER_RUN partitions each), the UI's Backfills tab shows its progress, and each
partition's status shows on the asset's partitions page. With accounts, only their shards are
targeted and the runs' op config names them (the other accounts of those shards are left alone).

PRIVATE DAGSTER API, opt-in: Dagster 1.13 has no public Python call that submits an asset
backfill (the UI goes through the webserver's GraphQL `launchPartitionBackfill`;
`RunRequest.for_asset_partition_range` is not released). So this module submits Dagster's own
`PartitionBackfill` record, taken from orchestration/dagster_internals.py (the project's one
home of private Dagster names). It is imported only by `payreports ops backfill`, and
tests/unit/test_statement_backfill_private_api.py fails loudly when an upgrade changes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg
from orchestration.dagster_internals import (BULK_ACTION_TERMINAL_STATUSES, PartitionBackfill,
                                             make_new_backfill_id)

from exports.errors import InvalidParameter
from exports.statements.availability import last_closed_month
from exports.statements.packs import check_accounts_exist, shards_of
from exports.statements.periods import StatementPeriod, months_between
from exports.statements.shards import SHARD_COUNT, SHARD_KEYS
from orchestration.defs.statements.assets import statements
from orchestration.defs.statements.partitions import partition_key, statement_months
from orchestration.defs.statements.schedules import run_tags

SOURCE_TAG = "payreports/source"


@dataclass(frozen=True)
class StatementBackfill:
    backfill_id: str
    periods: list[StatementPeriod]
    shards: list[int]
    account_ids: list[str]

    @property
    def partitions(self) -> int:
        return len(self.periods) * len(self.shards)


@dataclass(frozen=True)
class BackfillPlan:
    periods: list[StatementPeriod]
    shards: list[int]
    account_ids: list[str]  # empty: every account


def plan_backfill(first_month: str, last_month: str, account_ids: Sequence[str] = (), *,
                  now: datetime | None = None) -> BackfillPlan:
    """Validate the range and accounts (before anything touches Dagster); InvalidParameter
    names the option at fault."""
    periods = months_between(first_month, last_month)
    newest = last_closed_month(now or datetime.now(timezone.utc))
    if periods[-1].start > newest.start:
        raise InvalidParameter(f"--to must be a month that has ended (the newest is {newest.label})",
                               param="--to")
    if periods[0].start < statement_months.start.date():
        raise InvalidParameter(f"--from must not be before {statement_months.start:%Y-%m}, the first "
                               "statement month (PAYREPORTS_STATEMENT_START_MONTH)", param="--from")
    if account_ids:
        accounts = [a.id for a in check_accounts_exist(account_ids)]
        return BackfillPlan(periods, shards_of(accounts), accounts)
    return BackfillPlan(periods, list(range(SHARD_COUNT)), [])


def submit_backfill(instance: dg.DagsterInstance, plan: BackfillPlan) -> StatementBackfill:
    """Add a statements backfill to `instance` (the daemon executes it); returns what it targets."""
    periods, shards, accounts = plan.periods, plan.shards, plan.account_ids
    names = [str(partition_key(period, shard)) for period in periods for shard in shards]
    who = f"accounts {', '.join(accounts)}" if accounts else "all accounts"
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=dg.Definitions(assets=[statements]).resolve_asset_graph(),
        partition_names=names,
        asset_selection=[statements.key],
        backfill_timestamp=time.time(),
        tags={**run_tags(), SOURCE_TAG: "ops-backfill"},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=f"statements {periods[0].label}..{periods[-1].label}",
        description=f"payreports ops backfill: {len(periods)} month(s) x {len(shards)} shard(s), {who}",
        run_config={"ops": {"statements": {"config": {"account_ids": accounts}}}} if accounts else None,
    )
    instance.add_backfill(backfill)
    return StatementBackfill(backfill.backfill_id, periods, shards, accounts)


def backfill_status(instance: dg.DagsterInstance, backfill_id: str) -> tuple[str, bool]:
    """(status name, finished) of a backfill: REQUESTED, COMPLETED_SUCCESS, COMPLETED_FAILED, ..."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise InvalidParameter(f"no such backfill: {backfill_id}", param="backfill_id")
    return backfill.status.value, backfill.status in BULK_ACTION_TERMINAL_STATUSES


def backfill_from_cli(first_month: str, last_month: str, account_ids: Sequence[str], *,
                      wait: bool, echo: Callable[[str], None], poll_seconds: float = 2.0) -> str:
    """`payreports ops backfill`: submit on this project's instance, say what it targets; with
    `wait`, follow it until the daemon has finished it. Returns the backfill id."""
    from exports.dagster_home import prepare_dagster_home

    plan = plan_backfill(first_month, last_month, account_ids)
    prepare_dagster_home()  # the same instance (DAGSTER_HOME, run storage) as the daemon
    with dg.DagsterInstance.get() as instance:
        submitted = submit_backfill(instance, plan)
        who = (f"accounts {', '.join(submitted.account_ids)} (shards "
               f"{', '.join(SHARD_KEYS[s] for s in submitted.shards)})"
               if submitted.account_ids else "all accounts")
        echo(f"backfill {submitted.backfill_id}: statements {submitted.periods[0].label}.."
             f"{submitted.periods[-1].label}, {submitted.partitions} partition(s) "
             f"({len(submitted.periods)} month(s) x {len(submitted.shards)} shard(s)), {who}; "
             "the Dagster daemon runs it (UI: Overview > Backfills)")
        if not wait:
            return submitted.backfill_id
        while True:
            status, finished = backfill_status(instance, submitted.backfill_id)
            if finished:
                break
            time.sleep(poll_seconds)
        echo(f"backfill {submitted.backfill_id}: {status}")
        if status != "COMPLETED_SUCCESS":
            raise InvalidParameter(f"backfill {submitted.backfill_id} ended {status}; see its runs "
                                   "in the UI (failed statements say why on their reports)",
                                   param="backfill")
        return submitted.backfill_id
