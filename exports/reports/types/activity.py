"""balance_change_from_activity.* — every balance transaction in the interval except payouts and
their reversals (Stripe's "transaction history"; payouts are their own section, payouts.*),
itemized or summarised by reporting category. Its total net is balance.summary's activity."""

from __future__ import annotations

from typing import Any

from exports.reports.types.base import (
    ACTIVITY_CATEGORIES, ColumnSpec, QueryContext, ReportType, account_grouping, account_is, code,
    filter_conditions, interval_conditions, is_activity, local_ts, money, select_list,
    selects_from, text, total_row_figures, utc_ts,
)
from exports.reports.types.buckets import ledger_rows

BT_FILTER_COLUMNS = {"currency": "bt.currency", "reporting_category": "bt.reporting_category"}
# The same filters on exports.reports.types.buckets.ledger_rows' columns (summaries).
LEDGER_FILTER_COLUMNS = {"currency": "currency", "reporting_category": "reporting_category"}


def _optional_ts(expr: str, present: str, local: bool) -> str:
    shown = local_ts(expr) if local else utc_ts(expr)
    return f"if({present}, {shown}, NULL)"


def balance_transaction_columns(*, payout_alias: str = "po", payout_always_joined: bool = False,
                                payout_first: bool = False) -> tuple[ColumnSpec, ...]:
    """Stripe's balance-transaction columns over `bt` (fct_balance_transactions) joined with the
    settling payout as `po`. In the reconciliation report the payout columns come first and the
    join is inner; in the activity report the join is a left join, so payout fields of unsettled
    transactions must be NULL rather than ClickHouse's join defaults (1970-01-01)."""
    settled = "1" if payout_always_joined else "ifNull(bt.automatic_payout_id, '') != ''"
    payout = (
        code("automatic_payout_id", "The automatic payout that settled this transaction.",
             text("bt.automatic_payout_id"), default=payout_first),
        ColumnSpec("automatic_payout_effective_at_utc", "timestamp",
                   "When that payout took effect, in UTC.",
                   _optional_ts(f"{payout_alias}.created_at", settled, local=False)),
        ColumnSpec("automatic_payout_effective_at", "timestamp",
                   "When that payout took effect, in the report timezone.",
                   _optional_ts(f"{payout_alias}.created_at", settled, local=True), default=payout_first),
    )
    core = (
        code("balance_transaction_id", "Unique ID of the balance transaction.",
             text("bt.balance_transaction_id"), default=True),
        # Stripe's defaults are the UTC columns (importers read them by position and by name).
        ColumnSpec("created_utc", "timestamp", "When the transaction was created, in UTC.",
                   utc_ts("bt.created_at"), default=True),
        ColumnSpec("created", "timestamp", "When the transaction was created, in the report timezone.",
                   local_ts("bt.created_at")),
        ColumnSpec("available_on_utc", "timestamp", "When the funds became available, in UTC.",
                   utc_ts("bt.available_on"), default=True),
        ColumnSpec("available_on", "timestamp",
                   "When the funds became available, in the report timezone.",
                   local_ts("bt.available_on")),
        code("currency", "Three-letter ISO currency code, lowercase.",
             text("bt.currency"), default=True),
        ColumnSpec("gross", "money", "Gross amount of the transaction.", money("bt.gross_minor"),
                   default=True, summable=True),
        ColumnSpec("fee", "money", "Fees paid for the transaction.", money("bt.fee_minor"),
                   default=True, summable=True),
        ColumnSpec("net", "money", "Net balance impact: gross minus fee.", money("bt.net_minor"),
                   default=True, summable=True),
        code("reporting_category", "Stripe's reporting category of the transaction.",
             text("bt.reporting_category"), default=True),
        code("source_id", "The object that caused the transaction (ch_, re_, dp_, po_).",
             text("bt.source_id")),
        ColumnSpec("description", "string", "Description of the transaction.",
                   text("bt.description"), default=True),
        # Not summable: a charge's and a refund's amounts are both positive.
        ColumnSpec("customer_facing_amount", "money",
                   "For charges and refunds (and their disputes), the amount of the original charge "
                   "or refund as the customer saw it, in customer_facing_currency.",
                   money("if(ifNull(bt.customer_facing_currency, '') = '', NULL, "
                         "bt.customer_facing_amount_minor)")),
        code("customer_facing_currency", "Currency of customer_facing_amount.",
             text("bt.customer_facing_currency")),
    )
    customer_and_charge = (
        code("customer_id", "Customer of the related charge.", text("bt.customer_id")),
        ColumnSpec("customer_email", "string", "That customer's email.", text("bt.customer_email")),
        ColumnSpec("customer_name", "string", "That customer's name.", text("bt.customer_name")),
        ColumnSpec("customer_description", "string", "That customer's description.",
                   text("bt.customer_description")),
        code("charge_id", "The related charge (the refunded/disputed one for refunds "
             "and disputes).", text("bt.charge_id")),
        code("payment_intent_id", "Payment intent of the related charge.",
             text("bt.payment_intent_id")),
        ColumnSpec("charge_created_utc", "timestamp", "When the related charge was created, in UTC.",
                   utc_ts("bt.charge_created_at")),
        ColumnSpec("charge_created", "timestamp",
                   "When the related charge was created, in the report timezone.",
                   local_ts("bt.charge_created_at")),
        code("invoice_id", "The invoice the related charge paid (in_…), if any.",
             text("bt.invoice_id")),
        code("payment_method_type", "Payment method of the related charge.",
             text("bt.payment_method_type")),
        code("card_brand", "Card brand, for card payments.", text("bt.card_brand")),
        code("card_funding", "Card funding (credit, debit, prepaid).",
             text("bt.card_funding")),
        code("card_country", "Card issuing country.", text("bt.card_country")),
        ColumnSpec("statement_descriptor", "string", "Statement descriptor of the related charge.",
                   text("bt.statement_descriptor")),
        code("dispute_reason", "Reason of the related dispute.",
             text("bt.dispute_reason")),
        ColumnSpec("payment_metadata", "json", "Metadata of the related payment (JSON).",
                   text("bt.payment_metadata")),
    )
    if payout_first:
        return payout + core + customer_and_charge
    return core + payout + customer_and_charge


