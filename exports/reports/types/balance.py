"""balance.summary and ending_balance_reconciliation.summary — balances at the interval's edges.

balance.summary, per currency (Stripe's rows):
  starting_balance = net of every transaction created before interval_start
  activity         = net of the interval's transactions except payouts and payout reversals
                     (base.is_activity: exactly balance_change_from_activity's rows)
  payouts          = net of the interval's payouts and payout reversals (negative: money sent out)
  ending_balance   = net of every transaction created before interval_end
so ending = starting + activity + payouts holds by construction, and with payouts shown as a
positive amount it reads ending = starting + activity − payouts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from exports.reports.types.activity import SUMMARY_COLUMNS, category_summary_sql
from exports.reports.types.base import (
    END, START, ColumnSpec, QueryContext, ReportType, account_grouping, code, filter_conditions,
    is_activity, is_payout, labelled_figures, money, select_list, total_row_figures,
)
from exports.reports.types.buckets import ledger_rows


def _day_label(ctx: QueryContext) -> tuple[str, str]:
    tz = ZoneInfo(ctx.timezone)
    assert ctx.interval_start is not None and ctx.interval_end is not None
    start_day = ctx.interval_start.astimezone(tz).date()
    # The ending balance is as of the end of the last day covered (interval_end is exclusive).
    last_day = (ctx.interval_end - timedelta(microseconds=1)).astimezone(tz).date()
    return start_day.isoformat(), last_day.isoformat()


def _balance_summary(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    assert ctx.interval_start is not None and ctx.interval_end is not None
    # Every row before interval_end, cut exactly at interval_start too (see buckets.ledger_rows).
    rows, row_params = ledger_rows(ctx, cuts=[ctx.interval_start, ctx.interval_end], open_start=True,
                                   where=tuple(filter_conditions(ctx, {"currency": "currency"})))
    account, by_account = account_grouping(ctx, "bt.account_id")
    sql = f"""SELECT
    {select_list(ctx, 's_currency', 's_exponent', account='s_account')}
FROM (
    SELECT {account}toString(bt.currency) AS s_currency,
           any(bt.currency_exponent) AS s_exponent,
           sumIf(bt.net_minor, bt.t < {START}) AS s_starting,
           sumIf(bt.net_minor, bt.t >= {START} AND {is_activity('bt.reporting_category')}) AS s_activity,
           sumIf(bt.net_minor, bt.t >= {START} AND {is_payout('bt.reporting_category')}) AS s_payouts,
           sum(bt.net_minor) AS s_ending
    FROM {rows} AS bt
    GROUP BY {by_account}s_currency
)
ARRAY JOIN [
    tuple(1, 'starting_balance', concat('Starting balance (', {{start_label:String}}, ')'), toInt64(s_starting)),
    tuple(2, 'activity', 'Activity', toInt64(s_activity)),
    tuple(3, 'payouts', 'Total payouts', toInt64(s_payouts)),
    tuple(4, 'ending_balance', concat('Ending balance (', {{end_label:String}}, ')'), toInt64(s_ending))
] AS r
ORDER BY s_currency, r.1"""
    params = {**ctx.base_parameters(), **row_params}
    params["start_label"], params["end_label"] = _day_label(ctx)
    return sql, params


BALANCE_ROWS = ("starting_balance", "activity", "payouts", "ending_balance")

BALANCE_SUMMARY_COLUMNS = (
    code("category",
         "starting_balance, activity, payouts or ending_balance.", "r.2", default=True),
    ColumnSpec("description", "string", "What the row is, with the date it refers to.", "r.3",
               default=True, user_text=False),
    ColumnSpec("net_amount", "money", "Net amount; payouts are negative (money sent to the bank).",
               money("r.4"), default=True),
    code("currency", "Three-letter ISO currency code, lowercase.", "s_currency",
         default=True),
)


def _ending_balance_reconciliation(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    # Not yet paid out as of interval_end: created before it and either unsettled or settled by a
    # payout that took effect at/after it. Payout transactions themselves are not "activity
    # awaiting payout" and each one cancels exactly the transactions it settled, so they are left
    # out; the total therefore equals the ending balance.
    assert ctx.interval_end is not None
    where = (is_activity("reporting_category"),
             f"(payout_effective_at IS NULL OR payout_effective_at >= {END})",
             *filter_conditions(ctx, {"currency": "currency"}))
    rows, params = ledger_rows(ctx, cuts=[ctx.interval_end], open_start=True, payouts=True, where=where)
    return category_summary_sql(ctx, f"FROM {rows} AS bt"), {**ctx.base_parameters(), **params}


REPORT_TYPES = (
    ReportType(
        id="balance.summary",
        title="Balance summary",
        description="Starting balance, activity, payouts and ending balance per currency; "
                    "ending = starting + activity + payouts (payouts are negative).",
        shape="summary",
        columns=BALANCE_SUMMARY_COLUMNS,
        build=_balance_summary,
        filters=frozenset({"currency"}),
        chart_label_column="category",
        chart_value_column="net_amount",
        totals=labelled_figures("category", "net_amount", BALANCE_ROWS),
        identity=("ending_balance", ("starting_balance", "activity", "payouts")),
        batches_accounts=True,
    ),
    ReportType(
        id="ending_balance_reconciliation.summary",
        title="Ending balance reconciliation",
        description="Transactions created before interval_end that had not been paid out as of "
                    "then, by reporting category and currency: what the ending balance is made of.",
        shape="summary",
        columns=SUMMARY_COLUMNS,
        totals=total_row_figures(),  # the rows include a `total` per currency
        build=_ending_balance_reconciliation,
        filters=frozenset({"currency"}),
        interval="end_only",
        chart_label_column="reporting_category",
        chart_value_column="net",
        batches_accounts=True,
    ),
)
