"""One asset per replicated source table: raw.<table>, pulled incrementally by exports.replication."""


import dagster as dg

from exports import replication
from orchestration.resources import WarehouseResource

REPLICATION_GROUP = "replication"


def replication_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])


def _replication_asset(table: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=replication_asset_key(table),
        group_name=REPLICATION_GROUP,
        description=f"Source table `{table}` replicated into ClickHouse raw.{table} "
                    "(incremental on updated_at, ReplacingMergeTree; read with FINAL).",
        kinds={"clickhouse", "postgres"},
    )
    def _sync(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.open(purpose=f"replicate {table}") as client:
            result = replication.sync_table(client, table, warehouse.settings)
        context.log.info(f"raw.{table}: pulled {result.rows_pulled} rows "
                         f"({'full load' if result.full_load else 'incremental'}) in {result.seconds:.2f}s")
        return dg.MaterializeResult(metadata={
            "rows_pulled": dg.MetadataValue.int(result.rows_pulled),
            "watermark": dg.MetadataValue.text(result.watermark.isoformat()),
            "full_load": dg.MetadataValue.bool(result.full_load),
            "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        })

    return _sync


replication_assets = [_replication_asset(table) for table in replication.REPLICATED_TABLES]
