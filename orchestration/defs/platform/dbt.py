"""dbt staging views and marts as Dagster assets (dagster-dbt), built by `dbt build`, whose tests
become asset checks. dbt runs through dbt_project/chdb_dbt.py (see orchestration/resources.py).

Two asset definitions over one dbt project:
- `platform_dbt_assets`: seeds, staging views and the table marts, rebuilt whole every run;
- `platform_dbt_incremental_assets`: the incremental marts (fct_balance_transactions, the
  15-minute pre-aggregates and their daily rollups), partitioned by UTC day so a data engineer
  can rebuild any date range from the UI (orchestration/defs/platform/partitions.py).
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.defs.platform.partitions import (
    dbt_vars_for, marts_backfill_policy, marts_daily_partitions,
)
from orchestration.defs.platform.replication import replication_asset_key
from orchestration.resources import dbt_project

INCREMENTAL = "config.materialized:incremental"


class PlatformDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the replication assets (raw.<table>); models are grouped by folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return replication_asset_key(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn") or []
        if dbt_resource_props["resource_type"] == "model" and len(fqn) > 2:
            return fqn[1]  # staging | marts
        return super().get_group_name(dbt_resource_props)


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=PlatformDbtTranslator(),
    name="platform_dbt",
    exclude=INCREMENTAL,
)
def platform_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=PlatformDbtTranslator(),
    name="platform_dbt_incremental",
    select=INCREMENTAL,
    partitions_def=marts_daily_partitions,
    backfill_policy=marts_backfill_policy,
)
def platform_dbt_incremental_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    dbt_vars = dbt_vars_for(context.partition_time_window)
    context.log.info(f"dbt vars {dbt_vars}")
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()
