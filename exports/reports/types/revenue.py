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

from exports.reports.types.base import (
    ColumnSpec, QueryContext, ReportType, code, filter_conditions, interval_conditions,
    local_day, money, select_list,
)

REVENUE_CATEGORIES = ("charge", "charge_failure", "refund", "refund_failure", "dispute",
                      "dispute_reversal", "fee")

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
    categories = ", ".join(f"'{c}'" for c in REVENUE_CATEGORIES)
    where = ["bt.account_id = {account_id:String}", f"bt.reporting_category IN ({categories})",
             *interval_conditions(ctx, "bt.created_at"),
             *filter_conditions(ctx, {"currency": "bt.currency"})]
    sql = f"""SELECT
    {select_list(ctx, 's_currency', 's_exponent')}
FROM (
    SELECT {local_day('bt.created_at')} AS s_day, toString(bt.currency) AS s_currency,
           any(bt.currency_exponent) AS s_exponent,
           countIf(bt.reporting_category = 'charge') AS s_charge_count,
           sumIf(bt.gross_minor, bt.reporting_category IN ('charge', 'charge_failure')) AS s_gross,
           sumIf(bt.gross_minor, bt.reporting_category IN ('refund', 'refund_failure')) AS s_refunds,
           sumIf(bt.gross_minor, bt.reporting_category IN ('dispute', 'dispute_reversal')) AS s_disputes,
           sum(if(bt.reporting_category = 'fee', bt.net_minor, -bt.fee_minor)) AS s_fees,
           sum(bt.net_minor) AS s_net
    FROM {ctx.marts}.fct_balance_transactions AS bt
    WHERE {' AND '.join(where)}
    GROUP BY s_day, s_currency
)
ORDER BY s_day, s_currency"""
    return sql, ctx.base_parameters()


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
