"""dbt staging views and marts as Dagster assets (dagster-dbt), built by `dbt build`, whose tests
become asset checks. dbt runs through dbt_project/chdb_dbt.py (see orchestration/resources.py)."""


from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.defs.platform.replication import replication_asset_key
from orchestration.resources import dbt_project


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
)
def platform_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()
