"""Asset checks that reconcile the warehouse with its inputs, with the numbers on failure.

- after replication, per table: row count and immutable amount sums of rows created up to the
  table's watermark, raw.<table> FINAL vs Postgres (exports.replication.reconcile_table);
- after dbt: per account, UTC day and currency, daily_balance_summary equals the sum of
  fct_balance_transactions;
- freshness: the time reports' data is available up to (the marts' built-through time) is not
  older than PAYREPORTS_MARTS_MAX_LAG_HOURS; evaluated after every refresh and hourly by the
  `marts_freshness` job, so late data alerts even when no refresh runs at all.
"""

from datetime import datetime, timezone


import dagster as dg

from exports import replication
from orchestration.defs.platform.replication import replication_asset_key
from orchestration.resources import WarehouseResource


def _replication_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=replication_asset_key(table),
        name="matches_source",
        blocking=True,  # dbt must not build marts from a warehouse that disagrees with the source
        description=f"raw.{table} FINAL has the same rows and immutable amount sums as the source, "
                    "for rows created up to the watermark.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.open(purpose=f"check raw.{table}") as client:
            rec = replication.reconcile_table(client, table, warehouse.settings)
        if rec.watermark is None:
            return dg.AssetCheckResult(passed=False, description=f"{table} was never replicated")
        metadata = {f"source_{k}": v for k, v in rec.source.items()}
        metadata.update({f"warehouse_{k}": v for k, v in rec.warehouse.items()})
        metadata["watermark"] = rec.watermark.isoformat()
        description = "matches" if rec.matches else "; ".join(
            f"{key}: source {d['source']} != warehouse {d['warehouse']}" for key, d in rec.differences.items())
        return dg.AssetCheckResult(passed=rec.matches, metadata=metadata, description=description)

    return _check


replication_checks = [_replication_check(table) for table in replication.REPLICATED_TABLES]

# Per account, day and currency; rows where either side disagrees (a missing side reads as 0).
DAILY_SUMMARY_MISMATCHES_SQL = """
WITH fact AS (
    SELECT account_id, toDate(created_at, 'UTC') AS day, currency,
           count() AS transaction_count, sum(gross_minor) AS gross_minor,
           sum(fee_minor) AS fee_minor, sum(net_minor) AS net_minor
    FROM {marts}.fct_balance_transactions
    GROUP BY account_id, day, currency
), summary AS (
    SELECT account_id, day, currency,
           sum(transaction_count) AS transaction_count, sum(gross_minor) AS gross_minor,
           sum(fee_minor) AS fee_minor, sum(net_minor) AS net_minor
    FROM {marts}.daily_balance_summary
    GROUP BY account_id, day, currency
)
SELECT account_id, day, currency,
       fact.transaction_count, summary.transaction_count, fact.gross_minor, summary.gross_minor,
       fact.fee_minor, summary.fee_minor, fact.net_minor, summary.net_minor
FROM fact FULL OUTER JOIN summary USING (account_id, day, currency)
WHERE fact.transaction_count != summary.transaction_count OR fact.gross_minor != summary.gross_minor
   OR fact.fee_minor != summary.fee_minor OR fact.net_minor != summary.net_minor
ORDER BY account_id, day, currency
LIMIT 20
"""


@dg.asset_check(
    asset=dg.AssetKey(["daily_balance_summary"]),
    name="matches_fact_per_day",
    description="Per account, UTC day and currency, daily_balance_summary totals equal the sum of "
                "fct_balance_transactions rows.",
)
def daily_balance_summary_matches_fact(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    marts = f"`{warehouse.settings.warehouse_marts_database}`"
    with warehouse.open(purpose="check daily_balance_summary") as client:
        rows = client.query(DAILY_SUMMARY_MISMATCHES_SQL.format(marts=marts)).result_rows
        days = client.query(f"SELECT uniqExact(toDate(created_at, 'UTC')) FROM {marts}.fct_balance_transactions"
                            ).result_rows[0][0]
    mismatches = [
        f"{acct} {day} {cur}: count {fc}!={sc}, gross {fg}!={sg}, fee {ff}!={sf}, net {fn}!={sn}"
        for acct, day, cur, fc, sc, fg, sg, ff, sf, fn, sn in rows
    ]
    return dg.AssetCheckResult(
        passed=not mismatches,
        metadata={"days_checked": int(days), "mismatched_groups_shown": len(mismatches),
                  "mismatches": dg.MetadataValue.md("\n".join(f"- {m}" for m in mismatches) or "none")},
        description="summary equals fact for every day" if not mismatches else "fact != summary: " + "; ".join(mismatches[:5]),
    )


@dg.asset_check(
    asset=dg.AssetKey(["balance_transactions_15m"]),
    name="marts_fresh",
    description="Reports' data is available up to a recent time: the marts were built through "
                "a replication watermark at most PAYREPORTS_MARTS_MAX_LAG_HOURS old.",
)
def marts_fresh(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    settings = warehouse.settings
    end = replication.data_available_end(settings)  # app database only, no warehouse
    limit = settings.marts_max_lag_hours
    if end is None:
        return dg.AssetCheckResult(passed=False, description="the marts were never built",
                                   metadata={"max_lag_hours": limit})
    lag_hours = (datetime.now(timezone.utc) - end).total_seconds() / 3600
    return dg.AssetCheckResult(
        passed=lag_hours <= limit,
        metadata={"data_available_end": end.isoformat(), "lag_hours": round(lag_hours, 2),
                  "max_lag_hours": limit, "per_model": dg.MetadataValue.json(
                      {m: t.isoformat() for m, t in replication.model_built_through(settings).items()})},
        description=(f"data available up to {end.isoformat()} ({lag_hours:.1f} h ago)" if lag_hours <= limit
                     else f"data is late: available up to {end.isoformat()}, {lag_hours:.1f} h ago "
                          f"(limit {limit} h); the refresh has not completed since"),
    )
