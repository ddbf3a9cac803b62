"""Ledger invariants of the source database, as SQL checks.

The generator, the mutations and the tests all rely on these; each check returns the offending
rows (a few, with ids and numbers) so a failure message says exactly what is wrong.
"""

from __future__ import annotations

import psycopg

EXAMPLES = 5  # offending rows shown per failed check

# (what must hold, SQL returning offending rows as (id, detail text))
CHECKS: tuple[tuple[str, str], ...] = (
    ("net = amount - fee on every balance transaction", """
        SELECT id, format('amount %s fee %s net %s', amount, fee, net)
        FROM balance_transactions WHERE net <> amount - fee"""),
    ("a payout's own transaction is never settled by a payout", """
        SELECT id, format('payout transaction has payout_id %s', payout_id)
        FROM balance_transactions WHERE type = 'payout' AND payout_id IS NOT NULL"""),
    ("every payout has exactly one payout transaction with net = -amount", """
        SELECT p.id, format('amount %s, %s payout transactions, their net %s',
                            p.amount, count(bt.id), coalesce(sum(bt.net), 0))
        FROM payouts p
        LEFT JOIN balance_transactions bt ON bt.source_id = p.id AND bt.type = 'payout'
        GROUP BY p.id, p.amount
        HAVING count(bt.id) <> 1 OR sum(bt.net) <> -p.amount"""),
    ("a payout's amount equals the sum of the nets it settles", """
        SELECT p.id, format('amount %s, settled nets sum to %s over %s transactions',
                            p.amount, coalesce(sum(bt.net), 0), count(bt.id))
        FROM payouts p LEFT JOIN balance_transactions bt ON bt.payout_id = p.id
        GROUP BY p.id, p.amount HAVING coalesce(sum(bt.net), 0) <> p.amount"""),
    ("a payout settles only its own account's and currency's transactions, available by then", """
        SELECT bt.id, format('settled by %s (%s %s at %s) but is %s %s available_on %s', p.id,
                             p.account_id, p.currency, p.created_at, bt.account_id, bt.currency,
                             bt.available_on)
        FROM balance_transactions bt JOIN payouts p ON p.id = bt.payout_id
        WHERE bt.account_id <> p.account_id OR bt.currency <> p.currency
           OR bt.available_on > p.created_at"""),
    ("per account and currency the balance equals the unsettled nets", """
        SELECT account_id || ' ' || currency,
               format('sum of all nets %s, sum of unsettled non-payout nets %s', total, unsettled)
        FROM (SELECT account_id, currency, sum(net) AS total,
                     coalesce(sum(net) FILTER (WHERE payout_id IS NULL AND type <> 'payout'), 0)
                         AS unsettled
              FROM balance_transactions GROUP BY 1, 2) b
        WHERE total <> unsettled"""),
    ("refunds never exceed their payment", """
        SELECT p.id, format('amount %s, refunds sum to %s', p.amount, sum(r.amount))
        FROM payments p JOIN refunds r ON r.payment_id = p.id AND r.status = 'succeeded'
        GROUP BY p.id, p.amount HAVING sum(r.amount) > p.amount"""),
    ("amount_refunded = sum of the payment's succeeded refunds", """
        SELECT p.id, format('amount_refunded %s, succeeded refunds sum to %s', p.amount_refunded,
                            coalesce(sum(r.amount), 0))
        FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id AND r.status = 'succeeded'
        GROUP BY p.id, p.amount_refunded
        HAVING p.amount_refunded <> coalesce(sum(r.amount), 0)"""),
    ("status 'refunded' exactly when a non-disputed payment is fully refunded", """
        SELECT id, format('status %s, amount %s, amount_refunded %s', status, amount, amount_refunded)
        FROM payments
        WHERE status <> 'disputed' AND (status = 'refunded') <> (amount_refunded = amount)"""),
    ("each succeeded, refunded or disputed payment has one charge transaction of its amount", """
        SELECT p.id, format('status %s amount %s: %s charge transactions, amount %s', p.status,
                            p.amount, count(bt.id), sum(bt.amount))
        FROM payments p
        LEFT JOIN balance_transactions bt ON bt.source_id = p.id AND bt.type = 'charge'
        WHERE p.status IN ('succeeded', 'refunded', 'disputed')
        GROUP BY p.id, p.status, p.amount
        HAVING count(bt.id) <> 1 OR sum(bt.amount) <> p.amount"""),
    ("failed and pending payments have no balance transaction", """
        SELECT p.id, format('status %s has transaction %s', p.status, bt.id)
        FROM payments p JOIN balance_transactions bt ON bt.source_id = p.id
        WHERE p.status IN ('failed', 'pending')"""),
    ("each succeeded refund has one refund transaction of minus its amount", """
        SELECT r.id, format('amount %s: %s refund transactions, amount %s', r.amount, count(bt.id),
                            sum(bt.amount))
        FROM refunds r
        LEFT JOIN balance_transactions bt ON bt.source_id = r.id AND bt.reporting_category = 'refund'
        WHERE r.status = 'succeeded'
        GROUP BY r.id, r.amount HAVING count(bt.id) <> 1 OR sum(bt.amount) <> -r.amount"""),
    ("money moves in the payment's currency and account", """
        SELECT x.id, format('%s %s %s vs payment %s %s %s', x.kind, x.account_id, x.currency,
                            p.id, p.account_id, p.currency)
        FROM (SELECT id, 'refund' AS kind, payment_id, account_id, currency FROM refunds
              UNION ALL SELECT id, 'dispute', payment_id, account_id, currency FROM disputes) x
        JOIN payments p ON p.id = x.payment_id
        WHERE x.account_id <> p.account_id OR x.currency <> p.currency"""),
    ("updated_at >= created_at everywhere", """
        SELECT id, format('%s created_at %s updated_at %s', t, created_at, updated_at)
        FROM (SELECT 'payments' AS t, id, created_at, updated_at FROM payments
              UNION ALL SELECT 'refunds', id, created_at, updated_at FROM refunds
              UNION ALL SELECT 'disputes', id, created_at, updated_at FROM disputes
              UNION ALL SELECT 'payouts', id, created_at, updated_at FROM payouts
              UNION ALL SELECT 'balance_transactions', id, created_at, updated_at
                        FROM balance_transactions) x
        WHERE updated_at < created_at"""),
)


def ledger_invariant_violations(conn: psycopg.Connection) -> list[str]:
    """Human messages, one per failed check (empty list: the ledger is consistent)."""
    violations: list[str] = []
    for rule, query in CHECKS:
        rows = conn.execute(f"SELECT * FROM ({query}) v ORDER BY 1 LIMIT {EXAMPLES + 1}").fetchall()
        if rows:
            shown = "; ".join(f"{row[0]}: {row[1]}" for row in rows[:EXAMPLES])
            more = " ..." if len(rows) > EXAMPLES else ""
            violations.append(f"{rule} -- violated by {shown}{more}")
    return violations
