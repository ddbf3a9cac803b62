"""The demo platform generator and mutations against a real embedded Postgres (small scale)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from exports import db
from exports.source import (SourceNotEmpty, generate_platform, ledger_invariant_violations,
                            mutate_recent)
from exports.source.generator import PRICING, SOURCE_TABLES

pytestmark = pytest.mark.integration

END = date(2024, 3, 11)
SMALL = {"payments": 3000, "days": 30, "end_date": END}


def table_checksums(settings) -> dict[str, str]:
    with db.connect("source", settings) as conn:
        return {table: conn.execute(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t"
        ).fetchone()[0] for table in SOURCE_TABLES}


@pytest.fixture(scope="module")
def postgres(postgres):
    """This module's own source database on the session's server: generating with reset=True
    into the shared one would replace the demo platform that later tests read (its accounts
    would then be missing from the warehouse)."""
    import psycopg

    from exports.services import postgres as embedded
    from tests.fixtures.services import overridden_env

    name = "payments_generator_test"
    with psycopg.connect(embedded.server_url(postgres), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    with overridden_env({"PAYREPORTS_SOURCE_DATABASE_URL": embedded.server_url(postgres, name)}):
        from exports.settings import get_settings

        settings = get_settings()
        db.migrate("source", settings)
        yield settings


@pytest.fixture
def platform(postgres):
    summary = generate_platform(postgres, seed=42, reset=True, **SMALL)
    with db.connect("source", postgres) as conn:
        yield summary, conn


def test_generated_platform_keeps_ledger_invariants(platform):
    summary, conn = platform
    assert ledger_invariant_violations(conn) == []
    assert summary.rows["payments"] == 3000
    assert summary.rows["accounts"] == 6
    for table in ("customers", "refunds", "disputes", "payouts", "balance_transactions"):
        assert summary.rows[table] > 0, table
    assert summary.start == datetime(2024, 2, 10, tzinfo=UTC)
    bounds = conn.execute(
        "SELECT min(created_at), max(created_at), max(updated_at) FROM payments").fetchone()
    assert summary.start <= bounds[0] and bounds[1] < summary.end and bounds[2] <= summary.end
    for table in SOURCE_TABLES:
        latest = conn.execute(f"SELECT max(updated_at) FROM {table}").fetchone()[0]
        assert latest <= summary.end, table
    statuses = dict(conn.execute("SELECT status, count(*) FROM payments GROUP BY 1").fetchall())
    assert statuses["succeeded"] > 0.8 * 3000
    assert statuses["failed"] > 0 and statuses["pending"] > 0 and statuses["refunded"] > 0
    categories = {row[0] for row in conn.execute(
        "SELECT DISTINCT reporting_category FROM balance_transactions")}
    assert {"charge", "refund", "dispute", "fee", "payout"} <= categories


def test_same_seed_gives_identical_tables_and_another_seed_differs(postgres):
    generate_platform(postgres, seed=7, reset=True, **SMALL)
    first = table_checksums(postgres)
    generate_platform(postgres, seed=7, reset=True, **SMALL)
    assert table_checksums(postgres) == first
    generate_platform(postgres, seed=8, reset=True, **SMALL)
    other = table_checksums(postgres)
    for table in ("payments", "balance_transactions", "payouts", "customers"):
        assert other[table] != first[table], table


def test_refuses_to_write_over_existing_data_without_reset(platform):
    _, conn = platform
    before = conn.execute("SELECT count(*), max(id) FROM payments").fetchone()
    with pytest.raises(SourceNotEmpty, match="reset=True"):
        generate_platform(seed=1, payments=10, days=2, end_date=END)
    assert conn.execute("SELECT count(*), max(id) FROM payments").fetchone() == before


def test_amounts_and_fees_fit_each_currency(platform):
    _, conn = platform
    exponents = dict(conn.execute(
        "SELECT p.currency, c.exponent FROM payments p JOIN currencies c ON c.code = p.currency"
        " GROUP BY 1, 2").fetchall())
    assert exponents["jpy"] == 0 and exponents["kwd"] == 3
    assert {"usd", "eur", "gbp", "aud"} <= exponents.keys()
    charges = conn.execute(
        "SELECT currency, amount, fee, net FROM balance_transactions WHERE type = 'charge'").fetchall()
    for currency, amount, fee, net in charges:
        pricing = PRICING[currency]
        rate = (Decimal(amount) * pricing.fee_per_mille / 1000).quantize(Decimal(1), ROUND_HALF_UP)
        assert fee == int(rate) + pricing.fee_fixed, (currency, amount, fee)
        assert net == amount - fee and net > 0
    medians = dict(conn.execute(
        "SELECT currency, percentile_disc(0.5) WITHIN GROUP (ORDER BY amount) FROM payments"
        " GROUP BY 1").fetchall())
    # Comparable prices: a median KWD charge (fils) is far more minor units than a USD one.
    assert medians["kwd"] > 2 * medians["usd"]
    assert 1000 < medians["jpy"] < 20000


def test_weekend_volume_is_lower_than_weekday(platform):
    _, conn = platform
    per_day = conn.execute("""
        SELECT extract(isodow FROM p.created_at AT TIME ZONE a.timezone) >= 6 AS weekend,
               count(*)::float8 / count(DISTINCT (p.created_at AT TIME ZONE a.timezone)::date)
        FROM payments p JOIN accounts a ON a.id = p.account_id
        WHERE a.country = 'US' GROUP BY 1""").fetchall()
    average = dict(per_day)
    assert average[True] < 0.8 * average[False]


def test_payouts_settle_exactly_and_leave_only_unpayable_transactions(platform):
    _, conn = platform
    mismatches = conn.execute("""
        SELECT p.id FROM payouts p
        JOIN balance_transactions own ON own.source_id = p.id AND own.type = 'payout'
        JOIN balance_transactions settled ON settled.payout_id = p.id
        GROUP BY p.id, p.amount, own.net
        HAVING sum(settled.net) <> p.amount OR own.net <> -p.amount OR p.amount <= 0""").fetchall()
    assert mismatches == []
    # Unsettled transactions that were available at the latest payout of their account and
    # currency may only remain because together they are not positive (carried forward).
    unpaid = conn.execute("""
        SELECT bt.account_id, bt.currency, sum(bt.net)
        FROM balance_transactions bt
        JOIN (SELECT account_id, currency, max(created_at) AS last_payout FROM payouts
              GROUP BY 1, 2) lp USING (account_id, currency)
        WHERE bt.payout_id IS NULL AND bt.type <> 'payout' AND bt.available_on <= lp.last_payout
        GROUP BY 1, 2 HAVING sum(bt.net) > 0""").fetchall()
    assert unpaid == []
    unsettled = conn.execute("SELECT count(*) FROM balance_transactions"
                             " WHERE payout_id IS NULL AND type <> 'payout'").fetchone()[0]
    assert unsettled > 0  # the ending balance reconciliation needs some
    weekly = conn.execute("""
        SELECT DISTINCT extract(isodow FROM p.created_at AT TIME ZONE a.timezone)
        FROM payouts p JOIN accounts a ON a.id = p.account_id
        WHERE a.payout_schedule = 'weekly'""").fetchall()
    assert weekly == [(1,)]


def test_a_few_paid_payouts_are_reversed_and_the_next_payout_sweeps_the_money_back(platform):
    """Stripe's payout reversal: the paid payout gets reversed_at, a payout_reversal transaction
    of its amount credits the balance when it is reversed, and the next payout settles it."""
    _, conn = platform
    reversals = conn.execute("""
        SELECT p.id, p.status, p.amount, p.reversed_at,
               (p.reversed_at AT TIME ZONE a.timezone)::date - p.arrival_date, p.updated_at,
               bt.amount, bt.net, bt.created_at, bt.available_on, bt.payout_id, nxt.created_at
        FROM payouts p JOIN accounts a ON a.id = p.account_id
        JOIN balance_transactions bt ON bt.source_id = p.id AND bt.reporting_category = 'payout_reversal'
        JOIN payouts nxt ON nxt.id = bt.payout_id
        WHERE p.reversed_at IS NOT NULL""").fetchall()
    total = conn.execute("SELECT count(*) FROM payouts WHERE status = 'paid'").fetchone()[0]
    reversed_count = conn.execute("SELECT count(*) FROM payouts WHERE reversed_at IS NOT NULL").fetchone()[0]
    assert 0 < len(reversals) == reversed_count <= 0.15 * total
    for (_, status, amount, reversed_at, days_after_arrival, updated, bt_amount, bt_net, bt_created,
         available_on, next_id, next_created) in reversals:
        assert status == "paid" and days_after_arrival == 1 and updated >= reversed_at
        assert bt_amount == bt_net == amount and bt_created == available_on == reversed_at
        assert next_created >= reversed_at
    assert conn.execute("SELECT count(*) FROM balance_transactions WHERE reporting_category = "
                        "'payout_reversal' AND source_id NOT IN (SELECT id FROM payouts "
                        "WHERE reversed_at IS NOT NULL)").fetchone()[0] == 0


def test_failed_and_pending_payments_have_no_balance_transaction(platform):
    _, conn = platform
    rows = conn.execute("""
        SELECT p.status, count(DISTINCT p.id), count(bt.id) FROM payments p
        LEFT JOIN balance_transactions bt ON bt.source_id = p.id
        WHERE p.status IN ('failed', 'pending') GROUP BY 1""").fetchall()
    assert {status for status, _, _ in rows} == {"failed", "pending"}
    assert all(payments > 0 and transactions == 0 for _, payments, transactions in rows)


def test_mutate_recent_changes_rows_now_and_keeps_invariants(platform):
    summary, conn = platform
    now = summary.end + timedelta(hours=6)
    open_payouts = [row[0] for row in conn.execute(
        "SELECT id FROM payouts WHERE status IN ('pending', 'in_transit')")]
    assert open_payouts
    conn.commit()
    result = mutate_recent(seed=5, now=now, refunds=20)
    assert result.refunds_created == 20
    assert result.payouts_paid == len(open_payouts) and result.payouts_created > 0
    assert result.transactions_settled > 0
    assert ledger_invariant_violations(conn) == []
    changed = {table: conn.execute(f"SELECT count(*) FROM {table} WHERE updated_at = %s",
                                   (now,)).fetchone()[0]
               for table in ("payments", "refunds", "payouts", "balance_transactions")}
    assert changed["refunds"] == 20 and changed["payments"] == 20
    assert changed["payouts"] == len(open_payouts) + result.payouts_created
    assert changed["balance_transactions"] >= result.transactions_settled + 20
    statuses = {row[0] for row in conn.execute(
        "SELECT status FROM payouts WHERE id = ANY(%s)", (open_payouts,))}
    assert statuses == {"paid"}
    # A second run finds other payments (partially refunded ones only if still refundable).
    again = mutate_recent(seed=5, now=now + timedelta(hours=1), refunds=5)
    assert again.refunds_created == 5
    assert ledger_invariant_violations(conn) == []
