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
    checks = {k.to_user_string() for k in definitions.resolve_asset_graph().asset_check_keys}
    assert {f"raw/{t}:matches_source" for t in replication.REPLICATED_TABLES} <= checks
    assert "daily_balance_summary:matches_fact_per_day" in checks
    assert "fct_balance_transactions:assert_fct_net_is_gross_minus_fee" in checks  # dbt tests as checks
    job = definitions.resolve_job_def("platform_refresh")
    assert job.tags["warehouse"] == "embedded"
    assert definitions.resolve_schedule_def("platform_refresh_daily").job_name == "platform_refresh"
    # dbt's sources are the replication assets, so marts run after replication.
    graph = definitions.resolve_asset_graph()
    assert dg.AssetKey(["raw", "balance_transactions"]) in graph.get(
        dg.AssetKey("stg_balance_transactions")).parent_keys


def test_materialize_replication_and_dbt(demo_platform):
    from orchestration.defs.platform.checks import daily_balance_summary_matches_fact, replication_checks
    from orchestration.defs.platform.dbt import platform_dbt_assets
    from orchestration.defs.platform.replication import replication_assets
    from orchestration.resources import shared_resources

    selected = [*replication_assets, platform_dbt_assets, *replication_checks,
                daily_balance_summary_matches_fact]
    result = dg.materialize(
        selected,
        resources=shared_resources(),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw/payments" in materialized and "fct_balance_transactions" in materialized
    evaluations = result.get_asset_check_evaluations()
    # Every check of the selection ran once (dbt tests, replication's source match, the mart's
    # per-day match), and each passed.
    expected = {key for definition in selected for key in definition.check_keys}
    evaluated = [e.asset_check_key for e in evaluations]
    assert sorted(map(str, evaluated)) == sorted(map(str, expected))
    assert dg.AssetCheckKey(dg.AssetKey("daily_balance_summary"), "matches_fact_per_day") in expected
    failed = [e.check_name for e in evaluations if not e.passed]
    assert not failed
    pulled = {m.asset_key.to_user_string(): m.metadata["rows_pulled"].value
              for m in (e.step_materialization_data.materialization for e in result.get_asset_materialization_events())
              if m.asset_key.path[0] == "raw"}
    # Already replicated by the fixture: this run is incremental, nothing new in the source.
    assert pulled["raw/payments"] < demo_platform.source_rows["payments"]
