"""A deterministic platform written straight into marts tables (the shapes of
docs/warehouse-contract.md), for rendering every report type as a PDF: accounts in USD (with a
very long name), JPY (0 decimals, amounts in the tens of millions), KWD (3 decimals), several
currencies at once, and one with no activity. Stripe-length ids, long and non-Latin
descriptions, 150 days of history (a 120-day interval plus a starting balance).

Used by tests/integration/test_pdf_documents.py and, to look at the results, by

    python -m tests.integration.pdf_platform OUT_DIR     (renders PNG-able PDFs of every type)
"""

from __future__ import annotations

import random
import string
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from exports.reports.types.buckets import PREAGGREGATES
from tests.integration.test_report_types import MART_DDL

EXPONENTS = {"usd": 2, "eur": 2, "jpy": 0, "kwd": 3}
# id, name, timezone, currencies, typical charge in minor units
ACCOUNTS = [
    ("acct_1PdfUsd9xYzAbCdEf", "Northwind Outfitters International Holdings Incorporated — "
     "Consolidated North American Subsidiary Operating Account", "America/New_York", ("usd",), 8_500_00),
    ("acct_1PdfJpy9xYzAbCdEf", "東京ティー株式会社 Tokyo Tea KK", "Asia/Tokyo", ("jpy",), 1_250_000),
    ("acct_1PdfKwd9xYzAbCdEf", "Gulf Trading Company W.L.L.", "Asia/Kuwait", ("kwd",), 2_750_500),
    ("acct_1PdfMix9xYzAbCdEf", "Multi Market Ltd", "Europe/London", ("usd", "eur", "jpy", "kwd"), 0),
    ("acct_1PdfNil9xYzAbCdEf", "Quiet Shop Ltd", "UTC", ("usd",), 0),
]
TYPICAL = {"usd": 120_00, "eur": 95_00, "jpy": 15_000, "kwd": 37_500}
FIRST_DAY = date(2024, 1, 1)  # history starts here; reports cover 2024-02-01 .. 2024-05-31
DAYS = 152
NOW = datetime(2024, 7, 1, tzinfo=UTC)
DESCRIPTIONS = [
    "Subscription renewal — Enterprise plan, 25 seats, billed annually, priority support and "
    "onboarding workshop included (PO 4500012345)",
    "Order #10293", "Chloé Dubois — atelier booking", "日本茶ギフトセット (3 items)",
    "Invoice INV-2024-000981 for consulting services rendered in March", "Top-up",
]


def _stripe_id(rng: random.Random, prefix: str, length: int = 24) -> str:
    return prefix + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))


