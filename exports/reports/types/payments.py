"""payments.itemized — one row per payment (charge) created in the interval."""

from __future__ import annotations

from typing import Any

from exports.reports.types.base import (
    PAYMENT_STATUSES, ColumnSpec, QueryContext, ReportType, code, filter_conditions,
    interval_conditions, local_ts, money, select_list, text, utc_ts,
)

COLUMNS = (
    code("payment_id", "Unique ID of the payment (ch_…).", text("p.payment_id"),
         default=True),
    ColumnSpec("created_utc", "timestamp", "When the payment was created, in UTC.",
               utc_ts("p.created_at")),
    ColumnSpec("created", "timestamp", "When the payment was created, in the report timezone.",
               local_ts("p.created_at"), default=True),
    ColumnSpec("amount", "money", "Amount charged.", money("ifNull(p.amount_minor, 0)"), default=True,
               summable=True),
    ColumnSpec("amount_refunded", "money", "Amount refunded so far.",
               money("ifNull(p.amount_refunded_minor, 0)"), default=True, summable=True),
    ColumnSpec("amount_disputed", "money", "Amount under dispute or lost to disputes.",
               money("ifNull(p.amount_disputed_minor, 0)"), summable=True),
    code("currency", "Three-letter ISO currency code, lowercase.", text("p.currency"),
         default=True),
    code("status", "succeeded, failed, pending, refunded or disputed.",
         text("p.status"), default=True),
    code("customer_id", "The paying customer (cus_…).", text("p.customer_id"),
         default=True),
    ColumnSpec("customer_email", "string", "That customer's email.", text("p.customer_email"),
               default=True),
    ColumnSpec("customer_name", "string", "That customer's name.", text("p.customer_name")),
    code("payment_method_type", "card, sepa_debit, …", text("p.payment_method_type"),
         default=True),
    code("card_brand", "Card brand, for card payments.", text("p.card_brand"),
         default=True),
    code("card_funding", "Card funding (credit, debit, prepaid).",
         text("p.card_funding")),
    code("card_country", "Card issuing country.", text("p.card_country")),
    ColumnSpec("description", "string", "Description of the payment.", text("p.description"),
               default=True),
    ColumnSpec("statement_descriptor", "string", "Statement descriptor.",
               text("p.statement_descriptor")),
    code("failure_code", "Why a failed payment failed.", text("p.failure_code")),
    code("payment_intent_id", "Payment intent (pi_…).", text("p.payment_intent_id")),
    code("invoice_id", "The invoice the payment paid (in_…), if any.", text("p.invoice_id")),
    ColumnSpec("fee", "money", "Processing fee of the payment's charge transaction.",
               money("ifNull(p.fee_minor, 0)"), default=True, summable=True),
    ColumnSpec("net", "money", "Amount minus fee, as credited to the balance.",
               money("ifNull(p.net_minor, 0)"), default=True, summable=True),
    ColumnSpec("payment_metadata", "json", "Metadata of the payment (JSON).",
               text("p.payment_metadata")),
)


def _itemized(ctx: QueryContext) -> tuple[str, dict[str, Any]]:
    where = ["p.account_id = {account_id:String}", *interval_conditions(ctx, "p.created_at"),
             *filter_conditions(ctx, {"currency": "p.currency", "status": "p.status",
                                      "customer": "p.customer_id"})]
    sql = f"""SELECT
    {select_list(ctx, 'p.currency', 'p.currency_exponent')}
FROM {ctx.marts}.fct_payments AS p
WHERE {' AND '.join(where)}
ORDER BY p.created_at, p.payment_id"""
    return sql, ctx.base_parameters()


REPORT_TYPES = (
    ReportType(
        id="payments.itemized",
        title="Payments (itemized)",
        description="Every payment created in the interval with its amount, refunds, status, "
                    "customer, payment method, fee and net.",
        shape="itemized",
        columns=COLUMNS,
        build=_itemized,
        filters=frozenset({"currency", "status", "customer"}),
        statuses=PAYMENT_STATUSES,
    ),
)
