"""Every report type's query run against a real warehouse, checked cent-for-cent against the
SOURCE Postgres computed independently with SQL on the `payments` database.

Data: a small hand-made platform written to the source Postgres AND to marts tables in chdb
(the shapes of docs/warehouse-contract.md), so the expectations below are exact and the edge
cases (a charge at 23:30 UTC, a payout settling transactions from two days, another account's
payout) are there on purpose.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from exports import db
from exports.errors import InvalidParameter
from exports.reports.catalog import REPORT_TYPES
from exports.reports.engine import build_report_query, validate_report_request
from exports.reports.types.buckets import PREAGGREGATES
from exports.warehouse import open_warehouse

pytestmark = pytest.mark.integration

UTC = timezone.utc
NOW = datetime(2024, 4, 1, tzinfo=UTC)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


ACCOUNTS = [
    # id, name, timezone
    ("acct_tokyo", "Tokyo Tea KK", "Asia/Tokyo"),
    ("acct_other", "Other GmbH", "Europe/Berlin"),
]
CUSTOMERS = [("cus_1", "acct_tokyo", "ann@example.com", "Ann"), ("cus_2", "acct_tokyo", "bo@example.com", "Bo"),
             ("cus_9", "acct_other", "zed@example.com", "Zed")]
# id, account, customer, amount, refunded, currency, status, created
PAYMENTS = [
    ("ch_1", "acct_tokyo", "cus_1", 10000, 2000, "usd", "succeeded", "2024-03-01 10:00:00"),
    ("ch_2", "acct_tokyo", "cus_2", 5000, 0, "usd", "disputed", "2024-03-01 23:30:00"),
    ("ch_3", "acct_tokyo", "cus_1", 20000, 0, "eur", "succeeded", "2024-03-04 08:00:00"),
    ("ch_4", "acct_tokyo", "cus_2", 30000, 0, "usd", "succeeded", "2024-03-04 10:00:00"),
    ("ch_5", "acct_tokyo", "cus_1", 4000, 0, "usd", "failed", "2024-03-04 11:00:00"),
    ("ch_9", "acct_other", "cus_9", 7000, 0, "usd", "succeeded", "2024-03-01 12:00:00"),
]
REFUNDS = [("re_1", "acct_tokyo", "ch_1", 2000, "usd", "2024-03-02 09:00:00")]
DISPUTES = [("dp_1", "acct_tokyo", "ch_2", 5000, "usd", "fraudulent", "2024-03-02 12:00:00")]
# id, account, amount, currency, created, arrival
PAYOUTS = [
    ("po_1", "acct_tokyo", 12505, "usd", "2024-03-03 06:00:00", "2024-03-05"),
    ("po_2", "acct_tokyo", 22500, "usd", "2024-03-05 06:00:00", "2024-03-07"),
    ("po_9", "acct_other", 6770, "usd", "2024-03-03 07:00:00", "2024-03-05"),
]
# id, account, gross, fee, currency, category, source, payout_id, created
TXNS = [
    ("txn_1", "acct_tokyo", 10000, 320, "usd", "charge", "ch_1", "po_1", "2024-03-01 10:00:00"),
    ("txn_2", "acct_tokyo", 5000, 175, "usd", "charge", "ch_2", "po_1", "2024-03-01 23:30:00"),
    ("txn_3", "acct_tokyo", -2000, 0, "usd", "refund", "re_1", "po_1", "2024-03-02 09:00:00"),
    ("txn_4", "acct_tokyo", -5000, 1500, "usd", "dispute", "dp_1", "po_2", "2024-03-02 12:00:00"),
    ("txn_5", "acct_tokyo", -100, 0, "usd", "fee", None, "po_2", "2024-03-03 00:10:00"),
    ("txn_6", "acct_tokyo", -12505, 0, "usd", "payout", "po_1", None, "2024-03-03 06:00:00"),
    ("txn_7", "acct_tokyo", 20000, 600, "eur", "charge", "ch_3", None, "2024-03-04 08:00:00"),
    ("txn_8", "acct_tokyo", 30000, 900, "usd", "charge", "ch_4", "po_2", "2024-03-04 10:00:00"),
    ("txn_9", "acct_tokyo", -22500, 0, "usd", "payout", "po_2", None, "2024-03-05 06:00:00"),
    ("txn_10", "acct_tokyo", 1000, 0, "usd", "other_adjustment", None, None, "2024-03-06 01:00:00"),
    ("txn_90", "acct_other", 7000, 230, "usd", "charge", "ch_9", "po_9", "2024-03-01 12:00:00"),
    ("txn_91", "acct_other", -6770, 0, "usd", "payout", "po_9", None, "2024-03-03 07:00:00"),
]
EXPONENT = {"usd": 2, "eur": 2}


def _write_source(settings) -> None:
    with db.connect("source", settings) as conn:
        for table in ("balance_transactions", "payouts", "disputes", "refunds", "payments", "customers",
                      "accounts"):
            conn.execute(f"DELETE FROM {table}")
        for acct, name, tz in ACCOUNTS:
            conn.execute("INSERT INTO accounts (id, name, email, country, timezone, default_currency,"
                         " created_at, updated_at) VALUES (%s, %s, 'x@example.com', 'JP', %s, 'usd',"
                         " '2024-01-01', '2024-01-01')", (acct, name, tz))
        for cus, acct, email, name in CUSTOMERS:
            conn.execute("INSERT INTO customers VALUES (%s, %s, %s, %s, NULL, '2024-01-01', '2024-01-01')",
                         (cus, acct, email, name))
        for pid, acct, cus, amount, refunded, cur, status, created in PAYMENTS:
            conn.execute("INSERT INTO payments (id, account_id, customer_id, payment_intent_id, amount,"
                         " amount_refunded, currency, status, payment_method_type, card_brand,"
                         " description, created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,"
                         " 'card','visa',%s,%s,%s)",
                         (pid, acct, cus, "pi_" + pid, amount, refunded, cur, status, f"Order {pid}",
                          ts(created), ts(created)))
        for rid, acct, pid, amount, cur, created in REFUNDS:
            conn.execute("INSERT INTO refunds VALUES (%s,%s,%s,%s,%s,'succeeded',NULL,%s,%s)",
                         (rid, acct, pid, amount, cur, ts(created), ts(created)))
        for did, acct, pid, amount, cur, reason, created in DISPUTES:
            conn.execute("INSERT INTO disputes VALUES (%s,%s,%s,%s,%s,'lost',%s,NULL,%s,%s)",
                         (did, acct, pid, amount, cur, reason, ts(created), ts(created)))
        for po, acct, amount, cur, created, arrival in PAYOUTS:
            conn.execute("INSERT INTO payouts (id, account_id, amount, currency, status, arrival_date,"
                         " created_at, updated_at) VALUES (%s,%s,%s,%s,'paid',%s,%s,%s)",
                         (po, acct, amount, cur, arrival, ts(created), ts(created)))
        for tid, acct, gross, fee, cur, cat, source, payout, created in TXNS:
            conn.execute("INSERT INTO balance_transactions (id, account_id, amount, fee, net, currency,"
                         " type, reporting_category, source_id, description, payout_id, available_on,"
                         " created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                         (tid, acct, gross, fee, gross - fee, cur, cat, cat, source, f"{cat} {tid}",
                          payout, ts(created), ts(created), ts(created)))
        conn.commit()


MART_DDL = {
    "dim_accounts": "account_id String, name String, email String, country String, timezone String,"
                    " default_currency String, payout_schedule String, created_at DateTime64(6, 'UTC')",
    "fct_payouts": "payout_id String, account_id String, created_at DateTime64(6, 'UTC'), arrival_date Date,"
                   " currency String, currency_exponent UInt8, amount_minor Int64, status String,"
                   " automatic Bool, type String, method String, description Nullable(String),"
                   " destination_id Nullable(String), reversed_at Nullable(DateTime64(6, 'UTC')),"
                   " updated_at DateTime64(6, 'UTC')",
    "fct_payments": "payment_id String, account_id String, created_at DateTime64(6, 'UTC'), currency String,"
                    " currency_exponent UInt8, amount_minor Int64, amount_refunded_minor Int64,"
                    " amount_disputed_minor Int64, status String, payment_method_type String,"
                    " card_brand Nullable(String), card_funding Nullable(String),"
                    " card_country Nullable(String), customer_id Nullable(String),"
                    " customer_email Nullable(String), customer_name Nullable(String),"
                    " description Nullable(String), statement_descriptor Nullable(String),"
                    " failure_code Nullable(String), payment_intent_id Nullable(String),"
                    " payment_metadata Nullable(String), invoice_id Nullable(String),"
                    " fee_minor Int64, net_minor Int64,"
                    " updated_at DateTime64(6, 'UTC')",
    "fct_balance_transactions": "balance_transaction_id String, account_id String,"
                    " created_at DateTime64(6, 'UTC'), available_on DateTime64(6, 'UTC'), currency String,"
                    " currency_exponent UInt8, gross_minor Int64, fee_minor Int64, net_minor Int64,"
                    " type String, reporting_category String, source_id Nullable(String),"
                    " description Nullable(String), status String, automatic_payout_id Nullable(String),"
                    " charge_id Nullable(String), payment_intent_id Nullable(String),"
                    " refund_id Nullable(String), dispute_id Nullable(String),"
                    " customer_id Nullable(String), customer_email Nullable(String),"
                    " customer_name Nullable(String), customer_description Nullable(String),"
                    " charge_created_at Nullable(DateTime64(6, 'UTC')),"
                    " payment_method_type Nullable(String), card_brand Nullable(String),"
                    " card_funding Nullable(String), card_country Nullable(String),"
                    " statement_descriptor Nullable(String), dispute_reason Nullable(String),"
                    " payment_metadata Nullable(String), invoice_id Nullable(String),"
                    " customer_facing_amount_minor Nullable(Int64),"
                    " customer_facing_currency Nullable(String), updated_at DateTime64(6, 'UTC'),"
                    " mart_loaded_at DateTime64(6, 'UTC') DEFAULT now64(6, 'UTC')",
}


def _write_marts(client, marts: str) -> None:
    """What dbt would build from the source rows above (only the columns reports read)."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {marts}")
    for table, columns in MART_DDL.items():
        client.command(f"DROP TABLE IF EXISTS {marts}.{table}")
        client.command(f"CREATE TABLE {marts}.{table} ({columns}) ENGINE = MergeTree ORDER BY tuple()")
    client.insert(f"{marts}.dim_accounts",
                  [[a, n, "x@example.com", "JP", tz, "usd", "daily", ts("2024-01-01 00:00:00")]
                   for a, n, tz in ACCOUNTS],
                  column_names=["account_id", "name", "email", "country", "timezone", "default_currency",
                                "payout_schedule", "created_at"])
    client.insert(f"{marts}.fct_payouts",
                  [[po, a, ts(c), datetime.fromisoformat(arr).date(), cur, EXPONENT[cur], amt, "paid", True,
                    "bank_account", "standard", None, None, ts(c)]
                   for po, a, amt, cur, c, arr in PAYOUTS],
                  column_names=["payout_id", "account_id", "created_at", "arrival_date", "currency",
                                "currency_exponent", "amount_minor", "status", "automatic", "type",
                                "method", "description", "destination_id", "updated_at"])
    customers = {c[0]: c for c in CUSTOMERS}
    charge_fee = {t[6]: t[3] for t in TXNS if t[5] == "charge"}
    client.insert(f"{marts}.fct_payments",
                  [[p, a, ts(c), cur, EXPONENT[cur], amt, refunded, 5000 if p == "ch_2" else 0, status,
                    "card", "visa", None, None, cus, customers[cus][2], customers[cus][3],
                    f"Order {p}", None, None, "pi_" + p, "{}", charge_fee.get(p, 0),
                    amt - charge_fee.get(p, 0) if p in charge_fee else 0, ts(c)]
                   for p, a, cus, amt, refunded, cur, status, c in PAYMENTS],
                  column_names=["payment_id", "account_id", "created_at", "currency", "currency_exponent",
                                "amount_minor", "amount_refunded_minor", "amount_disputed_minor", "status",
                                "payment_method_type", "card_brand", "card_funding", "card_country",
                                "customer_id", "customer_email", "customer_name", "description",
                                "statement_descriptor", "failure_code", "payment_intent_id",
                                "payment_metadata", "fee_minor", "net_minor", "updated_at"])
    refund_of = {r[0]: r[2] for r in REFUNDS}
    dispute_of = {d[0]: d[2] for d in DISPUTES}
    payment = {p[0]: p for p in PAYMENTS}
    rows = []
    for tid, a, gross, fee, cur, cat, source, payout, created in TXNS:
        charge = source if (source or "").startswith("ch_") else refund_of.get(source) or dispute_of.get(source)
        cus = payment[charge][2] if charge else None
        rows.append([tid, a, ts(created), ts(created), cur, EXPONENT[cur], gross, fee, gross - fee, cat, cat,
                     source, f"{cat} {tid}", "available", payout, charge, ("pi_" + charge) if charge else None,
                     cus and customers[cus][2], cus and customers[cus][3],
                     ts(payment[charge][7]) if charge else None,
                     json.dumps({"order_id": f"ord_{charge}", "note": "x'y"}) if charge else None,
                     ts(created)])
    client.insert(f"{marts}.fct_balance_transactions", rows,
                  column_names=["balance_transaction_id", "account_id", "created_at", "available_on",
                                "currency", "currency_exponent", "gross_minor", "fee_minor", "net_minor",
                                "type", "reporting_category", "source_id", "description", "status",
                                "automatic_payout_id", "charge_id", "payment_intent_id", "customer_email",
                                "customer_name", "charge_created_at", "payment_metadata", "updated_at"])


