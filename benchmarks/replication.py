"""Replication throughput: exports.replication.sync_table (full load) vs a bare
`INSERT INTO scratch SELECT * FROM postgresql(...)` of the same table, measured in the same run.

    python benchmarks/replication.py --payments 1000000

Uses its own state dir and Postgres port by default (PAYREPORTS_STATE_DIR / _PORT override), and
regenerates the source there (generate_platform(reset=True)). The ratio is sync time / baseline
time: it is the cost of what sync adds (watermark window, _synced_at, column list, row count,
ReplacingMergeTree ordering by id) over ClickHouse's raw pull.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-generate", action="store_true", help="reuse the source already generated")
    args = parser.parse_args()
    os.environ.setdefault("PAYREPORTS_STATE_DIR", "/tmp/payreports-bench-replication")
    os.environ.setdefault("PAYREPORTS_EMBEDDED_POSTGRES_PORT", "56199")

    from exports import db, replication
    from exports.settings import get_settings
    from exports.source.generator import generate_platform
    from exports.warehouse import open_warehouse

    settings = get_settings()
    db.migrate("source", settings)
    db.migrate("app", settings)
    if not args.skip_generate:
        started = time.monotonic()
        summary = generate_platform(settings, seed=args.seed, payments=args.payments, days=args.days, reset=True)
        print(f"generated {summary.rows} in {time.monotonic() - started:.1f}s")

    tables = ("payments", "balance_transactions")
    with db.connect("app", settings) as conn:
        conn.execute("DELETE FROM replication_watermarks WHERE table_name = ANY(%s)", (list(tables),))
        conn.commit()
    print(f"{'table':<22}{'rows':>12}{'sync rows/s':>14}{'raw rows/s':>14}{'sync/raw time':>15}")
    with open_warehouse(settings, purpose="benchmark") as client:
        replication.ensure_raw_tables(client, settings)
        client.command("CREATE DATABASE IF NOT EXISTS bench_scratch")
        params = replication._source_parameters(settings)
        for table in tables:
            client.command(f"TRUNCATE TABLE {replication.raw_table(table, settings)}")
            result = replication.sync_table(client, table, settings)
            assert result.full_load
            columns = ", ".join(f"`{n}` {t}" for n, t in replication.source_columns(client, table, settings))
            client.command(f"DROP TABLE IF EXISTS bench_scratch.{table}")
            client.command(f"CREATE TABLE bench_scratch.{table} ({columns}) ENGINE = MergeTree ORDER BY tuple()")
            started = time.monotonic()
            client.command(f"INSERT INTO bench_scratch.{table} SELECT * FROM "
                           f"postgresql({{pg_host:String}}, {{pg_db:String}}, '{table}', "
                           "{pg_user:String}, {pg_password:String})", parameters=params)
            baseline = time.monotonic() - started
            copied = client.query(f"SELECT count() FROM bench_scratch.{table}").result_rows[0][0]
            assert copied == result.rows_pulled, (copied, result.rows_pulled)
            client.command(f"DROP TABLE bench_scratch.{table}")
            print(f"{table:<22}{result.rows_pulled:>12,}{result.rows_pulled / result.seconds:>14,.0f}"
                  f"{copied / baseline:>14,.0f}{result.seconds / baseline:>15.2f}")
        client.command("DROP DATABASE IF EXISTS bench_scratch")


if __name__ == "__main__":
    main()
