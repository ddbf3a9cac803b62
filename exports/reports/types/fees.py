"""fees.summary — fees per day (in the report timezone), currency and fee type.

fee_type: `processing` for fees on charges (and other payment transactions), `dispute` for
dispute fees, `platform` for standalone fee transactions. Amounts are what the account paid,
positive (a standalone fee transaction's net is negative, so its amount is −net).
"""

from __future__ import annotations

from typing import Any

from exports import reporting_categories as categories
from exports.reports.types.base import (
    ColumnSpec, QueryContext, ReportType, code, filter_conditions, local_day, money, select_list,
)
from exports.reports.types.buckets import ledger_rows

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
    # A row carries a fee when its fee is non-zero, or always for the categories whose fee is
    # the negated net (standalone fee transactions): exports/reporting_categories.py.
    assert ctx.interval_start is not None and ctx.interval_end is not None
    rows, params = ledger_rows(ctx, cuts=[ctx.interval_start, ctx.interval_end], local_days=True,
                               where=tuple(filter_conditions(ctx, {"currency": "currency"})))
    negated_net = categories.sql_list(categories.with_fee_amount("negated_net"))
    sql = f"""SELECT
    {select_list(ctx, 's_currency', 's_exponent')}
FROM (
    SELECT {local_day('bt.t')} AS s_day, toString(bt.currency) AS s_currency,
           {categories.fee_type_sql('bt.reporting_category')} AS s_fee_type,
           any(bt.currency_exponent) AS s_exponent,
           sum(if(bt.reporting_category IN {negated_net}, bt.transaction_count, bt.fee_count)) AS s_count,
           sum({categories.fee_amount_sql('bt.reporting_category', 'bt.fee_minor', 'bt.net_minor')}) AS s_amount
    FROM {rows} AS bt
    GROUP BY s_day, s_currency, s_fee_type
    HAVING s_count > 0
)
ORDER BY s_day, s_currency, s_fee_type"""
    return sql, {**ctx.base_parameters(), **params}


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
