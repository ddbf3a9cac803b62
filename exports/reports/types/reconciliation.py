"""payout_reconciliation.itemized — the transactions each automatic payout settled.

Payouts are chosen by when they took effect (in the interval) or by id (the `payout` filter);
each payout's rows' nets sum exactly to its amount. The payout's own transaction is not listed:
it is the payout, not something it settled.
"""

from __future__ import annotations

from typing import Any

from exports.reports.types.activity import BT_FILTER_COLUMNS, balance_transaction_columns
from exports.reports.types.base import (
    QueryContext, ReportType, filter_conditions, interval_conditions, select_list,
)


def _itemized(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    payout_where = ["account_id = {account_id:String}", *interval_conditions(ctx, "created_at"),
                    *filter_conditions(ctx, {"payout": "payout_id"})]
    where = ["bt.account_id = {account_id:String}", *filter_conditions(ctx, BT_FILTER_COLUMNS)]
    sql = f"""SELECT
    {select_list(ctx, 'bt.currency', 'bt.currency_exponent')}
FROM {ctx.marts}.fct_balance_transactions AS bt
INNER JOIN (SELECT payout_id, created_at FROM {ctx.marts}.fct_payouts
            WHERE {' AND '.join(payout_where)}) AS po
    ON po.payout_id = bt.automatic_payout_id
WHERE {' AND '.join(where)}
ORDER BY po.created_at, po.payout_id, bt.created_at, bt.balance_transaction_id"""
    return sql, ctx.base_parameters()


REPORT_TYPES = (
    ReportType(
        id="payout_reconciliation.itemized",
        title="Payout reconciliation (itemized)",
        description="For each automatic payout that took effect in the interval (or the one "
                    "given as `payout`), the balance transactions it settled; their nets sum to "
                    "the payout amount.",
        shape="itemized",
        columns=balance_transaction_columns(payout_always_joined=True, payout_first=True),
        build=_itemized,
        filters=frozenset({"currency", "reporting_category", "payout"}),
        interval="required_unless_payout",
    ),
)
