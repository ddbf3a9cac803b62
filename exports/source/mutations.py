"""Recent activity on an existing demo platform: refunds, payouts moving to paid, a new payout
run. Every changed row gets updated_at = now, so incremental replication has real updates to
pick up. Runs in one transaction; the ledger invariants hold afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from exports import db
from exports.errors import InvalidParameter
from exports.settings import Settings


@dataclass
class MutationSummary:
    now: datetime
    refunds_created: int
    transactions_made_available: int
    payouts_paid: int
    payouts_created: int
    transactions_settled: int


def mutate_recent(settings: Settings | None = None, *, seed: int, now: datetime | None = None,
                  refunds: int = 20, settle_payouts: bool = True) -> MutationSummary:
    """Refund up to `refunds` succeeded payments of the last 30 days (chosen by `seed`), make
    transactions whose available_on has passed available, and, with settle_payouts, mark pending
    and in-transit payouts paid and pay out everything newly available (per account and
    currency, when its nets sum to > 0). `now` defaults to the database's now()."""
    if not isinstance(refunds, int) or refunds < 0:
        raise InvalidParameter(f"refunds must be a non-negative integer, got {refunds!r}",
                               param="refunds")
    if now is not None and now.tzinfo is None:
        raise InvalidParameter("now must be timezone-aware", param="now")
    with db.connect("source", settings) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('payreports.generate_platform'))")
        at = now or conn.execute("SELECT now()").fetchone()[0]
        params = {"now": at, "seed": seed, "limit": refunds}
        conn.execute("""
            CREATE TEMP TABLE mut_refunds ON COMMIT DROP AS
            SELECT id AS payment_id, account_id, currency, amount, refund_amount,
                   're_' || substr(md5(id || ':refund:' || prior_refunds), 1, 24) AS refund_id
            FROM (SELECT p.*, hashtextextended(p.id, %(seed)s) AS draw,
                         (SELECT count(*) FROM refunds r WHERE r.payment_id = p.id) AS prior_refunds,
                         CASE WHEN hashtextextended(p.id, %(seed)s) %% 2 = 0
                              THEN p.amount - p.amount_refunded
                              ELSE greatest(1, (p.amount - p.amount_refunded) * 4 / 10)
                              END AS refund_amount
                  FROM payments p
                  WHERE p.status = 'succeeded' AND p.amount_refunded < p.amount
                    AND p.created_at <= %(now)s AND p.created_at > %(now)s - interval '30 days'
                  ORDER BY draw, p.id LIMIT %(limit)s FOR UPDATE) picked""", params)
        refunds_created = conn.execute("""
            INSERT INTO refunds (id, account_id, payment_id, amount, currency, status, reason,
                                 created_at, updated_at)
            SELECT refund_id, account_id, payment_id, refund_amount, currency, 'succeeded',
                   'requested_by_customer', %(now)s, %(now)s FROM mut_refunds""", params).rowcount
        conn.execute("""
            INSERT INTO balance_transactions (id, account_id, amount, fee, net, currency, type,
                reporting_category, source_id, description, status, available_on, created_at,
                updated_at)
            SELECT 'txn_' || substr(md5(refund_id || ':txn'), 1, 26), account_id, -refund_amount, 0,
                   -refund_amount, currency, 'refund', 'refund', refund_id,
                   'REFUND FOR CHARGE (' || payment_id || ')', 'available', %(now)s, %(now)s, %(now)s
            FROM mut_refunds""", params)
        conn.execute("""
            UPDATE payments p
            SET amount_refunded = p.amount_refunded + m.refund_amount,
                status = CASE WHEN p.amount_refunded + m.refund_amount = p.amount THEN 'refunded'
                              ELSE p.status END,
                updated_at = %(now)s
            FROM mut_refunds m WHERE m.payment_id = p.id""", params)
        made_available = conn.execute("""
            UPDATE balance_transactions SET status = 'available', updated_at = %(now)s
            WHERE status = 'pending' AND available_on <= %(now)s""", params).rowcount
        paid = created = settled = 0
        if settle_payouts:
            paid, created, settled = _run_payouts(conn, params)
        conn.commit()
    return MutationSummary(now=at, refunds_created=refunds_created,
                           transactions_made_available=made_available, payouts_paid=paid,
                           payouts_created=created, transactions_settled=settled)


def _run_payouts(conn, params: dict) -> tuple[int, int, int]:
    """Earlier payouts arrive; then one payout per account and currency sweeps every unsettled
    transaction available by now, when they sum to > 0 (otherwise they wait, as generated)."""
    paid = conn.execute("""
        UPDATE payouts SET status = 'paid', updated_at = %(now)s
        WHERE status IN ('pending', 'in_transit') AND created_at <= %(now)s""", params).rowcount
    conn.execute("""
        CREATE TEMP TABLE mut_payouts ON COMMIT DROP AS
        SELECT 'po_' || substr(md5(bt.account_id || ':' || bt.currency || ':' || %(now)s::text), 1, 24)
                   AS payout_id,
               bt.account_id, bt.currency, sum(bt.net) AS amount, a.timezone
        FROM balance_transactions bt JOIN accounts a ON a.id = bt.account_id
        WHERE bt.payout_id IS NULL AND bt.type <> 'payout' AND bt.available_on <= %(now)s
        GROUP BY bt.account_id, bt.currency, a.timezone
        HAVING sum(bt.net) > 0""", params)
    created = conn.execute("""
        INSERT INTO payouts (id, account_id, amount, currency, status, automatic, type, method,
                             description, destination_id, arrival_date, created_at, updated_at)
        SELECT m.payout_id, m.account_id, m.amount, m.currency, 'pending', true, 'bank_account',
               'standard', 'STRIPE PAYOUT',
               (SELECT destination_id FROM payouts p WHERE p.account_id = m.account_id
                ORDER BY p.created_at DESC, p.id LIMIT 1),
               (%(now)s AT TIME ZONE m.timezone)::date + 2, %(now)s, %(now)s
        FROM mut_payouts m ORDER BY m.payout_id""", params).rowcount
    settled = conn.execute("""
        UPDATE balance_transactions bt SET payout_id = m.payout_id, updated_at = %(now)s
        FROM mut_payouts m
        WHERE bt.account_id = m.account_id AND bt.currency = m.currency AND bt.payout_id IS NULL
          AND bt.type <> 'payout' AND bt.available_on <= %(now)s""", params).rowcount
    conn.execute("""
        INSERT INTO balance_transactions (id, account_id, amount, fee, net, currency, type,
            reporting_category, source_id, description, status, available_on, created_at,
            updated_at)
        SELECT 'txn_' || substr(md5(payout_id || ':txn'), 1, 26), account_id, -amount, 0, -amount,
               currency, 'payout', 'payout', payout_id, 'STRIPE PAYOUT', 'available', %(now)s,
               %(now)s, %(now)s
        FROM mut_payouts""", params)
    return paid, created, settled
