"""The marts reports read are never behind their inputs, and never claimed ahead of them.

- A dimension change (customer email, payment statement descriptor, dispute reason and status)
  of a months-old row reaches every report after ONE refresh (replicate + dbt build), because
  fct_balance_transactions re-derives rows whose joined rows changed, whatever their age.
- "Data available up to" is the marts' built-through time: a refresh stopped between replication
  and dbt leaves it where the last build put it, so no report can be computed past it; the
  build then moves it to the replication watermark it consumed, and reports record that time as
  their data version.

Both run on the session's demo platform and put the source rows back (with a refresh) after.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from exports import db, replication
from exports.errors import InvalidParameter
from exports.reports.engine import build_report_query, generate_report, validate_report_request
from exports.warehouse import open_warehouse
from tests.fixtures.platform import run_dbt

pytestmark = pytest.mark.integration


def refresh(settings, *, build: bool = True) -> None:
    with open_warehouse(settings, purpose="test refresh") as client:
        replication.sync_all(client, settings)
    if build:
        result = run_dbt(["build"], settings)
        assert result.returncode == 0, result.stdout[-4000:]


def report_rows(settings, account: str, report_type: str, params: dict) -> list[dict]:
    end = replication.data_available_end(settings)
    validated = validate_report_request(account, report_type, params, "csv", settings=settings,
                                        now=end, data_available_end=end)
    with open_warehouse(settings, purpose="test report") as client:
        query = build_report_query(client, validated, settings=settings)
        result = client.query(query.sql, parameters=query.parameters)
    names = [c.name for c in query.columns] + ["_currency", "_exponent"]
    return [dict(zip(names, row)) for row in result.result_rows]


def _oldest_disputed_settled_charge(conn) -> tuple:
    """(account, payment, customer, dispute, charge txn created_at, payout) of the oldest charge
    that has a customer, a dispute and a settling payout: it shows up in every report family."""
    return conn.execute("""
        SELECT p.account_id, p.id, p.customer_id, d.id, t.created_at, t.payout_id
        FROM payments p
        JOIN disputes d ON d.payment_id = p.id
        JOIN balance_transactions t ON t.source_id = p.id AND t.reporting_category = 'charge'
        WHERE p.customer_id IS NOT NULL AND t.payout_id IS NOT NULL
        ORDER BY t.created_at LIMIT 1""").fetchone()


def test_dimension_change_of_a_months_old_row_reaches_every_report_after_one_refresh(demo_platform):
    settings = demo_platform.settings
    with db.connect("source", settings) as conn:
        account, payment, customer, dispute, charged_at, payout = _oldest_disputed_settled_charge(conn)
        saved = (conn.execute("SELECT email FROM customers WHERE id = %s", (customer,)).fetchone()[0],
                 conn.execute("SELECT statement_descriptor FROM payments WHERE id = %s", (payment,)).fetchone()[0],
                 conn.execute("SELECT reason, status FROM disputes WHERE id = %s", (dispute,)).fetchone())
        newest = conn.execute("SELECT max(updated_at) FROM balance_transactions").fetchone()[0]
    # Far outside the fact's 72 h lookback: only "its dimension changed" can re-derive it.
    assert newest - charged_at > timedelta(days=30)
    new_status = "won" if saved[2][1] != "won" else "lost"

    def change(email, descriptor, reason, status) -> None:
        with db.connect("source", settings) as conn:
            conn.execute("UPDATE customers SET email = %s, updated_at = now() WHERE id = %s", (email, customer))
            conn.execute("UPDATE payments SET statement_descriptor = %s, updated_at = now() WHERE id = %s",
                         (descriptor, payment))
            conn.execute("UPDATE disputes SET reason = %s, status = %s, updated_at = now() WHERE id = %s",
                         (reason, status, dispute))
            conn.commit()

    change("renamed@example.com", "NEW DESCRIPTOR", "changed_reason", new_status)
    try:
        refresh(settings)
        day = {"interval_start": (charged_at - timedelta(hours=1)).isoformat(),
               "interval_end": (charged_at + timedelta(hours=1)).isoformat(), "timezone": "UTC"}
        activity = report_rows(settings, account, "balance_change_from_activity.itemized",
                               {**day, "columns": ["balance_transaction_id", "source_id", "customer_email",
                                                   "statement_descriptor"]})
        charge_row = next(r for r in activity if r["source_id"] == payment)
        assert (charge_row["customer_email"], charge_row["statement_descriptor"]) == (
            "renamed@example.com", "NEW DESCRIPTOR")
        settled = report_rows(settings, account, "payout_reconciliation.itemized",
                              {"payout": payout, "columns": ["source_id", "customer_email", "statement_descriptor"]})
        assert {(r["customer_email"], r["statement_descriptor"]) for r in settled if r["source_id"] == payment} == {
            ("renamed@example.com", "NEW DESCRIPTOR")}
        payments = report_rows(settings, account, "payments.itemized",
                               {**day, "columns": ["payment_id", "customer_email", "statement_descriptor"]})
        assert {(r["customer_email"], r["statement_descriptor"]) for r in payments if r["payment_id"] == payment} == {
            ("renamed@example.com", "NEW DESCRIPTOR")}
        with db.connect("source", settings) as conn:
            disputed_at = conn.execute("SELECT created_at FROM balance_transactions WHERE source_id = %s",
                                       (dispute,)).fetchone()[0]
        around_dispute = {"interval_start": (disputed_at - timedelta(hours=1)).isoformat(),
                          "interval_end": (disputed_at + timedelta(hours=1)).isoformat(), "timezone": "UTC",
                          "columns": ["source_id", "customer_email", "dispute_reason"]}
        dispute_rows = [r for r in report_rows(settings, account, "balance_change_from_activity.itemized",
                                               around_dispute) if r["source_id"] == dispute]
        assert [(r["customer_email"], r["dispute_reason"]) for r in dispute_rows] == [
            ("renamed@example.com", "changed_reason")]
        with open_warehouse(settings) as client:
            statuses = client.query(
                "SELECT DISTINCT dispute_status FROM analytics.fct_balance_transactions WHERE dispute_id = {d:String}",
                parameters={"d": dispute}).result_rows
        assert statuses == [(new_status,)]
    finally:
        change(saved[0], saved[1], *saved[2])
        refresh(settings)


def test_no_report_past_the_marts_built_time_when_a_refresh_stops_before_dbt(demo_platform, tmp_path):
    settings = demo_platform.settings
    built = replication.data_available_end(settings)
    assert built is not None and built == replication.marts_built_through(settings)
    with db.connect("source", settings) as conn:
        account = conn.execute("SELECT account_id FROM balance_transactions GROUP BY 1 "
                               "ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    refresh(settings, build=False)  # replication ran, dbt did not
    replicated = replication.replicated_through(settings)
    assert replicated > built
    assert replication.data_available_end(settings) == built
    past_marts = {"interval_start": (built - timedelta(days=1)).isoformat(), "interval_end": replicated.isoformat()}
    with pytest.raises(InvalidParameter, match="available up to"):
        validate_report_request(account, "balance_change_from_activity.summary", past_marts, "csv",
                                settings=settings, now=replicated + timedelta(hours=1))
    # A partial build (not every model reports read) does not make the new data reportable.
    partial = run_dbt(["run", "--select", "fct_balance_transactions"], settings)
    assert partial.returncode == 0, partial.stdout[-3000:]
    assert replication.data_available_end(settings) == built
    result = run_dbt(["build"], settings)
    assert result.returncode == 0, result.stdout[-4000:]
    assert replication.data_available_end(settings) == replicated
    manifest = generate_report(account, "balance_change_from_activity.summary", past_marts, "csv",
                               tmp_path / "summary.csv", settings=settings,
                               now=replicated + timedelta(hours=1))
    assert datetime.fromisoformat(manifest.extra["data_version"]) == replicated
