"""orchestration/backfills.py submits statement backfills through Dagster's private
`PartitionBackfill` (taken from orchestration/dagster_internals.py; no public Python call submits
one in the pinned Dagster). If an upgrade moves, renames or changes what it uses, these fail
loudly instead of `payreports ops backfill` breaking in production."""

import inspect
from datetime import datetime, timezone

import dagster as dg
from orchestration.dagster_internals import (BULK_ACTION_TERMINAL_STATUSES, PartitionBackfill,
                                             make_new_backfill_id)

from exports.statements.periods import StatementPeriod
from orchestration import backfills
from orchestration.defs.statements.assets import statements

USED_PARAMETERS = {"backfill_id", "asset_graph", "partition_names", "asset_selection",
                   "backfill_timestamp", "tags", "dynamic_partitions_store", "all_partitions",
                   "title", "description", "run_config"}


def test_the_private_names_exist_with_the_parameters_the_module_passes():
    parameters = set(inspect.signature(PartitionBackfill.from_asset_partitions).parameters)
    assert USED_PARAMETERS <= parameters, USED_PARAMETERS - parameters
    assert callable(make_new_backfill_id) and make_new_backfill_id() != make_new_backfill_id()
    assert {s.value for s in BULK_ACTION_TERMINAL_STATUSES} >= {"COMPLETED_SUCCESS", "COMPLETED_FAILED"}
    assert callable(dg.DagsterInstance.add_backfill) and callable(dg.DagsterInstance.get_backfill)


def test_a_submitted_backfill_targets_exactly_the_planned_partitions_with_the_config():
    october = StatementPeriod.from_key("2026-10-01")
    plan = backfills.BackfillPlan([october], [3, 40], ["acct_a", "acct_b"])
    with dg.instance_for_test() as instance:
        submitted = backfills.submit_backfill(instance, plan)
        stored = instance.get_backfill(submitted.backfill_id)
        assert stored is not None and stored.status.value == "REQUESTED"
        targeted = stored.asset_backfill_data.target_subset.get_partitions_subset(statements.key)
        assert sorted(targeted.get_partition_keys()) == ["2026-10-01|03", "2026-10-01|40"]
        assert stored.run_config == {"ops": {"statements": {"config": {"account_ids": ["acct_a", "acct_b"]}}}}
        assert stored.tags["payreports/source"] == "ops-backfill"
        assert stored.tags["dagster/retry_on_asset_or_op_failure"] == "false"
        assert backfills.backfill_status(instance, submitted.backfill_id) == ("REQUESTED", False)


def test_plans_refuse_months_that_have_not_ended():
    import pytest

    from exports.errors import InvalidParameter

    with pytest.raises(InvalidParameter) as caught:
        backfills.plan_backfill("2026-10", "2026-12", now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert caught.value.param == "--to" and "2026-11" in caught.value.message
    plan = backfills.plan_backfill("2026-10", "2026-11", now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert [p.label for p in plan.periods] == ["2026-10", "2026-11"] and len(plan.shards) == 64
