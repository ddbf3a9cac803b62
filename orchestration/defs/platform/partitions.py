"""Day partitions of the incremental marts (fct_balance_transactions and the pre-aggregates).

A partition is a UTC day of balance transactions (by created_at). Materializing a range rebuilds
exactly those days' rows from the raw tables; the newest partition (today, still filling) also
applies every change that arrived since the last build, whatever day it belongs to — which is
what the daily refresh runs. A backfill of older days therefore touches those days only.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

MARTS_PARTITIONS_START = "2020-01-01"

marts_daily_partitions = dg.DailyPartitionsDefinition(
    start_date=MARTS_PARTITIONS_START, timezone="UTC", end_offset=1,  # today's partition exists
)

# Up to a month of days per run: one dbt invocation rebuilds the whole range at once.
marts_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)


def latest_partition_key(now: datetime | None = None) -> str:
    """Today's (UTC) partition: the one a refresh materializes."""
    return marts_daily_partitions.get_partition_key_for_timestamp(
        (now or datetime.now(timezone.utc)).timestamp())


def dbt_vars_for(window: dg.TimeWindow, now: datetime | None = None) -> dict[str, object]:
    """dbt vars of a partitioned run (dbt_project/macros/conventions.sql: partition_window)."""
    latest = marts_daily_partitions.time_window_for_partition_key(latest_partition_key(now))
    return {"min_day": window.start.date().isoformat(), "max_day": window.end.date().isoformat(),
            "catch_up": window.end >= latest.end}