CATALOG_SOURCE_DB = "catalog_source"
CATALOG_MARTS = "catalog_marts"
_SETTINGS = {}


@pytest.fixture(scope="module")
def platform(postgres):
    """Own source database and marts database on the session's servers, so the session's shared
    demo platform is left untouched."""
    from exports.services import postgres as embedded

    with psycopg.connect(embedded.server_url(postgres), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (CATALOG_SOURCE_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{CATALOG_SOURCE_DB}"')
    settings = postgres.model_copy(update={
        "source_database_url": embedded.server_url(postgres, CATALOG_SOURCE_DB),
        "warehouse_marts_database": CATALOG_MARTS})
    db.migrate("source", settings)
    _SETTINGS["settings"] = settings
    _write_source(settings)
    with open_warehouse(settings, purpose="test_report_types setup") as client:
        _write_marts(client, settings.warehouse_marts_database)
        for table in PREAGGREGATES:
            client.command(f"DROP TABLE IF EXISTS {CATALOG_MARTS}.{table}")
    # The summaries' pre-aggregates, built from the marts above by the real dbt model.
    import os
    import subprocess
    import sys

    from tests.fixtures.platform import DBT_LAUNCHER
    built = subprocess.run(
        [sys.executable, str(DBT_LAUNCHER), "run", "--select", *PREAGGREGATES],
        cwd=DBT_LAUNCHER.parent, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PAYREPORTS_WAREHOUSE_MARTS_DATABASE": CATALOG_MARTS})
    assert built.returncode == 0, built.stdout[-4000:]
    return settings


@pytest.fixture
def client(platform):
    # Per test, so tests that open the warehouse themselves (CLI, generate_report) can take the lock.
    with open_warehouse(platform, purpose="test_report_types") as opened:
        yield opened


@pytest.fixture(scope="module")
def source(platform):
    with db.connect("source", platform, autocommit=True) as conn:
        yield conn


def run(client, report_type: str, parameters: dict, *, account: str = "acct_tokyo",
        account_timezone: str | None = None) -> list[dict]:
    settings = _SETTINGS["settings"]
    validated = validate_report_request(account, report_type, parameters, "csv", now=NOW, settings=settings,
                                        account_timezone=account_timezone, data_available_end=NOW)
    query = build_report_query(client, validated, settings=settings)
    result = client.query(query.sql, parameters=query.parameters)
    names = [c.name for c in query.columns] + ["_currency", "_exponent"]
    assert list(result.column_names) == names
    return [dict(zip(names, row)) for row in result.result_rows]


def source_rows(conn: psycopg.Connection, sql: str, params: tuple) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


MARCH = {"interval_start": "2024-03-01", "interval_end": "2024-03-06", "timezone": "UTC"}


def test_every_type_runs_with_default_and_all_columns(client):
    for report in REPORT_TYPES.values():
        params = {"interval_end": "2024-03-06", "timezone": "UTC"}
        if report.interval != "end_only":
            params["interval_start"] = "2024-03-01"
        rows = run(client, report.id, params)
        assert rows, report.id
        all_columns = run(client, report.id, {**params, "columns": list(reversed(report.column_names))})
        assert len(all_columns) == len(rows), report.id
        assert list(all_columns[0])[:-2] == list(reversed(report.column_names))


@pytest.mark.parametrize("report_type", sorted(REPORT_TYPES))
def test_every_type_writes_the_same_csv_in_one_query_as_streamed(client, tmp_path, report_type):
    """Small reports are written from one query (exports.writers.write_small_csv): for every
    type, with all its columns, in both accounts, the file and manifest equal the
    streamed export's."""
    import dataclasses

    from exports.writers import write_report

    report = REPORT_TYPES[report_type]
    params = {"interval_end": "2024-03-06", "timezone": "UTC", "columns": report.column_names}
    if report.interval != "end_only":
        params["interval_start"] = "2024-03-01"
    settings = _SETTINGS["settings"]
    for account in ("acct_tokyo", "acct_other"):
        validated = validate_report_request(account, report_type, params, "csv", now=NOW,
                                            settings=settings, data_available_end=NOW)
        query = build_report_query(client, validated, settings=settings)
        small = dataclasses.replace(query, shape="itemized", rows_bound=1)  # one query, even for a summary
        streamed = dataclasses.replace(query, shape="itemized", rows_bound=None)
        files = {}
        for name, variant in (("small", small), ("streamed", streamed)):
            manifest = write_report(client, variant, "csv", tmp_path / f"{name}.csv")
            files[name] = ((tmp_path / f"{name}.csv").read_bytes(),
                           dataclasses.replace(manifest, file_name=""))
        assert files["small"] == files["streamed"], (report_type, account)
        if account == "acct_tokyo":  # the account every type has rows for
            assert files["small"][1].row_count > 0, report_type


def test_activity_itemized_matches_source_per_currency(client, source):
    rows = run(client, "balance_change_from_activity.itemized", MARCH)
    got: dict[str, list[int]] = {}
    for row in rows:
        totals = got.setdefault(row["currency"], [0, 0, 0])
        for i, key in enumerate(("gross", "fee", "net")):
            totals[i] += row[key]
    expected = {cur: [g, f, n] for cur, g, f, n in source_rows(source, """
        SELECT currency, sum(amount)::bigint, sum(fee)::bigint, sum(net)::bigint FROM balance_transactions
        WHERE account_id = 'acct_tokyo' AND created_at >= '2024-03-01' AND created_at < '2024-03-06'
          AND reporting_category NOT IN ('payout', 'payout_reversal')
        GROUP BY currency""", ())}
    assert got == expected
    # Stripe's sign convention, itemized: a charge gross/fee/net, a refund negative with no fee.
    charge = next(r for r in rows if r["balance_transaction_id"] == "txn_1")
    assert (charge["gross"], charge["fee"], charge["net"]) == (10000, 320, 9680)
    refund = next(r for r in rows if r["balance_transaction_id"] == "txn_3")
    assert (refund["gross"], refund["fee"], refund["net"]) == (-2000, 0, -2000)
    assert all(r["_exponent"] == 2 for r in rows)


def test_summary_types_match_source(client, source):
    for report_type in ("balance_change_from_activity.summary", "payouts.summary"):
        rows = run(client, report_type, {**MARCH, "timezone": "Asia/Tokyo"})
        categories = "('payout','payout_reversal')" if report_type.startswith("payouts") else \
            "(SELECT DISTINCT reporting_category FROM balance_transactions" \
            " WHERE reporting_category NOT IN ('payout', 'payout_reversal'))"
        expected = source_rows(source, f"""
            SELECT reporting_category, currency, count(*), sum(amount)::bigint, sum(fee)::bigint,
                   sum(net)::bigint FROM balance_transactions
            WHERE account_id = 'acct_tokyo' AND reporting_category IN {categories}
              AND created_at >= ('2024-03-01'::timestamp AT TIME ZONE 'Asia/Tokyo')
              AND created_at < ('2024-03-06'::timestamp AT TIME ZONE 'Asia/Tokyo')
            GROUP BY 1, 2""", ())
        got = {(r["reporting_category"], r["currency"]): (r["count"], r["gross"], r["fee"], r["net"])
               for r in rows if r["reporting_category"] != "total"}
        assert got == {(c, cur): (n, g, f, net) for c, cur, n, g, f, net in expected}, report_type
        for r in rows:
            if r["reporting_category"] == "total":
                parts = [v for (c, cur), v in got.items() if cur == r["currency"]]
                assert r["net"] == sum(p[3] for p in parts) and r["count"] == sum(p[0] for p in parts)


def test_balance_summary_identity_and_ending_balance(client, source):
    rows = run(client, "balance.summary", {"interval_start": "2024-03-02", "interval_end": "2024-03-05",
                                           "timezone": "UTC"})
    usd = {r["category"]: r for r in rows if r["currency"] == "usd"}
    assert list(usd) == ["starting_balance", "activity", "payouts", "ending_balance"]
    assert usd["starting_balance"]["description"] == "Starting balance (2024-03-02)"
    assert usd["ending_balance"]["description"] == "Ending balance (2024-03-04)"
    amounts = {k: v["net_amount"] for k, v in usd.items()}
    assert amounts["ending_balance"] == amounts["starting_balance"] + amounts["activity"] + amounts["payouts"]
    assert amounts["payouts"] == -12505
    (ending,), = source_rows(source, "SELECT sum(net)::bigint FROM balance_transactions WHERE account_id ="
                             " 'acct_tokyo' AND currency = 'usd' AND created_at < '2024-03-05'", ())
    assert amounts["ending_balance"] == ending
    # The ending balance reconciliation explains the same ending balance.
    recon = run(client, "ending_balance_reconciliation.summary",
                {"interval_end": "2024-03-05", "timezone": "UTC", "currency": "usd"})
    total = next(r for r in recon if r["reporting_category"] == "total")
    assert total["net"] == ending
    # txn_4/txn_5/txn_8 were settled by po_2, which took effect only on 2024-03-05.
    (unpaid,), = source_rows(source, """
        SELECT sum(bt.net)::bigint FROM balance_transactions bt LEFT JOIN payouts p ON p.id = bt.payout_id
        WHERE bt.account_id = 'acct_tokyo' AND bt.currency = 'usd' AND bt.created_at < '2024-03-05'
          AND bt.reporting_category <> 'payout' AND (bt.payout_id IS NULL OR p.created_at >= '2024-03-05')""", ())
    assert total["net"] == unpaid


def test_payout_reconciliation_sums_to_each_payout(client, source):
    rows = run(client, "payout_reconciliation.itemized", MARCH)
    by_payout: dict[str, int] = {}
    for row in rows:
        by_payout[row["automatic_payout_id"]] = by_payout.get(row["automatic_payout_id"], 0) + row["net"]
    expected = dict(source_rows(source, "SELECT id, amount FROM payouts WHERE account_id = 'acct_tokyo'"
                                " AND created_at >= '2024-03-01' AND created_at < '2024-03-06'", ()))
    assert by_payout == expected == {"po_1": 12505, "po_2": 22500}
    one = run(client, "payout_reconciliation.itemized", {"payout": "po_2", "timezone": "UTC"})
    assert {r["balance_transaction_id"] for r in one} == {"txn_4", "txn_5", "txn_8"}
    assert sum(r["net"] for r in one) == 22500


def test_another_accounts_payout_is_not_found(client):
    with pytest.raises(InvalidParameter) as err:
        run(client, "payout_reconciliation.itemized", {"payout": "po_9"})
    assert err.value.param == "parameters.payout" and "not found" in err.value.message.lower()
    # ... while its owner can reconcile it.
    assert sum(r["net"] for r in run(client, "payout_reconciliation.itemized", {"payout": "po_9"},
                                     account="acct_other")) == 6770


def test_timezone_moves_the_day_cut(client, source):
    """ch_2 at 2024-03-01 23:30 UTC is 2024-03-02 08:30 in Tokyo: it leaves Tokyo's 1 March."""
    utc = run(client, "revenue.summary", {"interval_start": "2024-03-01", "interval_end": "2024-03-02",
                                          "timezone": "UTC"})
    tokyo = run(client, "revenue.summary", {"interval_start": "2024-03-01", "interval_end": "2024-03-02"},
                account_timezone="Asia/Tokyo")
    assert [(r["date"].isoformat(), r["gross"]) for r in utc] == [("2024-03-01", 15000)]
    # Tokyo's 1 March starts at 2024-02-29 15:00 UTC, so it holds ch_1 only.
    assert [(r["date"].isoformat(), r["gross"]) for r in tokyo] == [("2024-03-01", 10000)]
    items = run(client, "balance_change_from_activity.itemized",
                {"interval_start": "2024-03-02", "interval_end": "2024-03-03", "columns":
                 ["balance_transaction_id", "created", "created_utc"]}, account_timezone="Asia/Tokyo")
    first = items[0]
    assert first["balance_transaction_id"] == "txn_2"
    assert first["created"].replace(tzinfo=None) == datetime(2024, 3, 2, 8, 30)
    assert first["created_utc"].replace(tzinfo=None) == datetime(2024, 3, 1, 23, 30)
    # Account default timezone applies when the request gives none (looked up in dim_accounts).
    default = run(client, "revenue.summary", {"interval_start": "2024-03-01", "interval_end": "2024-03-02"})
    assert [(r["date"].isoformat(), r["gross"]) for r in default] == [("2024-03-01", 10000)]


def test_revenue_and_fees_match_source_by_local_day(client, source):
    tz = "Asia/Tokyo"
    rows = run(client, "revenue.summary", {**MARCH, "timezone": tz})
    expected = source_rows(source, """
        SELECT (created_at AT TIME ZONE %s)::date, currency,
               sum(amount) FILTER (WHERE reporting_category IN ('charge','charge_failure'))::bigint,
               sum(net)::bigint
        FROM balance_transactions WHERE account_id = 'acct_tokyo' AND reporting_category IN
          ('charge','charge_failure','refund','refund_failure','dispute','dispute_reversal','fee')
          AND created_at >= ('2024-03-01'::timestamp AT TIME ZONE %s)
          AND created_at < ('2024-03-06'::timestamp AT TIME ZONE %s)
        GROUP BY 1, 2 ORDER BY 1, 2""", (tz, tz, tz))
    assert [(r["date"], r["currency"], r["gross"], r["net"]) for r in rows] == \
        [(d, c, g or 0, n) for d, c, g, n in expected]
    for r in rows:
        assert r["gross"] + r["refunds"] + r["disputes"] + r["fees"] == r["net"]
    fees = run(client, "fees.summary", {**MARCH, "timezone": tz})
    (paid,), = source_rows(source, """
        SELECT sum(CASE WHEN reporting_category = 'fee' THEN -net ELSE fee END)::bigint
        FROM balance_transactions WHERE account_id = 'acct_tokyo'
          AND created_at >= ('2024-03-01'::timestamp AT TIME ZONE %s)
          AND created_at < ('2024-03-06'::timestamp AT TIME ZONE %s)""", (tz, tz))
    assert sum(r["fee_amount"] for r in fees) == paid
    assert {r["fee_type"] for r in fees} == {"processing", "dispute", "platform"}


def test_payments_itemized_matches_source_and_filters(client, source):
    rows = run(client, "payments.itemized", {**MARCH, "status": ["succeeded", "disputed"]})
    expected = source_rows(source, """
        SELECT id, amount, amount_refunded FROM payments WHERE account_id = 'acct_tokyo'
          AND status IN ('succeeded','disputed') AND created_at >= '2024-03-01' AND created_at < '2024-03-06'
        ORDER BY created_at, id""", ())
    assert [(r["payment_id"], r["amount"], r["amount_refunded"]) for r in rows] == expected
    charge = next(r for r in rows if r["payment_id"] == "ch_1")
    assert (charge["fee"], charge["net"], charge["customer_email"]) == (320, 9680, "ann@example.com")
    only_eur = run(client, "payments.itemized", {**MARCH, "currency": "eur", "customer": "cus_1"})
    assert [r["payment_id"] for r in only_eur] == ["ch_3"]
    with pytest.raises(InvalidParameter) as err:
        run(client, "payments.itemized", {**MARCH, "customer": "cus_9"})
    assert err.value.param == "parameters.customer"


def test_bound_parameters_make_hostile_values_inert(client):
    """Validation rejects the value; and the query text never contains request values anyway."""
    with pytest.raises(InvalidParameter) as err:
        run(client, "payments.itemized", {**MARCH, "currency": "usd' OR 1=1 --"})
    assert err.value.param == "parameters.currency"
    settings = _SETTINGS["settings"]
    validated = validate_report_request("acct_tokyo' OR 1=1 --", "payments.itemized", MARCH, "csv",
                                        now=NOW, data_available_end=None, settings=settings)
    with pytest.raises(InvalidParameter) as err:
        build_report_query(client, validated, settings=settings)
    assert err.value.param == "account"
    query = build_report_query(client, validate_report_request(
        "acct_tokyo", "payments.itemized", MARCH, "csv", now=NOW, data_available_end=None,
        settings=settings), settings=settings)
    assert "acct_tokyo" not in query.sql and "2024" not in query.sql
    assert json.dumps(query.parameters)  # plain values, bound server-side


def test_generate_report_writes_a_csv_that_reconciles(platform, client, source, tmp_path):
    from exports.money import parse_major
    from exports.reports.engine import generate_report

    out = tmp_path / "activity.csv"
    manifest = generate_report("acct_tokyo", "balance_change_from_activity.itemized",
                               {**MARCH, "columns": ["balance_transaction_id", "currency", "net"]}, "csv",
                               out, client=client, now=NOW, settings=platform)
    import csv

    lines = list(csv.reader(out.read_text().splitlines()))
    assert lines[0] == ["balance_transaction_id", "currency", "net"]
    net = {}
    for _, currency, amount in lines[1:]:
        net[currency] = net.get(currency, 0) + parse_major(amount, 2)
    expected = dict(source_rows(source, """SELECT currency, sum(net)::bigint FROM balance_transactions
        WHERE account_id = 'acct_tokyo' AND created_at >= '2024-03-01' AND created_at < '2024-03-06'
          AND reporting_category NOT IN ('payout', 'payout_reversal')
        GROUP BY currency""", ()))
    assert net == expected
    assert manifest.row_count == len(lines) - 1
    assert manifest.totals_minor["net"] == expected
    assert manifest.extra["timezone"] == "UTC"
    assert manifest.extra["interval_start"] == "2024-03-01T00:00:00+00:00"


def test_cli_runs_a_report_and_refuses_bad_input(platform, tmp_path):
    from typer.testing import CliRunner

    from cli.report import app

    from exports.settings import reset_settings_cache

    runner = CliRunner(env={"PAYREPORTS_SOURCE_DATABASE_URL": platform.source_database_url,
                            "PAYREPORTS_WAREHOUSE_MARTS_DATABASE": CATALOG_MARTS})
    reset_settings_cache()
    try:
        _cli_checks(runner, tmp_path, app)
    finally:
        reset_settings_cache()


def _cli_checks(runner, tmp_path, app):
    out = tmp_path / "balance.csv"
    result = runner.invoke(app, ["run", "--type", "balance.summary", "--account", "acct_tokyo",
                                 "--from", "2024-03-02", "--to", "2024-03-05", "--timezone", "UTC",
                                 "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "ending_balance" in out.read_text() and "Rows" in result.output
    printed = " ".join(result.output.split())
    # The balance summary's figures, not a sum of its rows (start + activity + payouts + ending).
    assert "Ending balance" in printed and "Total net_amount" not in printed
    as_of = runner.invoke(app, ["run", "--type", "ending_balance_reconciliation.summary", "--account",
                                "acct_tokyo", "--to", "2024-03-05", "--timezone", "UTC", "--format", "csv",
                                "-o", str(tmp_path / "recon.csv")], env={"COLUMNS": "200", **runner.env})
    assert as_of.exit_code == 0, as_of.output
    printed = " ".join(as_of.output.split())
    assert "None" not in printed and "as of 2024-03-05T00:00:00+00:00" in printed
    assert "Total net" in printed
    bad = runner.invoke(app, ["run", "--type", "balance.summary", "--account", "acct_tokyo",
                              "--from", "2024-03-02", "--to", "2024-03-05", "--currency", "usd' --",
                              "--format", "csv", "-o", str(out)])
    assert bad.exit_code == 2
    assert "parameters.currency" in bad.output
    # Checked before the warehouse is opened, yet worded in the account's timezone (Asia/Tokyo).
    backwards = runner.invoke(app, ["run", "--type", "balance.summary", "--account", "acct_tokyo",
                                    "--from", "2024-03-05", "--to", "2024-03-02", "--format", "csv",
                                    "-o", str(out)])
    assert backwards.exit_code == 2
    assert "parameters.interval_end" in backwards.output
    assert "2024-03-02 00:00:00 Asia/Tokyo" in " ".join(backwards.output.split())
    listing = runner.invoke(app, ["types"], env={"COLUMNS": "200", **runner.env})
    assert listing.exit_code == 0
    for report_type in REPORT_TYPES:
        assert report_type in listing.output


def test_every_type_runs_on_the_dbt_built_demo_marts(demo_platform):
    """The same queries against the marts dbt builds (column names and types as built), with
    totals checked against the source for balance_change_from_activity.summary."""
    settings = demo_platform.settings
    end = demo_platform.data_available_end
    with db.connect("source", settings) as conn:
        account, = conn.execute("SELECT account_id FROM balance_transactions GROUP BY account_id"
                                " ORDER BY count(*) DESC LIMIT 1").fetchone()
        expected = dict(((cat, cur), net) for cat, cur, net in conn.execute(
            "SELECT reporting_category, currency, sum(net)::bigint FROM balance_transactions"
            " WHERE account_id = %s AND created_at >= %s AND created_at < %s"
            " AND reporting_category NOT IN ('payout', 'payout_reversal') GROUP BY 1, 2",
            (account, end - timedelta(days=366), end)).fetchall())
    with open_warehouse(settings, purpose="test demo marts") as client:
        for report in REPORT_TYPES.values():
            params = {"interval_end": end.isoformat(), "columns": report.column_names}
            if report.interval != "end_only":
                params["interval_start"] = (end - timedelta(days=300)).isoformat()
            validated = validate_report_request(account, report.id, params, "csv", settings=settings,
                                                now=end, data_available_end=end)
            query = build_report_query(client, validated, settings=settings)
            client.query(query.sql, parameters=query.parameters)
        validated = validate_report_request(account, "balance_change_from_activity.summary",
                                            {"interval_start": (end - timedelta(days=366)).isoformat(),
                                             "interval_end": end.isoformat(), "timezone": "UTC"},
                                            "csv", settings=settings,
                                            now=end, data_available_end=end)
        query = build_report_query(client, validated, settings=settings)
        rows = client.query(query.sql, parameters=query.parameters).result_rows
    got = {(r[0], r[1]): r[5] for r in rows if r[0] != "total"}
    assert got == expected


def test_balance_summary_pdf_shows_the_identity_and_no_meaningless_grand_total(platform, client, tmp_path):
    """A balance summary's rows are balances and flows: the PDF states ending = starting +
    activity + payouts per currency (and flags it if it does not hold) instead of summing the
    rows."""
    import subprocess

    from exports.reports.engine import generate_report

    out = tmp_path / "balance.pdf"
    generate_report("acct_tokyo", "balance.summary", MARCH, "pdf", out, client=client, now=NOW,
                    settings=platform)
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], check=True, capture_output=True,
                          text=True).stdout
    # One statement per currency (usd, eur), each stating the identity; no grand total.
    assert text.count("Ending balance = starting balance + activity + payouts") == 2
    assert "Totals" not in text and "DOES NOT HOLD" not in text


# ---- manifest totals: the report's own figures, checked against the source --------------------

ACTIVITY = "reporting_category NOT IN ('payout', 'payout_reversal')"
PAYOUT = "reporting_category IN ('payout', 'payout_reversal')"


def _gross_fee_net(source, where: str, params: tuple = ()) -> dict[str, dict[str, int]]:
    rows = source_rows(source, f"""SELECT bt.currency, sum(bt.amount)::bigint, sum(bt.fee)::bigint,
        sum(bt.net)::bigint FROM balance_transactions bt LEFT JOIN payouts p ON p.id = bt.payout_id
        WHERE bt.account_id = 'acct_tokyo' AND {where} GROUP BY 1""", params)
    return {name: {cur: values[i] for cur, *values in rows} for i, name in enumerate(("gross", "fee", "net"))}


def expected_totals(source, report_type: str) -> dict[str, dict[str, int]]:
    """What the manifest of `report_type` over MARCH (default columns) must say, from the source."""
    in_march = "bt.created_at >= '2024-03-01' AND bt.created_at < '2024-03-06'"
    unpaid = (f"bt.created_at < '2024-03-06' AND NOT bt.{PAYOUT} AND "
              "(bt.payout_id IS NULL OR p.created_at >= '2024-03-06')")
    settled = "p.created_at >= '2024-03-01' AND p.created_at < '2024-03-06'"
    if report_type.startswith("balance_change_from_activity."):
        return _gross_fee_net(source, f"{in_march} AND bt.{ACTIVITY}")
    if report_type.startswith("payouts."):
        return _gross_fee_net(source, f"{in_march} AND bt.{PAYOUT}")
    if report_type.startswith("payout_reconciliation."):
        return _gross_fee_net(source, settled)
    if report_type.startswith("ending_balance_reconciliation."):
        return _gross_fee_net(source, unpaid)
    if report_type == "balance.summary":
        rows = source_rows(source, f"""SELECT currency,
            coalesce(sum(net) FILTER (WHERE created_at < '2024-03-01'), 0)::bigint,
            coalesce(sum(net) FILTER (WHERE created_at >= '2024-03-01' AND {ACTIVITY}), 0)::bigint,
            coalesce(sum(net) FILTER (WHERE created_at >= '2024-03-01' AND {PAYOUT}), 0)::bigint,
            sum(net)::bigint
            FROM balance_transactions WHERE account_id = 'acct_tokyo' AND created_at < '2024-03-06'
            GROUP BY 1""", ())
        names = ("starting_balance", "activity", "payouts", "ending_balance")
        return {name: {cur: values[i] for cur, *values in rows} for i, name in enumerate(names)}
    if report_type == "payments.itemized":
        rows = source_rows(source, """SELECT p.currency, sum(p.amount)::bigint, sum(p.amount_refunded)::bigint,
            coalesce(sum(bt.fee), 0)::bigint, coalesce(sum(bt.net), 0)::bigint FROM payments p
            LEFT JOIN balance_transactions bt ON bt.source_id = p.id AND bt.reporting_category = 'charge'
            WHERE p.account_id = 'acct_tokyo' AND p.created_at >= '2024-03-01' AND p.created_at < '2024-03-06'
            GROUP BY 1""", ())
        names = ("amount", "amount_refunded", "fee", "net")
        return {name: {cur: values[i] for cur, *values in rows} for i, name in enumerate(names)}
    if report_type == "fees.summary":
        rows = source_rows(source, f"""SELECT currency,
            sum(CASE WHEN reporting_category = 'fee' THEN -net ELSE fee END)::bigint FROM balance_transactions bt
            WHERE account_id = 'acct_tokyo' AND {in_march} AND (reporting_category = 'fee' OR fee != 0)
            GROUP BY 1""", ())
        return {"fee_amount": dict(rows)}
    if report_type == "revenue.summary":
        rows = source_rows(source, f"""SELECT currency,
            coalesce(sum(amount) FILTER (WHERE reporting_category IN ('charge', 'charge_failure')), 0)::bigint,
            coalesce(sum(amount) FILTER (WHERE reporting_category IN ('refund', 'refund_failure')), 0)::bigint,
            coalesce(sum(amount) FILTER (WHERE reporting_category IN ('dispute', 'dispute_reversal')), 0)::bigint,
            sum(CASE WHEN reporting_category = 'fee' THEN net ELSE -fee END)::bigint, sum(net)::bigint
            FROM balance_transactions bt WHERE account_id = 'acct_tokyo' AND {in_march}
              AND reporting_category IN ('charge','charge_failure','refund','refund_failure','dispute',
                                         'dispute_reversal','fee')
            GROUP BY 1""", ())
        names = ("gross", "refunds", "disputes", "fees", "net")
        return {name: {cur: values[i] for cur, *values in rows} for i, name in enumerate(names)}
    raise AssertionError(f"no independent expectation for {report_type}")


@pytest.mark.parametrize("report_type", sorted(REPORT_TYPES))
def test_manifest_totals_are_the_reports_own_figures(platform, client, source, tmp_path, report_type):
    """Itemized: the money columns' sums; summaries: their total rows or balance figures, never
    a sum over rows that are already totals or balances (which doubled the activity summary's
    fees and the balance summary's ending balance)."""
    from exports.reports.engine import generate_report

    params = dict(MARCH)
    if REPORT_TYPES[report_type].interval == "end_only":
        params.pop("interval_start")
    manifest = generate_report("acct_tokyo", report_type, params, "csv", tmp_path / "r.csv",
                               client=client, now=NOW, settings=platform)
    expected = expected_totals(source, report_type)
    assert manifest.totals_minor == expected
    assert set(manifest.currency_exponents) >= {c for per in expected.values() for c in per}


def test_totals_need_their_columns_in_the_file(platform, client, tmp_path):
    """A figure whose label or value column is not selected is left out, not guessed."""
    from exports.reports.engine import generate_report

    manifest = generate_report("acct_tokyo", "balance.summary", {**MARCH, "columns": ["net_amount", "currency"]},
                               "csv", tmp_path / "r.csv", client=client, now=NOW, settings=platform)
    assert manifest.totals_minor == {}
    manifest = generate_report("acct_tokyo", "balance_change_from_activity.summary",
                               {**MARCH, "columns": ["reporting_category", "currency", "net"]}, "csv",
                               tmp_path / "s.csv", client=client, now=NOW, settings=platform)
    assert list(manifest.totals_minor) == ["net"]


def test_activity_excludes_payouts_so_its_net_is_the_balance_summarys_activity(client):
    activity = run(client, "balance_change_from_activity.summary", MARCH)
    assert not {r["reporting_category"] for r in activity} & {"payout", "payout_reversal"}
    balance = run(client, "balance.summary", MARCH)
    for currency in {r["currency"] for r in balance}:
        total = next(r["net"] for r in activity if r["currency"] == currency and r["reporting_category"] == "total")
        summary = next(r["net_amount"] for r in balance if r["currency"] == currency and r["category"] == "activity")
        assert total == summary, currency
    itemized = run(client, "balance_change_from_activity.itemized", MARCH)
    assert not {r["reporting_category"] for r in itemized} & {"payout", "payout_reversal"}
    with pytest.raises(InvalidParameter) as err:
        run(client, "balance_change_from_activity.itemized", {**MARCH, "reporting_category": "payout"})
    assert err.value.param == "parameters.reporting_category"


def test_payout_reconciliation_summary_totals_each_payouts_amount(client, source):
    rows = run(client, "payout_reconciliation.summary", MARCH)
    total = next(r for r in rows if r["reporting_category"] == "total")
    (amount,), = source_rows(source, "SELECT sum(amount)::bigint FROM payouts WHERE account_id = 'acct_tokyo'"
                             " AND created_at >= '2024-03-01' AND created_at < '2024-03-06'", ())
    assert (total["currency"], total["net"]) == ("usd", amount)
    one = run(client, "payout_reconciliation.summary", {"payout": "po_2", "timezone": "UTC"})
    assert {r["reporting_category"]: r["net"] for r in one} == {
        "charge": 29100, "dispute": -6500, "fee": -100, "total": 22500}


def test_ending_balance_reconciliation_itemized_lists_what_the_summary_totals(client, source):
    params = {"interval_end": "2024-03-05", "timezone": "UTC"}
    rows = run(client, "ending_balance_reconciliation.itemized", params)
    expected = source_rows(source, f"""
        SELECT bt.id FROM balance_transactions bt LEFT JOIN payouts p ON p.id = bt.payout_id
        WHERE bt.account_id = 'acct_tokyo' AND bt.created_at < '2024-03-05' AND NOT bt.{PAYOUT}
          AND (bt.payout_id IS NULL OR p.created_at >= '2024-03-05') ORDER BY bt.created_at, bt.id""", ())
    assert [r["balance_transaction_id"] for r in rows] == [e[0] for e in expected]
    summary = run(client, "ending_balance_reconciliation.summary", params)
    for currency in {r["currency"] for r in rows}:
        assert sum(r["net"] for r in rows if r["currency"] == currency) == next(
            r["net"] for r in summary if r["currency"] == currency and r["reporting_category"] == "total")


def test_payment_metadata_key_columns_are_bound_not_written_into_sql(client):
    settings = _SETTINGS["settings"]
    params = {**MARCH, "columns": ["balance_transaction_id", "payment_metadata[order_id]",
                                   "payment_metadata[note]", "payment_metadata[x') OR 1=1 --]"]}
    validated = validate_report_request("acct_tokyo", "balance_change_from_activity.itemized", params, "csv",
                                        now=NOW, settings=settings, data_available_end=NOW)
    query = build_report_query(client, validated, settings=settings)
    assert "order_id" not in query.sql and "OR 1=1" not in query.sql
    assert [c.name for c in query.columns][1:] == params["columns"][1:]
    rows = client.query(query.sql, parameters=query.parameters).result_rows
    by_id = {r[0]: r[1:4] for r in rows}
    assert by_id["txn_1"] == ("ord_ch_1", "x'y", "")
    assert by_id["txn_5"] == ("", "", "")  # a fee: no payment
    for bad in ("payment_metadata[]", "payment_metadata[a[b]]", "payment_metadata[" + "k" * 41 + "]",
                "refund_metadata[x]"):
        with pytest.raises(InvalidParameter) as err:
            run(client, "balance_change_from_activity.itemized", {**MARCH, "columns": [bad]})
        assert err.value.param == "parameters.columns"
    with pytest.raises(InvalidParameter):  # only types with payment metadata
        run(client, "payouts.itemized", {**MARCH, "columns": ["payment_metadata[order_id]"]})


def test_prefetched_accounts_are_those_looked_up_one_by_one(client):
    """A statement shard looks its accounts up in one query (engine.prefetch_accounts): the
    same name, timezone and rows bound as the lookup of one account; an unknown account is
    left to fail as before."""
    from exports.reports.engine import prefetch_accounts, run_cache, warehouse_account

    settings = _SETTINGS["settings"]
    ids = [row[0] for row in client.query(
        f"SELECT account_id FROM {settings.warehouse_marts_database}.dim_accounts").result_rows]
    with run_cache():
        one_by_one = {account_id: warehouse_account(client, settings, account_id) for account_id in ids}
    assert len(ids) >= 2 and {a.rows_bound for a in one_by_one.values()} != {0}
    with run_cache():
        assert prefetch_accounts(client, settings, [*ids, "acct_nobody"]) == len(ids)
        client.query = None  # every lookup below is answered from the prefetch
        assert {account_id: warehouse_account(client, settings, account_id) for account_id in ids} == one_by_one
    del client.query
    with run_cache(), pytest.raises(InvalidParameter):
        prefetch_accounts(client, settings, ["acct_nobody"])
        warehouse_account(client, settings, "acct_nobody")
