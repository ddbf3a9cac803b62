"""`platform_refresh`: replication -> dbt build -> checks, daily and from `payreports demo`."""


import dagster as dg

from orchestration.defs.platform.dbt import platform_dbt_assets
from orchestration.defs.platform.replication import REPLICATION_GROUP
from orchestration.tags import warehouse_tags

platform_refresh = dg.define_asset_job(
    name="platform_refresh",
    selection=dg.AssetSelection.groups(REPLICATION_GROUP) | dg.AssetSelection.assets(platform_dbt_assets),
    description="Replicate the source into raw.*, build the dbt marts, run every check.",
    tags=warehouse_tags(),
    # One process: the steps take turns on the embedded warehouse anyway, and per-step
    # subprocesses would each pay Dagster's import time on a small machine.
    executor_def=dg.in_process_executor,
)

platform_refresh_daily = dg.ScheduleDefinition(
    name="platform_refresh_daily",
    job=platform_refresh,
    cron_schedule="15 1 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
