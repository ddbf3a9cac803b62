"""Every report type in CSV, XLSX and Parquet for a USD, a JPY, a KWD and a multi-currency
(EUR + GBP) account of the demo platform: each file re-read by independent readers (csv module,
polars and DuckDB; openpyxl; pyarrow) reproduces the manifest's row count and totals (the
report's own figures), and each type's Parquet schema is the same for every account.
(PDFs: tests of the PDF writer.)"""

from __future__ import annotations

import csv
from datetime import timedelta
from decimal import Decimal

import duckdb
import openpyxl
import polars as pl
import pyarrow.parquet as pq
import pytest

from exports import db
from exports.money import parse_major
from exports.reports.catalog import REPORT_TYPES
from exports.reports.engine import build_report_query, generate_report, validate_report_request
from exports.warehouse import open_warehouse

pytestmark = pytest.mark.integration

# Demo accounts by their currencies (exports.source.generator.DEMO_ACCOUNTS).
ACCOUNT_CURRENCIES = {"usd": {"usd"}, "jpy": {"jpy"}, "kwd": {"kwd"}, "multi": {"eur", "gbp"}}


@pytest.fixture(scope="module")
def accounts(demo_platform) -> dict[str, str]:
    with db.connect("source", demo_platform.settings) as conn:
        rows = conn.execute("SELECT account_id, array_agg(DISTINCT currency ORDER BY currency)"
                            " FROM balance_transactions GROUP BY account_id").fetchall()
    found = {}
    for name, currencies in ACCOUNT_CURRENCIES.items():
        found[name] = next(acct for acct, cur in rows if set(cur) == currencies)
    return found


def params_for(report_type: str, end) -> dict:
    # One timezone for every account: it is an option, and the schema's timestamps carry it.
    params = {"interval_end": end.isoformat(), "timezone": "Europe/Berlin"}
    if REPORT_TYPES[report_type].interval != "end_only":
        params["interval_start"] = (end - timedelta(days=31)).isoformat()
    return params


def file_figures(query, rows: list[dict], exponents: dict[str, int]) -> dict[str, dict[str, int]]:
    """The manifest's figures recomputed from the rows read back (money already in minor units)."""
    totals: dict[str, dict[str, int]] = {f.name: {} for f in query.figures}
    for row in rows:
        currency = row["currency"]
        for figure in query.figures:
            if figure.label_column is not None and row[figure.label_column] != figure.label:
                continue
            per = totals[figure.name]
            per[currency] = per.get(currency, 0) + (row[figure.column] or 0)
    for figure in query.figures:  # currencies with rows but no labelled row count 0, as in SQL
        for currency in {r["currency"] for r in rows}:
            totals[figure.name].setdefault(currency, 0)
    return totals


@pytest.mark.parametrize("report_type", sorted(REPORT_TYPES))
def test_every_format_for_every_currency_mix(demo_platform, accounts, tmp_path, report_type):
    settings = demo_platform.settings
    now, end = demo_platform.data_available_end, demo_platform.end  # the generated activity's end
    schemas = {}
    with open_warehouse(settings, purpose="test report formats") as client:
        for name, account in accounts.items():
            params = params_for(report_type, end)
            validated = validate_report_request(account, report_type, params, "csv", settings=settings,
                                                now=now, data_available_end=now)
            query = build_report_query(client, validated, settings=settings)
            money = {c.name for c in query.columns if c.kind == "money"}
            manifests = {}
            for fmt in ("csv", "xlsx", "parquet"):
                out = tmp_path / f"{name}.{fmt}"
                manifests[fmt] = generate_report(account, report_type, params, fmt, out, settings=settings,
                                                 client=client, now=now)
            exponents = manifests["csv"].currency_exponents
            assert set(exponents) <= ACCOUNT_CURRENCIES[name], (name, exponents)
            expected = manifests["csv"].totals_minor
            assert all(m.totals_minor == expected for m in manifests.values()), name
            count = manifests["csv"].row_count
            assert count > 0, (name, "no rows")

            # CSV: the csv module, polars and DuckDB read the same table.
            path = tmp_path / f"{name}.csv"
            records = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
            assert len(records) == count and list(records[0] if records else manifests["csv"].columns) == \
                manifests["csv"].columns
            rows = [{k: (parse_major(v, exponents[r["currency"]]) if k in money and v != "" else
                         None if k in money else v) for k, v in r.items()} for r in records]
            assert file_figures(query, rows, exponents) == expected, (name, "csv")
            frame = pl.read_csv(path, infer_schema=False)
            assert frame.height == count and frame.columns == manifests["csv"].columns
            assert duckdb.sql(f"SELECT count(*) FROM read_csv('{path}', header = true, all_varchar = true)"
                              ).fetchall() == [(count,)]

            # XLSX: typed cells read back by openpyxl.
            sheet = openpyxl.load_workbook(tmp_path / f"{name}.xlsx", read_only=True).worksheets[0]
            cells = list(sheet.iter_rows(values_only=True))
            header = list(cells[0])
            assert header == manifests["xlsx"].columns and len(cells) - 1 == count
            rows = []
            for values in cells[1:]:
                row = dict(zip(header, values))
                for column in money:
                    if row[column] is not None:
                        row[column] = int(Decimal(str(row[column])).scaleb(exponents[row["currency"]]))
                rows.append(row)
            assert file_figures(query, rows, exponents) == expected, (name, "xlsx")

            # Parquet: exact decimals, one schema for every account.
            table = pq.read_table(tmp_path / f"{name}.parquet")
            schemas[name] = table.schema
            assert table.num_rows == count
            rows = []
            for row in table.to_pylist():
                for column in money:
                    if row[column] is not None:
                        row[column] = int(row[column].scaleb(row["currency_exponent"]))
                rows.append(row)
            assert file_figures(query, rows, exponents) == expected, (name, "parquet")
    first = schemas["usd"]
    assert all(schema.equals(first) for schema in schemas.values()), {k: str(v) for k, v in schemas.items()}


