"""Summary reports from the pre-aggregates vs from the fact, measured in the same run.

    python benchmarks/summaries.py --rows 2000000                 # develop
    nice python benchmarks/summaries.py --rows 100000000 --big-share 0.5   # docs/capacity.md

The ledger is generated directly in ClickHouse with numbers() (the Python source generator would
take hours at this size) into a private marts database: fct_balance_transactions (the columns
summaries read), fct_payouts and dim_accounts. One big account (Asia/Kolkata) holds `--big-share`
of the rows over a year; the rest spread over `--accounts` accounts in six timezones. The
pre-aggregates (exports.reports.types.buckets.PREAGGREGATES) are then built by the real dbt
models (`dbt run --select ...`, a first build = full).

Every summary type runs, in each account's own timezone, over a year with two kinds of edges:
`ragged` (any microsecond: local days, UTC days, 15-minute buckets and the fact all take part)
and `days` (the local calendar year, as schedules ask), for the big account and for "the
platform as a whole", read as: every one of `--sample` other accounts summarised in turn (a
platform-wide run is one per-account report each; times are summed). Each query is run with
preaggregated=True and False and must return identical rows (same cents). Printed: the query
floor, best of `--repeat` wall times and the ratio fact / pre-aggregate (goal >= 20x).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from exports.reports.types.buckets import PREAGGREGATES  # noqa: E402

MARTS = "bench_summaries"
YEAR_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
BIG_TIMEZONE = "Asia/Kolkata"
# The other accounts' timezones, in turn: half-hour, 45-minute, DST and whole-hour offsets.
OTHER_TIMEZONES = ("Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Europe/Berlin", "UTC", "Australia/Lord_Howe")

# share of rows per reporting category, in percent (sums to 100)
CATEGORY_MIX = (("charge", 72), ("refund", 8), ("fee", 6), ("dispute", 1), ("dispute_reversal", 1),
                ("other_adjustment", 2), ("charge_failure", 1), ("refund_failure", 1), ("payout", 8))


def _category_sql(n: str) -> str:
    cases, upper = [], 0
    for name, share in CATEGORY_MIX[:-1]:
        upper += share
        cases.append(f"{n} % 100 < {upper}, '{name}'")
    return f"multiIf({', '.join(cases)}, '{CATEGORY_MIX[-1][0]}')"


def generate(client, rows: int, accounts: int, big_share: float) -> None:
    client.command(f"DROP DATABASE IF EXISTS {MARTS}")
    client.command(f"CREATE DATABASE {MARTS}")
    client.command(f"""CREATE TABLE {MARTS}.fct_balance_transactions (
        balance_transaction_id String, account_id String, created_at DateTime64(6, 'UTC'),
        currency String, currency_exponent UInt8, gross_minor Int64, fee_minor Int64, net_minor Int64,
        reporting_category String, source_id Nullable(String), automatic_payout_id Nullable(String),
        mart_loaded_at DateTime64(6, 'UTC'))
        ENGINE = MergeTree ORDER BY (account_id, created_at, balance_transaction_id)
        PARTITION BY toYYYYMM(created_at)""")
    year_us = 365 * 86_400 * 1_000_000
    start_us = int(YEAR_START.timestamp()) * 1_000_000
    big = int(big_share * 1000)
    # account: the big one for big_share of rows, else one of `accounts`; deterministic hashes.
    account = (f"if(sipHash64(number, 1) % 1000 < {big}, 'acct_big', "
               f"concat('acct_', toString(sipHash64(number, 2) % {accounts})))")
    category = _category_sql("sipHash64(number, 3)")
    gross = (f"multiIf(cat IN ('charge', 'dispute_reversal'), amount, cat = 'other_adjustment', amount % 5000 - 2500,"
             f" cat = 'payout', -amount * 12, -amount)")
    fee = "if(cat IN ('charge', 'dispute', 'dispute_reversal'), toInt64(amount * 29 / 1000 + 30) * if(cat = 'dispute_reversal', -1, 1), 0)"
    client.command(f"""INSERT INTO {MARTS}.fct_balance_transactions
        SELECT concat('txn_', toString(number)) AS balance_transaction_id, acct AS account_id,
               fromUnixTimestamp64Micro(toInt64({start_us} + sipHash64(number, 4) % {year_us}), 'UTC') AS created_at,
               if(sipHash64(number, 5) % 5 = 0, 'eur', 'usd') AS currency, toUInt8(2) AS currency_exponent,
               g AS gross_minor, f AS fee_minor, g - f AS net_minor, cat AS reporting_category,
               concat(if(cat = 'payout', 'po_', 'ch_'), toString(number)) AS source_id,
               if(sipHash64(number, 6) % 10 < 9 AND cat != 'payout',
                  concat('po_', acct, '_', toString(toDate(created_at) + 2)), NULL) AS automatic_payout_id,
               now64(6, 'UTC') AS mart_loaded_at
        FROM (SELECT number, {account} AS acct, {category} AS cat,
                     toInt64(100 + sipHash64(number, 7) % 20000) AS amount, {gross} AS g, {fee} AS f
              FROM numbers({rows}))""", settings={"max_insert_threads": 1})
    client.command(f"""CREATE TABLE {MARTS}.fct_payouts (payout_id String, account_id String,
        created_at DateTime64(6, 'UTC')) ENGINE = MergeTree ORDER BY (account_id, created_at, payout_id)""")
    client.command(f"""INSERT INTO {MARTS}.fct_payouts
        SELECT DISTINCT assumeNotNull(automatic_payout_id), account_id,
               toDateTime64(toDate(substring(assumeNotNull(automatic_payout_id), -10)), 6, 'UTC') + toIntervalHour(6)
        FROM {MARTS}.fct_balance_transactions WHERE automatic_payout_id IS NOT NULL""")
    client.command(f"""CREATE TABLE {MARTS}.dim_accounts (account_id String, name String, timezone String)
        ENGINE = MergeTree ORDER BY account_id""")
    zones = "[" + ", ".join(f"'{tz}'" for tz in OTHER_TIMEZONES) + "]"
    client.command(f"""INSERT INTO {MARTS}.dim_accounts
        SELECT account_id, account_id,
               if(account_id = 'acct_big', '{BIG_TIMEZONE}', {zones}[1 + sipHash64(account_id) % {len(OTHER_TIMEZONES)}])
        FROM (SELECT DISTINCT account_id FROM {MARTS}.fct_balance_transactions)""")


def build_preaggregates() -> float:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(REPO / "dbt_project" / "chdb_dbt.py"), "run", "--select", *PREAGGREGATES],
        cwd=REPO / "dbt_project", capture_output=True, text=True,
        env={**os.environ, "PAYREPORTS_WAREHOUSE_MARTS_DATABASE": MARTS})
    if result.returncode != 0:
        raise SystemExit(f"dbt run failed:\n{result.stdout[-4000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--big-share", type=float, default=0.3, help="share of rows in the big account")
    parser.add_argument("--sample", type=int, default=20, help="other accounts summarised (the platform)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-generate", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PAYREPORTS_STATE_DIR", "/tmp/payreports-bench-summaries")
    os.environ.setdefault("PAYREPORTS_EMBEDDED_POSTGRES_PORT", "56217")
    os.environ["PAYREPORTS_WAREHOUSE_MARTS_DATABASE"] = MARTS

    from exports import db
    from exports.reports.catalog import REPORT_TYPES
    from exports.reports.engine import build_report_query, validate_report_request
    from exports.services import postgres as embedded
    from exports.settings import get_settings
    from exports.warehouse import open_warehouse

    settings = get_settings()
    embedded.ensure_running(settings)  # the dbt launcher reads replication state from the app db
    db.migrate("app", settings)
    if not args.skip_generate:
        started = time.monotonic()
        with open_warehouse(settings, purpose="benchmark generate") as client:
            generate(client, args.rows, args.accounts, args.big_share)
        print(f"generated {args.rows:,} ledger rows in {time.monotonic() - started:.1f}s")
        print(f"built {', '.join(PREAGGREGATES)} (dbt, full) in {build_preaggregates():.1f}s")

    summaries = [t for t in REPORT_TYPES.values() if t.shape == "summary"]

    def interval(edges: str, tz: str) -> tuple[datetime, datetime]:
        if edges == "ragged":  # any microsecond: every grain and the fact take part
            return (YEAR_START + timedelta(hours=3, minutes=7, seconds=11, microseconds=5),
                    YEAR_START + timedelta(days=365, hours=-2, minutes=-3, seconds=-1))
        local = ZoneInfo(tz)  # the calendar year in the account's timezone, as schedules ask
        return datetime(2025, 1, 1, tzinfo=local), datetime(2026, 1, 1, tzinfo=local)

    def timed(client, sql, parameters=None) -> tuple[float, list]:
        best, rows = float("inf"), None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = client.query(sql, parameters=parameters).result_rows
            best = min(best, time.perf_counter() - t0)
        return best, rows

    with open_warehouse(settings, purpose="benchmark summaries") as client:
        sizes = dict(client.query(
            f"SELECT table, sum(rows) FROM system.parts WHERE database = '{MARTS}' AND active GROUP BY table").result_rows)
        big_rows = client.query(f"SELECT count() FROM {MARTS}.fct_balance_transactions "
                                "WHERE account_id = 'acct_big'").result_rows[0][0]
        others = client.query(
            f"SELECT account_id, timezone FROM {MARTS}.dim_accounts WHERE account_id != 'acct_big' "
            f"ORDER BY sipHash64(account_id) LIMIT {args.sample}").result_rows
        print(f"fact rows {sizes.get('fct_balance_transactions', 0):,} (big account {big_rows:,}); pre-aggregate rows "
              + ", ".join(f"{name} {sizes.get(name, 0):,}" for name in PREAGGREGATES))
        # What no query goes below: a round trip, and one account's rows of a tiny table.
        floor_trip, _ = timed(client, "SELECT 1")
        floor_lookup, _ = timed(client, f"SELECT timezone FROM {MARTS}.dim_accounts WHERE account_id = {{a:String}}",
                                {"a": others[0][0]})
        print(f"query floor: SELECT 1 {floor_trip * 1000:.1f} ms, one account's row of dim_accounts "
              f"{floor_lookup * 1000:.1f} ms")
        print(f"{'summary':<40}{'edges':<8}{'scope':<24}{'fact s':>9}{'preagg s':>10}{'ratio':>8}  same")
        totals: dict[tuple[str, str], list[float]] = {}
        for edges in ("ragged", "days"):
            for report in summaries:
                for scope, accounts in (("big account-year", [("acct_big", BIG_TIMEZONE)]),
                                        (f"platform ({len(others)} accounts)", others)):
                    fact_s = pre_s = 0.0
                    same = True
                    for account, tz in accounts:
                        start, end = interval(edges, tz)
                        params = {"interval_end": end.isoformat(), "timezone": tz}
                        if report.interval != "end_only":
                            params["interval_start"] = start.isoformat()
                        validated = validate_report_request(account, report.id, params, "csv", settings=settings,
                                                            now=end + timedelta(days=1), data_available_end=None,
                                                            account_timezone=tz)
                        fast = build_report_query(client, validated, settings=settings)
                        slow = build_report_query(client, validated, settings=settings, preaggregated=False)
                        f_s, f_rows = timed(client, slow.sql, slow.parameters)
                        p_s, p_rows = timed(client, fast.sql, fast.parameters)
                        fact_s, pre_s, same = fact_s + f_s, pre_s + p_s, same and f_rows == p_rows
                    total = totals.setdefault((edges, scope.split(" ")[0]), [0.0, 0.0])
                    total[0] += fact_s
                    total[1] += pre_s
                    print(f"{report.id:<40}{edges:<8}{scope:<24}{fact_s:>9.3f}{pre_s:>10.3f}{fact_s / pre_s:>7.1f}x  "
                          f"{'yes' if same else 'NO'}", flush=True)
                    if not same:
                        raise SystemExit(f"{report.id}: pre-aggregated rows differ from the fact's")
        for (edges, scope), (fact_s, pre_s) in totals.items():
            print(f"all summaries, {edges} edges, {scope}: fact {fact_s:.3f} s / pre-aggregates {pre_s:.3f} s "
                  f"= {fact_s / pre_s:.1f}x")


if __name__ == "__main__":
    main()