def build_rows(seed: int = 16) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {"dim_accounts": [], "fct_payments": [], "fct_payouts": [],
                                  "fct_balance_transactions": []}
    for account_id, name, tz, currencies, typical in ACCOUNTS:
        out["dim_accounts"].append({"account_id": account_id, "name": name, "email": "fin@example.com",
                                    "country": "US", "timezone": tz, "default_currency": currencies[0],
                                    "payout_schedule": "weekly",
                                    "created_at": datetime(2023, 12, 1, tzinfo=UTC)})
        if account_id.startswith("acct_1PdfNil"):
            continue
        unsettled: dict[str, list[dict]] = {c: [] for c in currencies}
        for day_number in range(DAYS):
            day = FIRST_DAY + timedelta(days=day_number)
            for currency in currencies:
                base = typical or TYPICAL[currency]
                # Weekly payout (Mondays) of everything created before it.
                if day.weekday() == 0 and unsettled[currency]:
                    when = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
                    amount = sum(t["net_minor"] for t in unsettled[currency])
                    if amount > 0:
                        payout_id = _stripe_id(rng, "po_")
                        txn = _txn(rng, account_id, when, currency, -amount, 0, "payout", payout_id,
                                   f"STRIPE PAYOUT {payout_id[-8:].upper()}")
                        out["fct_balance_transactions"].append(txn)
                        for settled in unsettled[currency]:
                            settled["automatic_payout_id"] = payout_id
                        out["fct_payouts"].append({
                            "payout_id": payout_id, "account_id": account_id, "created_at": when,
                            "arrival_date": day + timedelta(days=2), "currency": currency,
                            "currency_exponent": EXPONENTS[currency], "amount_minor": amount,
                            "status": "paid", "automatic": True, "type": "bank_account",
                            "method": "standard", "description": "STRIPE PAYOUT",
                            "destination_id": _stripe_id(rng, "ba_"), "updated_at": when})
                        unsettled[currency] = []
                for _ in range(rng.randint(1, 3)):
                    when = datetime(day.year, day.month, day.day, rng.randint(0, 23),
                                    rng.randint(0, 59), rng.randint(0, 59), tzinfo=UTC)
                    amount = int(base * rng.uniform(0.2, 6.0))
                    fee = int(amount * 0.029) + (30 if EXPONENTS[currency] == 2 else 0)
                    charge_id = _stripe_id(rng, "ch_")
                    customer = _stripe_id(rng, "cus_", 14)
                    description = rng.choice(DESCRIPTIONS)
                    status = rng.choices(["succeeded", "refunded", "disputed", "failed"], [80, 10, 3, 7])[0]
                    refunded = amount if status == "refunded" else 0
                    disputed = amount if status == "disputed" else 0
                    payment = {
                        "payment_id": charge_id, "account_id": account_id, "created_at": when,
                        "currency": currency, "currency_exponent": EXPONENTS[currency],
                        "amount_minor": amount, "amount_refunded_minor": refunded,
                        "amount_disputed_minor": disputed, "status": status,
                        "payment_method_type": "card", "card_brand": rng.choice(["visa", "mastercard", "amex"]),
                        "card_funding": "credit", "card_country": "US", "customer_id": customer,
                        "customer_email": f"accounts.payable+{customer[-6:].lower()}@northwind-example.com",
                        "customer_name": rng.choice(["Chloé Dubois", "Ann Lee", "山田太郎", "Bo Jensen"]),
                        "description": description, "statement_descriptor": "NORTHWIND*ORDER",
                        "failure_code": "card_declined" if status == "failed" else None,
                        "payment_intent_id": _stripe_id(rng, "pi_"), "payment_metadata": '{"order": "10293"}',
                        "fee_minor": 0 if status == "failed" else fee,
                        "net_minor": 0 if status == "failed" else amount - fee, "updated_at": when}
                    out["fct_payments"].append(payment)
                    if status == "failed":
                        continue
                    txn = _txn(rng, account_id, when, currency, amount, fee, "charge", charge_id,
                               description, payment=payment)
                    out["fct_balance_transactions"].append(txn)
                    unsettled[currency].append(txn)
                    later = when + timedelta(hours=rng.randint(2, 60))
                    if status == "refunded":
                        extra = _txn(rng, account_id, later, currency, -refunded, 0, "refund",
                                     _stripe_id(rng, "re_"), f"REFUND FOR {charge_id}", payment=payment)
                    elif status == "disputed":
                        extra = _txn(rng, account_id, later, currency, -disputed,
                                     1500 if EXPONENTS[currency] == 2 else 15 * 10 ** EXPONENTS[currency],
                                     "dispute", _stripe_id(rng, "dp_"), "Chargeback", payment=payment)
                    else:
                        continue
                    out["fct_balance_transactions"].append(extra)
                    unsettled[currency].append(extra)
                if day.day == 1:  # monthly platform fee and an adjustment
                    when = datetime(day.year, day.month, day.day, 0, 10, tzinfo=UTC)
                    for category, amount, text in (("fee", -base // 4, "Platform fee"),
                                                   ("other_adjustment", base // 10, "Goodwill credit")):
                        txn = _txn(rng, account_id, when, currency, amount, 0, category, None, text)
                        out["fct_balance_transactions"].append(txn)
                        unsettled[currency].append(txn)
    return out


def _txn(rng, account_id, when, currency, gross, fee, category, source, description, payment=None):
    payment = payment or {}
    return {
        "balance_transaction_id": _stripe_id(rng, "txn_"), "account_id": account_id,
        "created_at": when, "available_on": when + timedelta(days=2), "currency": currency,
        "currency_exponent": EXPONENTS[currency], "gross_minor": gross, "fee_minor": fee,
        "net_minor": gross - fee, "type": category, "reporting_category": category,
        "source_id": source, "description": description, "status": "available",
        "automatic_payout_id": None, "charge_id": payment.get("payment_id"),
        "payment_intent_id": payment.get("payment_intent_id"), "customer_id": payment.get("customer_id"),
        "customer_email": payment.get("customer_email"), "customer_name": payment.get("customer_name"),
        "charge_created_at": payment.get("created_at"), "payment_method_type": payment.get("payment_method_type"),
        "card_brand": payment.get("card_brand"), "card_funding": payment.get("card_funding"),
        "card_country": payment.get("card_country"), "statement_descriptor": payment.get("statement_descriptor"),
        "payment_metadata": payment.get("payment_metadata"), "updated_at": NOW - timedelta(hours=5),
    }


def write_marts(client, marts: str, rows: dict[str, list[dict]] | None = None) -> dict[str, list[dict]]:
    rows = rows or build_rows()
    client.command(f"CREATE DATABASE IF NOT EXISTS {marts}")
    for table in PREAGGREGATES:
        client.command(f"DROP TABLE IF EXISTS {marts}.{table}")
    for table, columns in MART_DDL.items():
        client.command(f"DROP TABLE IF EXISTS {marts}.{table}")
        client.command(f"CREATE TABLE {marts}.{table} ({columns}) ENGINE = MergeTree ORDER BY tuple()")
        known = [part.strip().split(" ")[0] for part in columns.split(",") if part.strip()
                 and not part.strip().startswith(("6", "'"))]
        data = rows.get(table, [])
        if data:
            names = [n for n in data[0] if n in known]
            client.insert(f"{marts}.{table}", [[r[n] for n in names] for r in data], column_names=names)
    return rows




def build_rollups(marts: str, settings) -> None:
    """The summaries' pre-aggregates, built from the marts by the real dbt models (the warehouse
    must not be held open by this process: the dbt launcher opens it)."""
    import os
    import subprocess

    from tests.fixtures.platform import DBT_LAUNCHER

    env = {**os.environ, "PAYREPORTS_WAREHOUSE_MARTS_DATABASE": marts,
           "PAYREPORTS_STATE_DIR": str(settings.state_dir)}
    built = subprocess.run([sys.executable, str(DBT_LAUNCHER), "run", "--select", *PREAGGREGATES],
                           cwd=DBT_LAUNCHER.parent, capture_output=True, text=True, timeout=600,
                           env=env)
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]


def account(kind: str) -> str:
    return next(a[0] for a in ACCOUNTS if a[0].startswith(f"acct_1Pdf{kind}"))


def render(client, settings, report_type: str, account_id: str, parameters: dict, out: Path,
           fmt: str = "pdf"):
    from exports.reports.engine import build_report_query, validate_report_request
    from exports.writers import write_report

    timezone = next(a[2] for a in ACCOUNTS if a[0] == account_id)
    validated = validate_report_request(account_id, report_type, parameters, fmt, now=NOW,
                                        settings=settings, account_timezone=timezone,
                                        data_available_end=NOW)
    query = build_report_query(client, validated, settings=settings)
    return query, write_report(client, query, fmt, out, settings=settings)


INTERVAL_120 = {"interval_start": "2024-02-01", "interval_end": "2024-05-31"}  # 120 days
MONTH = {"interval_start": "2024-03-01", "interval_end": "2024-04-01"}


def main(out_dir: str) -> None:
    import clickhouse_connect

    from exports.reports.catalog import REPORT_TYPES
    from exports.settings import get_settings

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = get_settings().model_copy(update={"warehouse_marts_database": "pdf_marts",
                                                 "state_dir": out / "state"})
    client = clickhouse_connect.get_client(dsn=f"chdb://{settings.chdb_dir}")
    write_marts(client, "pdf_marts")
    client.close()
    build_rollups("pdf_marts", settings)
    client = clickhouse_connect.get_client(dsn=f"chdb://{settings.chdb_dir}")
    wanted = sys.argv[2:] or list(REPORT_TYPES)
    for kind in ("Usd", "Jpy", "Kwd", "Mix", "Nil"):
        for report_type in wanted:
            report = REPORT_TYPES[report_type]
            params = dict(INTERVAL_120 if report.shape == "summary" else MONTH)
            if report.interval == "end_only":
                params.pop("interval_start")
            if report.shape == "itemized":
                params["interval_end"] = "2024-03-08"
            name = f"{report_type}-{kind.lower()}.pdf"
            try:
                render(client, settings, report_type, account(kind), params, out / name)
                print("wrote", name, flush=True)
            except Exception as error:  # noqa: BLE001 - a dev tool: show every failure
                print("FAILED", name, type(error).__name__, error, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
