"""`platform_refresh`: replication -> dbt build -> checks, daily and from `payreports demo`."""


import dagster as dg

from orchestration.defs.platform.checks import marts_fresh
from orchestration.defs.platform.dbt import platform_dbt_assets, platform_dbt_incremental_assets
from orchestration.defs.platform.partitions import marts_daily_partitions
from orchestration.defs.platform.replication import REPLICATION_GROUP
from orchestration.tags import warehouse_tags

platform_refresh = dg.define_asset_job(
    name="platform_refresh",
    selection=(dg.AssetSelection.groups(REPLICATION_GROUP)
               | dg.AssetSelection.assets(platform_dbt_assets, platform_dbt_incremental_assets)),
    partitions_def=marts_daily_partitions,
    description="Replicate the source into raw.*, build the dbt marts, run every check. Run for "
                "today's partition it applies every change; for older days it rebuilds those days.",
    tags=warehouse_tags(),
    # One process: the steps take turns on the embedded warehouse anyway, and per-step
    # subprocesses would each pay Dagster's import time on a small machine.
    executor_def=dg.in_process_executor,
)

# Daily at 01:15 UTC for the newest partition (today: end_offset=1), which catches up everything.
platform_refresh_daily = dg.build_schedule_from_partitioned_job(
    platform_refresh,
    name="platform_refresh_daily",
    hour_of_day=1,
    minute_of_hour=15,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

# The freshness check on its own, hourly: alerts when data is late even if no refresh runs.
marts_freshness = dg.define_asset_job(
    name="marts_freshness",
    selection=dg.AssetSelection.checks(marts_fresh),
    description="Check that reports' data-available time is recent (marts_fresh).",
)

marts_freshness_hourly = dg.ScheduleDefinition(
    name="marts_freshness_hourly",
    job=marts_freshness,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