def test_replication_adds_columns_a_later_source_migration_added(demo_platform):
    """A warehouse replicated before 0002_stripe_report_columns gains invoice_id on its raw
    payments table on the next sync, instead of the pull failing on an unknown column."""
    from exports import replication

    settings = demo_platform.settings.model_copy(update={"warehouse_raw_database": "raw_before_0002"})
    with open_warehouse(settings, purpose="test raw column upgrade") as client:
        columns = replication.source_columns(client, "payments", settings)
        assert "invoice_id" in dict(columns)
        old = [(n, t) for n, t in columns if n != "invoice_id"]
        client.command("CREATE DATABASE IF NOT EXISTS raw_before_0002")
        client.command("DROP TABLE IF EXISTS raw_before_0002.payments")
        client.command("CREATE TABLE raw_before_0002.payments ("
                       + ", ".join(f"`{n}` {t}" for n, t in old)
                       + ", `_synced_at` DateTime64(6, 'UTC')) ENGINE = ReplacingMergeTree(updated_at) ORDER BY id")
        try:
            replication._add_new_columns(client, "payments", columns, settings)
            have = [r[0] for r in client.query(
                "SELECT name FROM system.columns WHERE database = 'raw_before_0002' AND table = 'payments' "
                "ORDER BY position").result_rows]
            assert have == [n for n, _ in columns] + ["_synced_at"]
        finally:
            client.command("DROP DATABASE IF EXISTS raw_before_0002")


def test_new_stripe_columns_carry_the_source_values(demo_platform, accounts):
    """invoice_id, customer_facing_amount/currency and payment_metadata[key] on the dbt-built
    marts, checked against the source Postgres."""
    settings = demo_platform.settings
    now, end = demo_platform.data_available_end, demo_platform.end
    account = accounts["multi"]
    columns = ["balance_transaction_id", "reporting_category", "currency", "gross", "source_id",
               "customer_facing_amount", "customer_facing_currency", "invoice_id", "charge_id",
               "payment_metadata[order_id]"]
    params = {"interval_start": (end - timedelta(days=31)).isoformat(), "interval_end": end.isoformat(),
              "columns": columns}
    with open_warehouse(settings, purpose="test new columns") as client:
        validated = validate_report_request(account, "balance_change_from_activity.itemized", params, "csv",
                                            settings=settings, now=now, data_available_end=now)
        query = build_report_query(client, validated, settings=settings)
        rows = [dict(zip(columns, r)) for r in
                client.query(query.sql, parameters=query.parameters).result_rows]
    with db.connect("source", settings) as conn:
        invoices = dict(conn.execute("SELECT id, invoice_id FROM payments WHERE account_id = %s", (account,)))
        refunds = dict(conn.execute("SELECT id, amount FROM refunds WHERE account_id = %s", (account,)))
        orders = dict(conn.execute("SELECT id, metadata->>'order_id' FROM payments WHERE account_id = %s",
                                   (account,)))
    charges = [r for r in rows if r["reporting_category"] == "charge"]
    assert charges and {r["currency"] for r in charges} == {"eur", "gbp"}
    for r in charges:
        assert (r["customer_facing_amount"], r["customer_facing_currency"]) == (r["gross"], r["currency"])
        assert r["invoice_id"] == (invoices[r["source_id"]] or "")
        assert r["payment_metadata[order_id]"] == orders[r["source_id"]]
    assert any(r["invoice_id"].startswith("in_") for r in charges)
    assert any(r["invoice_id"] == "" for r in charges)
    for r in rows:
        if r["reporting_category"] == "refund":
            assert r["customer_facing_amount"] == refunds[r["source_id"]] == -r["gross"]
        elif r["reporting_category"] not in ("charge", "refund"):
            assert r["customer_facing_amount"] is None and r["customer_facing_currency"] == ""
