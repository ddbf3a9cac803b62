"""fees.summary — fees per day (in the report timezone), currency and fee type.

fee_type: `processing` for fees on charges (and other payment transactions), `dispute` for
dispute fees, `platform` for standalone fee transactions. Amounts are what the account paid,
positive (a standalone fee transaction's net is negative, so its amount is −net).
"""

from __future__ import annotations

from typing import Any

from exports.reports.types.base import (
    ColumnSpec, QueryContext, ReportType, code, filter_conditions, interval_conditions,
    local_day, money, select_list,
)

COLUMNS = (
    ColumnSpec("date", "date", "Day, in the report timezone.", "s_day", default=True),
    code("currency", "Three-letter ISO currency code, lowercase.", "s_currency",
         default=True),
    code("fee_type", "processing, dispute or platform.", "s_fee_type", default=True),
    ColumnSpec("fee_count", "integer", "Number of transactions that carried this fee.",
               "toInt64(s_count)", default=True, summable=True),
    ColumnSpec("fee_amount", "money", "Fees paid (positive).", money("s_amount"), default=True,
               summable=True),
)


def _summary(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    where = ["bt.account_id = {account_id:String}", "(bt.reporting_category = 'fee' OR bt.fee_minor != 0)",
             *interval_conditions(ctx, "bt.created_at"),
             *filter_conditions(ctx, {"currency": "bt.currency"})]
    sql = f"""SELECT
    {select_list(ctx, 's_currency', 's_exponent')}
FROM (
    SELECT {local_day('bt.created_at')} AS s_day, toString(bt.currency) AS s_currency,
           multiIf(bt.reporting_category = 'fee', 'platform',
                   bt.reporting_category IN ('dispute', 'dispute_reversal'), 'dispute',
                   'processing') AS s_fee_type,
           any(bt.currency_exponent) AS s_exponent,
           count() AS s_count,
           sum(if(bt.reporting_category = 'fee', -bt.net_minor, bt.fee_minor)) AS s_amount
    FROM {ctx.marts}.fct_balance_transactions AS bt
    WHERE {' AND '.join(where)}
    GROUP BY s_day, s_currency, s_fee_type
)
ORDER BY s_day, s_currency, s_fee_type"""
    return sql, ctx.base_parameters()


REPORT_TYPES = (
    ReportType(
        id="fees.summary",
        title="Fees summary",
        description="Fees paid per day, currency and fee type (processing, dispute, platform); "
                    "days are cut in the report timezone.",
        shape="summary",
        columns=COLUMNS,
        build=_summary,
        filters=frozenset({"currency"}),
        chart_label_column="fee_type",
        chart_value_column="fee_amount",
    ),
)
