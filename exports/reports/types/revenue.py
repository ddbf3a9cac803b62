"""revenue.summary — gross, refunds, disputes, fees and net per day (in the report timezone)
and currency. Signs are the balance's: refunds and disputes negative, fees negative.

For each day and currency: gross + refunds + disputes + fees = net, where
  gross    = gross of charges (and charge failures)
  refunds  = gross of refunds (and refund failures)
  disputes = gross of disputes (and dispute reversals)
  fees     = −fees charged on those transactions + net of standalone fee transactions
  net      = net of all of them.
"""

from __future__ import annotations

from typing import Any

from exports import reporting_categories as categories
from exports.reports.types.base import (
    ColumnSpec, QueryContext, ReportType, code, filter_conditions, local_day, money, select_list,
)
from exports.reports.types.buckets import ledger_rows

# The categories with a revenue_component in the shared definition (exports/reporting_categories.py).
REVENUE_CATEGORIES = categories.revenue_categories()

COLUMNS = (
    ColumnSpec("date", "date", "Day, in the report timezone.", "s_day", default=True),
    code("currency", "Three-letter ISO currency code, lowercase.", "s_currency",
         default=True),
    ColumnSpec("charge_count", "integer", "Number of charges.", "toInt64(s_charge_count)",
               default=True, summable=True),
    ColumnSpec("gross", "money", "Charged amount.", money("s_gross"), default=True, summable=True),
    ColumnSpec("refunds", "money", "Refunded amount (negative).", money("s_refunds"), default=True,
               summable=True),
    ColumnSpec("disputes", "money", "Disputed amount net of reversals (negative).",
               money("s_disputes"), default=True, summable=True),
    ColumnSpec("fees", "money", "Fees (negative).", money("s_fees"), default=True, summable=True),
    ColumnSpec("net", "money", "gross + refunds + disputes + fees.", money("s_net"), default=True,
               summable=True),
)


def _summary(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    assert ctx.interval_start is not None and ctx.interval_end is not None
    where = (f"reporting_category IN {categories.sql_list(REVENUE_CATEGORIES)}",
             *filter_conditions(ctx, {"currency": "currency"}))
    rows, params = ledger_rows(ctx, cuts=[ctx.interval_start, ctx.interval_end], local_days=True,
                               where=where)

    def component(name: str) -> str:
        return categories.sql_list(categories.revenue_categories(name))

    sql = f"""SELECT
    {select_list(ctx, 's_currency', 's_exponent')}
FROM (
    SELECT {local_day('bt.t')} AS s_day, toString(bt.currency) AS s_currency,
           any(bt.currency_exponent) AS s_exponent,
           sumIf(bt.transaction_count, bt.reporting_category = 'charge') AS s_charge_count,
           sumIf(bt.gross_minor, bt.reporting_category IN {component('gross')}) AS s_gross,
           sumIf(bt.gross_minor, bt.reporting_category IN {component('refunds')}) AS s_refunds,
           sumIf(bt.gross_minor, bt.reporting_category IN {component('disputes')}) AS s_disputes,
           sum(-{categories.fee_amount_sql('bt.reporting_category', 'bt.fee_minor', 'bt.net_minor')}) AS s_fees,
           sum(bt.net_minor) AS s_net
    FROM {rows} AS bt
    GROUP BY s_day, s_currency
)
ORDER BY s_day, s_currency"""
    return sql, {**ctx.base_parameters(), **params}


REPORT_TYPES = (
    ReportType(
        id="revenue.summary",
        title="Revenue summary",
        description="Gross, refunds, disputes, fees and net per day and currency; days are cut "
                    "in the report timezone.",
        shape="summary",
        columns=COLUMNS,
        build=_summary,
        filters=frozenset({"currency"}),
        chart_label_column="date",
        chart_value_column="net",
    ),
)
