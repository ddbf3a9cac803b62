"""payout_reconciliation.* — the transactions each automatic payout settled — and
ending_balance_reconciliation.itemized — the transactions not yet paid out at interval_end.

Payouts are chosen by when they took effect (in the interval) or by id (the `payout` filter);
each payout's rows' nets sum exactly to its amount. The payout's own transaction is not listed:
it is the payout, not something it settled.
"""

from __future__ import annotations

from typing import Any

from exports.reports.types.activity import (
    BT_FILTER_COLUMNS, LEDGER_FILTER_COLUMNS, SUMMARY_COLUMNS, balance_transaction_columns, category_summary_sql,
)
from exports.reports.types.base import (
    ACTIVITY_CATEGORIES, END, START, QueryContext, ReportType, account_is, filter_conditions,
    interval_conditions, is_payout, select_list, total_row_figures,
)
from exports.reports.types.buckets import settled_rows


def _settled_from_where(ctx: QueryContext) -> str:
    """FROM/WHERE of the transactions settled by the chosen payouts (`bt` joined to them as `po`)."""
    payout_where = [account_is(ctx, "account_id"), *interval_conditions(ctx, "created_at"),
                    *filter_conditions(ctx, {"payout": "payout_id"})]
    where = [account_is(ctx, "bt.account_id"), *filter_conditions(ctx, BT_FILTER_COLUMNS)]
    return f"""FROM {ctx.marts}.fct_balance_transactions AS bt
INNER JOIN (SELECT payout_id, created_at FROM {ctx.marts}.fct_payouts
            WHERE {' AND '.join(payout_where)}) AS po
    ON po.payout_id = bt.automatic_payout_id
WHERE {' AND '.join(where)}"""


def _itemized(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    sql = f"""SELECT
    {select_list(ctx, 'bt.currency', 'bt.currency_exponent', account='bt.account_id')}
{_settled_from_where(ctx)}
ORDER BY po.created_at, po.payout_id, bt.created_at, bt.balance_transaction_id"""
    return sql, ctx.base_parameters()


def _summary(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    # Payouts chosen by when they took effect: the pre-aggregates keep each group's settling
    # payout's effective time, so the daily grain answers exactly. One payout by id (the
    # `payout` filter) is a per-row fact: the settled rows, shaped like buckets.ledger_rows (one
    # transaction each), for the shared summary SQL.
    if ctx.preaggregated and "payout" not in ctx.filters:
        rows = settled_rows(ctx, where=(f"payout_effective_at >= {START}", f"payout_effective_at < {END}",
                                        *filter_conditions(ctx, LEDGER_FILTER_COLUMNS)))
    else:
        rows = f"""(SELECT bt.reporting_category AS reporting_category, bt.currency AS currency,
        bt.currency_exponent AS currency_exponent, toUInt64(1) AS transaction_count,
        bt.gross_minor AS gross_minor, bt.fee_minor AS fee_minor, bt.net_minor AS net_minor
    {_settled_from_where(ctx)})"""
    return category_summary_sql(ctx, f"FROM {rows} AS bt"), ctx.base_parameters()


def _unpaid_at_end(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    # As ending_balance_reconciliation.summary: created before interval_end and unsettled, or
    # settled by a payout that took effect at/after it; payouts themselves are left out (each
    # cancels exactly what it settled), so the nets sum to the ending balance.
    where = ["bt.account_id = {account_id:String}", f"bt.created_at < {END}",
             f"NOT ({is_payout('bt.reporting_category')})",
             f"(ifNull(bt.automatic_payout_id, '') = '' OR po.created_at >= {END})",
             *filter_conditions(ctx, BT_FILTER_COLUMNS)]
    sql = f"""SELECT
    {select_list(ctx, 'bt.currency', 'bt.currency_exponent')}
FROM {ctx.marts}.fct_balance_transactions AS bt
LEFT JOIN (SELECT payout_id, created_at FROM {ctx.marts}.fct_payouts
           WHERE account_id = {{account_id:String}}) AS po
    ON po.payout_id = bt.automatic_payout_id
WHERE {' AND '.join(where)}
ORDER BY bt.created_at, bt.balance_transaction_id"""
    return sql, ctx.base_parameters()


_PAYOUT_FILTERS = frozenset({"currency", "reporting_category", "payout"})

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
        filters=_PAYOUT_FILTERS,
        interval="required_unless_payout",
        batches_accounts=True,
    ),
    ReportType(
        id="payout_reconciliation.summary",
        title="Payout reconciliation (summary)",
        description="The balance transactions settled by the automatic payouts that took effect "
                    "in the interval (or by the one given as `payout`), totalled by reporting "
                    "category and currency, with a total row per currency: the payouts' amount.",
        shape="summary",
        columns=SUMMARY_COLUMNS,
        totals=total_row_figures(),  # the rows include a `total` per currency
        build=_summary,
        filters=_PAYOUT_FILTERS,
        interval="required_unless_payout",
        chart_label_column="reporting_category",
        chart_value_column="net",
    ),
    ReportType(
        id="ending_balance_reconciliation.itemized",
        title="Ending balance reconciliation (itemized)",
        description="Every transaction created before interval_end that had not been paid out as "
                    "of then: what the ending balance is made of, row by row.",
        shape="itemized",
        columns=balance_transaction_columns(),
        build=_unpaid_at_end,
        filters=frozenset({"currency", "reporting_category"}),
        reporting_categories=ACTIVITY_CATEGORIES,
        interval="end_only",
    ),
)
