"""Reporting categories and fee types: ONE definition, shared by dbt and the report engine.

The definition is the dbt seed `dbt_project/seeds/reporting_categories.csv`. dbt loads it as the
`reporting_categories` table (the marts join it to classify fees and revenue); this module reads
the same file so Python query builders render the same rules into their SQL. A test checks that
the table dbt built equals this module's view of the file.

Per reporting category:
- fee_type: `processing` (fees charged on a transaction), `dispute` (dispute fees) or `platform`
  (standalone fee transactions);
- fee_amount: how much the account paid in fees on a row — `fee` (its fee) or `negated_net`
  (a standalone fee transaction carries the fee as its amount: -150 gross, 0 fee);
- revenue_component: the revenue.summary column its gross (or fee) goes to, '' if none;
- is_payout: money sent to (or returned from) the bank rather than activity.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

from exports.settings import REPO_ROOT

SEED_PATH = REPO_ROOT / "dbt_project" / "seeds" / "reporting_categories.csv"
FEE_TYPES: tuple[str, ...] = ("processing", "dispute", "platform")
REVENUE_COMPONENTS: tuple[str, ...] = ("gross", "refunds", "disputes", "fees")


@dataclass(frozen=True)
class ReportingCategory:
    name: str
    fee_type: str
    fee_amount: str  # fee | negated_net
    revenue_component: str  # '' | gross | refunds | disputes | fees
    is_payout: bool
    description: str


@cache
def categories() -> tuple[ReportingCategory, ...]:
    with open(SEED_PATH, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        item = ReportingCategory(
            name=row["reporting_category"], fee_type=row["fee_type"], fee_amount=row["fee_amount"],
            revenue_component=row["revenue_component"], is_payout=row["is_payout"] == "true",
            description=row["description"])
        if item.fee_type not in FEE_TYPES or item.fee_amount not in ("fee", "negated_net") or (
                item.revenue_component and item.revenue_component not in REVENUE_COMPONENTS):
            raise ValueError(f"{SEED_PATH}: bad row for {item.name}: {row}")
        out.append(item)
    return tuple(out)


def names() -> tuple[str, ...]:
    return tuple(c.name for c in categories())


def with_fee_amount(kind: str) -> tuple[str, ...]:
    return tuple(c.name for c in categories() if c.fee_amount == kind)


def payout_categories() -> tuple[str, ...]:
    return tuple(c.name for c in categories() if c.is_payout)


def revenue_categories(component: str | None = None) -> tuple[str, ...]:
    return tuple(c.name for c in categories()
                 if c.revenue_component and (component is None or c.revenue_component == component))


def sql_list(values: tuple[str, ...]) -> str:
    """A ClickHouse array/IN literal of category names (catalog constants, never request input)."""
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def fee_type_sql(category_expr: str) -> str:
    """ClickHouse expression: the fee type of a reporting category."""
    cats = categories()
    return (f"transform({category_expr}, {sql_list(tuple(c.name for c in cats))}, "
            f"{sql_list(tuple(c.fee_type for c in cats))}, 'processing')")


def fee_amount_sql(category_expr: str, fee_expr: str, net_expr: str) -> str:
    """ClickHouse expression: fees the account paid on a row (or a sum of rows of one category)."""
    return f"if({category_expr} IN {sql_list(with_fee_amount('negated_net'))}, -{net_expr}, {fee_expr})"
