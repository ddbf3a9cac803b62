"""payouts.itemized / payouts.summary — the payout transactions (payouts and their reversals)
that took effect in the interval. Amounts carry the balance's sign: a payout is negative."""

from __future__ import annotations

from typing import Any

from exports.reports.types.activity import LEDGER_FILTER_COLUMNS, SUMMARY_COLUMNS, category_summary_sql
from exports.reports.types.base import (
    PAYOUT_CATEGORIES, ColumnSpec, QueryContext, ReportType, code, filter_conditions,
    interval_conditions, is_payout, local_ts, money, select_list, selects_from, text,
    total_row_figures, utc_ts,
)
from exports.reports.types.buckets import ledger_rows

_JOINED = "po.payout_id != ''"  # left join: ClickHouse fills a missing payout with defaults

COLUMNS = (
    code("payout_id", "The payout (po_…).", text("bt.source_id"), default=True),
    # Stripe's default is the UTC column (importers read it by position and by name).
    ColumnSpec("effective_at_utc", "timestamp", "When the payout took effect, in UTC.",
               utc_ts("bt.created_at"), default=True),
    ColumnSpec("effective_at", "timestamp", "When the payout took effect, in the report timezone.",
               local_ts("bt.created_at")),
    code("currency", "Three-letter ISO currency code, lowercase.", text("bt.currency"),
         default=True),
    ColumnSpec("gross", "money", "Gross balance impact (negative for a payout).",
               money("bt.gross_minor"), default=True, summable=True),
    ColumnSpec("fee", "money", "Payout fee.", money("bt.fee_minor"), default=True, summable=True),
    ColumnSpec("net", "money", "Net balance impact (negative for a payout).", money("bt.net_minor"),
               default=True, summable=True),
    code("reporting_category", "payout or payout_reversal.",
         text("bt.reporting_category"), default=True),
    code("balance_transaction_id", "The payout's balance transaction.",
         text("bt.balance_transaction_id"), default=True),
    ColumnSpec("description", "string", "Description of the balance transaction.",
               text("bt.description"), default=True),
    ColumnSpec("payout_expected_arrival_date", "date", "When the payout is expected at the bank.",
               f"if({_JOINED}, toDate(po.arrival_date), NULL)", default=True),
    code("payout_status", "paid, pending, in_transit, canceled or failed.",
         text("po.status"), default=True),
    ColumnSpec("payout_reversed_at_utc", "timestamp",
               "When the payout was reversed, in UTC (empty unless it was).",
               f"if({_JOINED} AND po.reversed_at IS NOT NULL, {utc_ts('po.reversed_at')}, NULL)"),
    ColumnSpec("payout_reversed_at", "timestamp",
               "When the payout was reversed, in the report timezone (empty unless it was).",
               f"if({_JOINED} AND po.reversed_at IS NOT NULL, {local_ts('po.reversed_at')}, NULL)"),
    code("payout_type", "bank_account or card.", text("po.type")),
    ColumnSpec("payout_description", "string", "Description of the payout.",
               text("po.description")),
    code("payout_destination_id", "The bank account or card paid to.",
         text("po.destination_id")),
)


def _where(ctx: QueryContext) -> list[str]:
    conditions = ["bt.account_id = {account_id:String}",
                  is_payout("bt.reporting_category"),
                  *interval_conditions(ctx, "bt.created_at"),
                  *filter_conditions(ctx, {"currency": "bt.currency",
                                           "reporting_category": "bt.reporting_category",
                                           "payout": "bt.source_id"})]
    return conditions


def _itemized(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    payout_join = f"""
LEFT JOIN (SELECT * FROM {ctx.marts}.fct_payouts WHERE account_id = {{account_id:String}}) AS po
    ON po.payout_id = bt.source_id""" if selects_from(ctx, "po") else ""
    sql = f"""SELECT
    {select_list(ctx, 'bt.currency', 'bt.currency_exponent')}
FROM {ctx.marts}.fct_balance_transactions AS bt{payout_join}
WHERE {' AND '.join(_where(ctx))}
ORDER BY bt.created_at, bt.balance_transaction_id"""
    return sql, ctx.base_parameters()


def _summary(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    # One payout (the `payout` filter is a source_id) is a fact lookup; the pre-aggregates hold
    # categories, not ids.
    assert ctx.interval_start is not None and ctx.interval_end is not None
    where = (is_payout("reporting_category"),
             *filter_conditions(ctx, {**LEDGER_FILTER_COLUMNS, "payout": "source_id"}))
    rows, params = ledger_rows(ctx, cuts=[ctx.interval_start, ctx.interval_end],
                               fact_only="payout" in ctx.filters, where=where)
    return category_summary_sql(ctx, f"FROM {rows} AS bt"), {**ctx.base_parameters(), **params}


_FILTERS = frozenset({"currency", "reporting_category", "payout"})

REPORT_TYPES = (
    ReportType(
        id="payouts.itemized",
        title="Payouts (itemized)",
        description="Every payout (and payout reversal) that took effect in the interval, with "
                    "its expected arrival date and status.",
        shape="itemized",
        columns=COLUMNS,
        build=_itemized,
        filters=_FILTERS,
        reporting_categories=PAYOUT_CATEGORIES,
    ),
    ReportType(
        id="payouts.summary",
        title="Payouts (summary)",
        description="Payouts and payout reversals that took effect in the interval, totalled by "
                    "reporting category and currency.",
        shape="summary",
        columns=SUMMARY_COLUMNS,
        totals=total_row_figures(),  # the rows include a `total` per currency
        build=_summary,
        filters=_FILTERS,
        reporting_categories=PAYOUT_CATEGORIES,
        chart_label_column="reporting_category",
        chart_value_column="net",
        batches_accounts=True,
    ),
)
