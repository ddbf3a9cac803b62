"""The Dagster code location loads, lists the platform's assets/checks/job, and really runs
replication + dbt (dg.materialize) on the demo platform."""

from __future__ import annotations

import dagster as dg
import pytest

from exports import replication

pytestmark = pytest.mark.integration


def test_definitions_list_platform_assets_checks_and_job(settings):
    from orchestration.definitions import defs

    definitions = defs()
    keys = {k.to_user_string() for k in definitions.resolve_all_asset_keys()}
    assert {f"raw/{t}" for t in replication.REPLICATED_TABLES} <= keys
    assert {"fct_balance_transactions", "fct_payments", "fct_payouts", "dim_accounts",
            "daily_balance_summary", "daily_fee_summary", "stg_payments"} <= keys
    graph = definitions.resolve_asset_graph()
    checks = {k.to_user_string() for k in graph.asset_check_keys}
    assert {f"raw/{t}:matches_source" for t in replication.REPLICATED_TABLES} <= checks
    assert "daily_balance_summary:matches_fact_per_day" in checks
    assert "fct_balance_transactions:assert_fct_net_is_gross_minus_fee" in checks  # dbt tests as checks
    assert "balance_transactions_15m:marts_fresh" in checks
    job = definitions.resolve_job_def("platform_refresh")
    assert job.tags["warehouse"] == "embedded"
    assert job.partitions_def is not None  # day partitions of the incremental marts
    assert definitions.resolve_schedule_def("platform_refresh_daily").job_name == "platform_refresh"
    assert definitions.resolve_schedule_def("marts_freshness_hourly").job_name == "marts_freshness"
    incremental = graph.get(dg.AssetKey("fct_balance_transactions"))
    assert incremental.partitions_def is not None and incremental.backfill_policy is not None
    # dbt's sources are the replication assets, so marts run after replication.
    assert dg.AssetKey(["raw", "balance_transactions"]) in graph.get(
        dg.AssetKey("stg_balance_transactions")).parent_keys


def test_materialize_replication_and_dbt(demo_platform):
    from orchestration.defs.platform.checks import (
        daily_balance_summary_matches_fact, marts_fresh, replication_checks,
    )
    from orchestration.defs.platform.dbt import platform_dbt_assets, platform_dbt_incremental_assets
    from orchestration.defs.platform.partitions import latest_partition_key
    from orchestration.defs.platform.replication import replication_assets
    from orchestration.resources import shared_resources

    result = dg.materialize(
        [*replication_assets, platform_dbt_assets, platform_dbt_incremental_assets, *replication_checks,
         daily_balance_summary_matches_fact, marts_fresh],
        resources=shared_resources(),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=latest_partition_key(),
        raise_on_error=False,
    )
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw/payments" in materialized and "fct_balance_transactions" in materialized
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) > 50
    failed = [e.check_name for e in evaluations if not e.passed]
    assert not failed
    pulled = {m.asset_key.to_user_string(): m.metadata["rows_pulled"].value
              for m in (e.step_materialization_data.materialization for e in result.get_asset_materialization_events())
              if m.asset_key.path[0] == "raw"}
    # Already replicated by the fixture: this run is incremental, nothing new in the source.
    assert pulled["raw/payments"] < demo_platform.source_rows["payments"]

    # A Dagster run moves "data available up to" like any full build: to what it replicated.
    assert replication.data_available_end(demo_platform.settings) == replication.replicated_through(
        demo_platform.settings)


def test_materializing_a_day_partition_rebuilds_that_day_only(demo_platform):
    """A data engineer rebuilds one old day from the UI: the fact and the pre-aggregates rewrite
    that UTC day's rows and nothing else, and reports' data-available time does not move."""
    from orchestration.defs.platform.dbt import platform_dbt_incremental_assets
    from orchestration.resources import shared_resources
    from exports.warehouse import open_warehouse

    settings = demo_platform.settings
    day = "2026-10-15"
    loaded = ("SELECT toString(toDate(created_at, 'UTC')) AS d, count(), max(mart_loaded_at) "
              "FROM analytics.fct_balance_transactions GROUP BY d")
    buckets = "SELECT toString(day), max(fact_loaded_at) FROM analytics.balance_transactions_15m GROUP BY day"
    with open_warehouse(settings) as client:
        fact_before = {d: (n, t) for d, n, t in client.query(loaded).result_rows}
        buckets_before = dict(client.query(buckets).result_rows)
    available = replication.data_available_end(settings)
    assert fact_before[day][0] > 0
    result = dg.materialize([platform_dbt_incremental_assets], partition_key=day, resources=shared_resources(),
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} >= {
        "fct_balance_transactions", "balance_transactions_15m", "daily_balance_summary"}
    with open_warehouse(settings) as client:
        fact_after = {d: (n, t) for d, n, t in client.query(loaded).result_rows}
        buckets_after = dict(client.query(buckets).result_rows)
        rewritten = client.query(
            "SELECT countIf(mart_loaded_at > {t:DateTime64(6, 'UTC')}), count() FROM analytics.fct_balance_transactions "
            "WHERE toDate(created_at, 'UTC') = {d:Date}", parameters={"t": fact_before[day][1], "d": day}).result_rows[0]
    assert {d for d in fact_after if fact_after[d] != fact_before[d]} == {day}
    assert rewritten[0] == rewritten[1] == fact_before[day][0]  # every row of the day, no duplicate
    assert {d for d in buckets_after if buckets_after[d] != buckets_before.get(d)} == {day}
    assert replication.data_available_end(settings) == available
