"""Fresh joined columns (issue 15): re-derive the fact's affected rows vs join at query time.

    nice python benchmarks/dimension_refresh.py --payments 10000000   # docs/capacity.md

A customer's email changes in the source. Today's design re-derives, in the next refresh, every
fact row whose joined customer/payment/refund/dispute changed (fct_balance_transactions'
incremental run, then the pre-aggregates of the days it rewrote); itemized reports then read the
fact's own columns. The alternative keeps the fact without dimension columns and joins
stg_payments/stg_customers (raw tables read with FINAL) in every itemized query. Measured in one
run on a generated platform (own state dir and Postgres port):

- the incremental `dbt run --select fct_balance_transactions+` with nothing changed, and after
  one customer's email changed (its transactions are months old);
- an itemized year of the biggest account reading the fact's columns vs joining the dimensions
  at query time (both wrapped in count/sum(cityHash64) so the engine's work is compared, not the
  transfer), which must agree on the new email.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FACT_COLUMNS = ("balance_transaction_id, created_at, net_minor, customer_email, customer_name, "
                "customer_description, statement_descriptor")


def dbt(*args: str) -> float:
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(REPO / "dbt_project" / "chdb_dbt.py"), *args],
                            cwd=REPO / "dbt_project", capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{result.stdout[-4000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-generate", action="store_true", help="reuse the platform already built")
    args = parser.parse_args()
    os.environ.setdefault("PAYREPORTS_STATE_DIR", "/tmp/payreports-bench-dimensions")
    os.environ.setdefault("PAYREPORTS_EMBEDDED_POSTGRES_PORT", "56221")

    from exports import db, replication
    from exports.services import postgres as embedded
    from exports.settings import get_settings
    from exports.source.generator import generate_platform
    from exports.warehouse import open_warehouse

    settings = get_settings()
    embedded.ensure_running(settings)
    db.migrate("source", settings)
    db.migrate("app", settings)
    marts = settings.warehouse_marts_database
    if not args.skip_generate:
        started = time.monotonic()
        summary = generate_platform(settings, payments=args.payments, days=args.days, reset=True)
        print(f"generated {summary.rows} in {time.monotonic() - started:.1f}s", flush=True)
        started = time.monotonic()
        with open_warehouse(settings, purpose="benchmark replicate") as client:
            replication.sync_all(client, settings)
        print(f"replicated in {time.monotonic() - started:.1f}s; dbt seed + run (full) "
              f"{dbt('seed') + dbt('run'):.1f}s", flush=True)

    with open_warehouse(settings, purpose="benchmark pick") as client:
        ledger = client.query(f"SELECT count() FROM {marts}.fct_balance_transactions").result_rows[0][0]
        account, rows = client.query(f"SELECT account_id, count() FROM {marts}.fct_balance_transactions "
                                     "GROUP BY 1 ORDER BY 2 DESC LIMIT 1").result_rows[0]
        # the customer with most transactions among the account's oldest quarter
        customer, customer_rows, newest = client.query(
            f"""SELECT customer_id, count(), max(created_at) FROM {marts}.fct_balance_transactions
                WHERE account_id = {{a:String}} AND customer_id IS NOT NULL
                  AND created_at < (SELECT min(created_at) + toIntervalDay({args.days // 4})
                                    FROM {marts}.fct_balance_transactions)
                GROUP BY 1 ORDER BY 2 DESC LIMIT 1""", parameters={"a": account}).result_rows[0]
        customer_rows = client.query(f"SELECT count() FROM {marts}.fct_balance_transactions "
                                     "WHERE customer_id = {c:String}", parameters={"c": customer}).result_rows[0][0]
        start, end = client.query(f"SELECT min(created_at), max(created_at) + toIntervalSecond(1) "
                                  f"FROM {marts}.fct_balance_transactions").result_rows[0]
    print(f"fact {ledger:,} rows; account {account} {rows:,} rows; customer {customer} with "
          f"{customer_rows} transactions, newest {newest}", flush=True)

    nothing = dbt("run", "--select", "fct_balance_transactions+")
    new_email = f"changed-{int(time.time())}@example.com"
    with db.connect("source", settings) as conn:
        conn.execute("UPDATE customers SET email = %s, updated_at = now() WHERE id = %s", (new_email, customer))
        conn.commit()
    with open_warehouse(settings, purpose="benchmark replicate") as client:
        replication.sync_all(client, settings)
    fact_only = dbt("run", "--select", "fct_balance_transactions")
    downstream = dbt("run", "--select", "fct_balance_transactions+", "--exclude", "fct_balance_transactions")
    print(f"incremental refresh, nothing changed: fct_balance_transactions+ {nothing:.1f}s", flush=True)
    print(f"after one customer's email changed: fct_balance_transactions {fact_only:.1f}s "
          f"+ its downstream models {downstream:.1f}s", flush=True)

    where = "account_id = {a:String} AND created_at >= {s:DateTime64(6, 'UTC')} AND created_at < {e:DateTime64(6, 'UTC')}"
    denormalized = f"SELECT {FACT_COLUMNS} FROM {marts}.fct_balance_transactions WHERE {where}"
    joined = f"""SELECT f.balance_transaction_id, f.created_at, f.net_minor, c.customer_email, c.customer_name,
           c.customer_description, p.statement_descriptor
    FROM (SELECT balance_transaction_id, created_at, net_minor, charge_id
          FROM {marts}.fct_balance_transactions WHERE {where}) AS f
    LEFT JOIN (SELECT payment_id, customer_id, statement_descriptor FROM {marts}.stg_payments
               WHERE account_id = {{a:String}}) AS p ON p.payment_id = f.charge_id
    LEFT JOIN (SELECT customer_id, customer_email, customer_name, customer_description FROM {marts}.stg_customers
               WHERE account_id = {{a:String}}) AS c ON c.customer_id = p.customer_id"""
    params = {"a": account, "s": start, "e": end}

    def timed(client, sql: str) -> tuple[float, tuple]:
        best, result = float("inf"), None
        wrapped = (f"SELECT count(), sum(cityHash64(balance_transaction_id, created_at, net_minor, customer_email, "
                   f"customer_name, customer_description, statement_descriptor)), "
                   f"countIf(customer_email = {{m:String}}) FROM ({sql})")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = client.query(wrapped, parameters={**params, "m": new_email}).result_rows[0]
            best = min(best, time.perf_counter() - t0)
        return best, result

    with open_warehouse(settings, purpose="benchmark itemized") as client:
        fact_s, fact_result = timed(client, denormalized)
        join_s, join_result = timed(client, joined)
    print(f"itemized year of {account} ({fact_result[0]:,} rows): fact's columns {fact_s:.3f}s, "
          f"join at query time {join_s:.3f}s ({join_s / fact_s:.1f}x); same rows {fact_result == join_result}, "
          f"new email on {fact_result[2]} rows", flush=True)
    if fact_result != join_result or fact_result[2] != customer_rows:
        raise SystemExit("the re-derived fact and the joined query disagree")


if __name__ == "__main__":
    main()
