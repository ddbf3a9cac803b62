"""Payout reversals on the demo platform (the generator reverses a few paid payouts), through the
dbt marts and the reports: payout_reversed_at is filled from the source, the reversal is a
payout_reversal row of the payouts report, and the balance summary, the payout reconciliation and
the ending balance reconciliation still equal the source cent for cent."""

from __future__ import annotations

from datetime import UTC

import pytest

from exports import db
from exports.reports.engine import build_report_query, validate_report_request
from exports.warehouse import open_warehouse

pytestmark = pytest.mark.integration


def _run(client, settings, account: str, report_type: str, parameters: dict, end) -> list[dict]:
    validated = validate_report_request(account, report_type, {**parameters, "timezone": "UTC"},
                                        "csv", settings=settings, now=end, data_available_end=end)
    query = build_report_query(client, validated, settings=settings)
    result = client.query(query.sql, parameters=query.parameters)
    names = [c.name for c in query.columns] + ["_currency", "_exponent"]
    return [dict(zip(names, row)) for row in result.result_rows]


def test_reversed_payouts_show_in_reports_and_every_figure_still_reconciles(demo_platform):
    settings = demo_platform.settings
    end = demo_platform.data_available_end
    with db.connect("source", settings) as conn:
        reversed_payouts = conn.execute("""
            SELECT p.id, p.account_id, p.currency, p.reversed_at, bt.id, bt.net, bt.payout_id
            FROM payouts p JOIN balance_transactions bt
              ON bt.source_id = p.id AND bt.reporting_category = 'payout_reversal'
            JOIN payouts nxt ON nxt.id = bt.payout_id
            WHERE p.reversed_at IS NOT NULL AND nxt.created_at < %s ORDER BY p.reversed_at""",
            (end,)).fetchall()
        assert reversed_payouts, "the demo platform reverses some payouts"
        payout_id, account, currency, reversed_at, reversal_txn, reversal_net, sweeping = reversed_payouts[0]
        start = demo_platform.start
        figures = dict(conn.execute("""
            SELECT k, v::bigint FROM (
              SELECT 'starting' AS k, coalesce(sum(net), 0) AS v FROM balance_transactions
               WHERE account_id = %(a)s AND currency = %(c)s AND created_at < %(s)s
              UNION ALL SELECT 'payouts', coalesce(sum(net), 0) FROM balance_transactions
               WHERE account_id = %(a)s AND currency = %(c)s AND created_at >= %(s)s
                 AND created_at < %(e)s AND reporting_category IN ('payout', 'payout_reversal')
              UNION ALL SELECT 'ending', coalesce(sum(net), 0) FROM balance_transactions
               WHERE account_id = %(a)s AND currency = %(c)s AND created_at < %(e)s) f""",
            {"a": account, "c": currency, "s": start, "e": end}).fetchall())
        sweeping_amount, = conn.execute("SELECT amount FROM payouts WHERE id = %s",
                                        (sweeping,)).fetchone()
    interval = {"interval_start": start.isoformat(), "interval_end": end.isoformat()}
    with open_warehouse(settings, purpose="test payout reversals") as client:
        payouts = _run(client, settings, account, "payouts.itemized",
                       {**interval, "currency": currency,
                        "columns": ["payout_id", "reporting_category", "net", "balance_transaction_id",
                                    "payout_reversed_at_utc", "payout_reversed_at"]}, end)
        balance = _run(client, settings, account, "balance.summary", {**interval, "currency": currency}, end)
        sweep = _run(client, settings, account, "payout_reconciliation.itemized",
                     {"payout": sweeping}, end)
    rows = [r for r in payouts if r["payout_id"] == payout_id]
    reversal = next(r for r in rows if r["reporting_category"] == "payout_reversal")
    assert reversal["balance_transaction_id"] == reversal_txn and reversal["net"] == reversal_net > 0
    # Both the payout and its reversal say when it was reversed (Stripe's payout_reversed_at).
    assert {r["payout_reversed_at_utc"].replace(tzinfo=UTC) for r in rows} == {reversed_at.astimezone(UTC)}
    assert all(r["payout_reversed_at"] is not None for r in rows)
    assert all(r["payout_reversed_at_utc"] is None for r in payouts
               if r["payout_id"] not in {p[0] for p in reversed_payouts})
    by_category = {r["category"]: r["net_amount"] for r in balance}
    assert by_category["starting_balance"] == figures["starting"]
    assert by_category["payouts"] == figures["payouts"]
    assert by_category["ending_balance"] == figures["ending"]
    assert by_category["ending_balance"] == (by_category["starting_balance"] + by_category["activity"]
                                             + by_category["payouts"])
    # The next payout settles the reversed money: its transactions sum to its amount.
    assert reversal_txn in {r["balance_transaction_id"] for r in sweep}
    assert sum(r["net"] for r in sweep) == sweeping_amount


def test_balance_summary_pdf_shows_payout_reversals_beside_payouts(demo_platform, tmp_path):
    import subprocess

    from exports.reports.engine import generate_report
    from tests.integration.test_pdf_documents import grouped, whole_token

    settings = demo_platform.settings
    end, start = demo_platform.data_available_end, demo_platform.start
    with db.connect("source", settings) as conn:
        account, currency = conn.execute(
            "SELECT account_id, currency FROM balance_transactions WHERE reporting_category ="
            " 'payout_reversal' AND created_at < %s LIMIT 1", (end,)).fetchone()
        parts = dict(conn.execute(
            "SELECT reporting_category, sum(net)::bigint FROM balance_transactions WHERE account_id = %s"
            " AND currency = %s AND created_at >= %s AND created_at < %s AND reporting_category IN"
            " ('payout', 'payout_reversal') GROUP BY 1", (account, currency, start, end)).fetchall())
        exponent, = conn.execute("SELECT exponent FROM currencies WHERE code = %s", (currency,)).fetchone()
    out = tmp_path / "balance.pdf"
    generate_report(account, "balance.summary", {"interval_start": start.isoformat(),
                                                 "interval_end": end.isoformat(), "timezone": "UTC",
                                                 "currency": currency}, "pdf", out,
                    settings=settings, now=end)
    lines = subprocess.run(["pdftotext", "-layout", str(out), "-"], check=True, capture_output=True,
                           text=True).stdout.splitlines()

    def line_of(name: str) -> str:
        return next(line for line in lines if line.strip().startswith(name + "  "))

    assert whole_token(grouped(parts["payout_reversal"], exponent)).search(line_of("Payout reversals"))
    assert whole_token(grouped(parts["payout"], exponent)).search(line_of("Payouts"))
    assert whole_token(grouped(sum(parts.values()), exponent)).search(line_of("Total payouts"))