def _activity_where(ctx: QueryContext) -> list[str]:
    return [account_is(ctx, "bt.account_id"), is_activity("bt.reporting_category"),
            *interval_conditions(ctx, "bt.created_at"), *filter_conditions(ctx, BT_FILTER_COLUMNS)]


def _itemized(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    where = _activity_where(ctx)
    # The settling payout only for its columns (not among the defaults).
    payout_join = f"""
LEFT JOIN (SELECT payout_id, created_at FROM {ctx.marts}.fct_payouts
           WHERE {account_is(ctx, "account_id")}) AS po
    ON po.payout_id = bt.automatic_payout_id""" if selects_from(ctx, "po") else ""
    sql = f"""SELECT
    {select_list(ctx, 'bt.currency', 'bt.currency_exponent', account='bt.account_id')}
FROM {ctx.marts}.fct_balance_transactions AS bt{payout_join}
WHERE {' AND '.join(where)}
ORDER BY bt.created_at, bt.balance_transaction_id"""
    return sql, ctx.base_parameters()


SUMMARY_COLUMNS = (
    code("reporting_category",
         "Reporting category; `total` is the sum of the currency's categories.",
         "s_category", default=True),
    code("currency", "Three-letter ISO currency code, lowercase.", "s_currency",
         default=True),
    ColumnSpec("count", "integer", "Number of transactions.", "toInt64(s_count)", default=True),
    ColumnSpec("gross", "money", "Gross amount.", money("s_gross"), default=True),
    ColumnSpec("fee", "money", "Fees.", money("s_fee"), default=True),
    ColumnSpec("net", "money", "Net balance impact.", money("s_net"), default=True),
)


def category_summary_sql(ctx: QueryContext, from_where: str) -> str:
    """Per currency: one row per reporting category, then a `total` row (Stripe's layout).
    `from_where` is the FROM ... [WHERE ...] selecting `bt` rows of
    exports.reports.types.buckets.ledger_rows (groups of transactions, not single ones); it is
    read once, the total row coming from the same scan (GROUPING SETS; the category of a
    currency's total grouping is the empty default, never a category name). A batch query
    (ctx.account_ids) groups by each row's `bt.account_id` as well."""
    account, by_account = account_grouping(ctx, "bt.account_id")
    return f"""SELECT
    {select_list(ctx, 's_currency', 's_exponent', account='s_account')}
FROM (
    SELECT if(s_is_total, 'total', s_grouped_category) AS s_category, *
    FROM (
        SELECT {account}toString(bt.reporting_category) AS s_grouped_category,
               toString(bt.currency) AS s_currency, s_grouped_category = '' AS s_is_total,
               any(bt.currency_exponent) AS s_exponent, sum(bt.transaction_count) AS s_count,
               sum(bt.gross_minor) AS s_gross, sum(bt.fee_minor) AS s_fee, sum(bt.net_minor) AS s_net
        {from_where}
        GROUP BY GROUPING SETS (({by_account}s_currency, s_grouped_category), ({by_account}s_currency))
    )
)
ORDER BY s_currency, s_is_total, s_category"""


def _summary(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    assert ctx.interval_start is not None and ctx.interval_end is not None
    where = (is_activity("reporting_category"), *filter_conditions(ctx, LEDGER_FILTER_COLUMNS))
    rows, params = ledger_rows(ctx, cuts=[ctx.interval_start, ctx.interval_end], where=where)
    return category_summary_sql(ctx, f"FROM {rows} AS bt"), {**ctx.base_parameters(), **params}


REPORT_TYPES = (
    ReportType(
        id="balance_change_from_activity.itemized",
        title="Balance change from activity (itemized)",
        description="Every balance transaction created in the interval except payouts (their "
                    "own report, payouts.itemized): charges, refunds, disputes, fees and "
                    "adjustments, with gross, fee and net.",
        shape="itemized",
        columns=balance_transaction_columns(),
        build=_itemized,
        filters=frozenset({"currency", "reporting_category"}),
        reporting_categories=ACTIVITY_CATEGORIES,
        batches_accounts=True,
    ),
    ReportType(
        id="balance_change_from_activity.summary",
        title="Balance change from activity (summary)",
        description="Balance transactions created in the interval except payouts, totalled by "
                    "reporting category and currency, with a total row per currency.",
        shape="summary",
        columns=SUMMARY_COLUMNS,
        totals=total_row_figures(),  # the rows include a `total` per currency
        build=_summary,
        filters=frozenset({"currency", "reporting_category"}),
        reporting_categories=ACTIVITY_CATEGORIES,
        chart_label_column="reporting_category",
        chart_value_column="net",
        batches_accounts=True,
    ),
)
