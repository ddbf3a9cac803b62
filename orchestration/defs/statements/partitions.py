"""Statement partitions: month x stable account shard (exports.statements.shards).

64 shards x 12 months = 768 partitions a year, 7,680 over ten years, whatever the number of
accounts: far inside Dagster's ~100,000-partitions-per-asset guidance (docs/statements.md).
"""

from __future__ import annotations

import dagster as dg

from exports.settings import get_settings
from exports.statements.periods import StatementPeriod
from exports.statements.shards import SHARD_KEYS, parse_shard_key

MONTH, SHARD = "month", "shard"

statement_months = dg.MonthlyPartitionsDefinition(start_date=get_settings().statement_start_month)
statement_partitions = dg.MultiPartitionsDefinition({
    MONTH: statement_months,
    SHARD: dg.StaticPartitionsDefinition(list(SHARD_KEYS)),
})


def partition_key(period: StatementPeriod, shard: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({MONTH: period.key, SHARD: SHARD_KEYS[shard]})


def period_and_shard(key: str | dg.MultiPartitionKey) -> tuple[StatementPeriod, int]:
    if not isinstance(key, dg.MultiPartitionKey):
        key = statement_partitions.get_partition_key_from_str(key)
    dims = key.keys_by_dimension
    return StatementPeriod.from_key(dims[MONTH], "monthly"), parse_shard_key(dims[SHARD])


def range_tags(period: StatementPeriod, first_shard: int, last_shard: int) -> dict[str, str]:
    """Run tags targeting one month's shards first..last in one run (Dagster's documented
    partition-range tags; the asset reads them as context.partition_keys)."""
    return {"dagster/asset_partition_range_start": str(partition_key(period, first_shard)),
            "dagster/asset_partition_range_end": str(partition_key(period, last_shard))}
