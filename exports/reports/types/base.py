"""What a report type is, and the SQL pieces every query builder shares.

A type declares its columns (each with the ClickHouse expression that produces it), which of them
are defaults, which filters it accepts, and a `build` function that turns a `QueryContext` into the
FROM/WHERE/ORDER BY around the selected columns. Everything a request supplies reaches the SQL as
a bound parameter; only names from the catalog itself (column aliases, the marts database from
settings) are written into the SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from exports import reporting_categories
from exports.reports.query import ACCOUNT_COLUMN, Column, ColumnKind, Figure, ReportShape

IntervalRule = Literal["required", "end_only", "required_unless_payout"]

REPORTING_CATEGORIES: tuple[str, ...] = reporting_categories.names()  # the dbt seed's rows
# Stripe's split of a balance: payouts (and their reversals) are their own section; everything
# else is "activity". balance_change_from_activity.* and balance.summary's activity row use the
# same condition, so the activity report's total net equals the balance summary's activity.
PAYOUT_CATEGORIES: tuple[str, ...] = reporting_categories.payout_categories()
ACTIVITY_CATEGORIES: tuple[str, ...] = tuple(c for c in REPORTING_CATEGORIES
                                             if c not in PAYOUT_CATEGORIES)


def is_payout(category_sql: str) -> str:
    """SQL: the row is a payout or payout reversal (its own section in Stripe's reports)."""
    return f"{category_sql} IN ({', '.join(repr(c) for c in PAYOUT_CATEGORIES)})"


def is_activity(category_sql: str) -> str:
    """SQL: the row is balance activity (anything but payouts and their reversals)."""
    return f"NOT ({is_payout(category_sql)})"


PAYMENT_STATUSES: tuple[str, ...] = ("succeeded", "failed", "pending", "refunded", "disputed")
FILTERS: tuple[str, ...] = ("currency", "reporting_category", "status", "payout", "customer")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    description: str
    sql: str  # ClickHouse expression over the builder's FROM clause
    default: bool = False
    summable: bool = False
    user_text: bool = True  # see Column; `code()` builds the platform-generated ones
    # Columns named by the request (payment_metadata[key]) get a catalog-made SQL alias and
    # bind the key as a parameter, so nothing a request says is written into the SQL text.
    alias: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def column(self) -> Column:
        return Column(self.name, self.kind, self.description, self.summable, self.user_text)

    @property
    def sql_alias(self) -> str:
        return self.alias or self.name


# Stripe's `payment_metadata[key]` columns: one metadata value of the related payment each.
# Stripe's metadata keys are at most 40 characters and cannot contain square brackets.
METADATA_SOURCE_COLUMN = "payment_metadata"
METADATA_COLUMN = re.compile(r"^payment_metadata\[([^\[\]\x00-\x1f]{1,40})\]$")


def metadata_column(name: str, source: ColumnSpec) -> ColumnSpec | None:
    """The `payment_metadata[key]` column over the type's JSON `payment_metadata` column (its
    value as text; '' when the payment has no such key), or None when `name` is not one."""
    match = METADATA_COLUMN.match(name)
    if match is None:
        return None
    key = match.group(1)
    token = key.encode().hex()
    return ColumnSpec(name, "string", f"The related payment's metadata value for {key!r}.",
                      f"JSONExtractString({source.sql}, {{meta_{token}:String}})",
                      alias=f"payment_metadata__{token}", parameters=((f"meta_{token}", key),))


def code(name: str, description: str, sql: str, *, default: bool = False) -> ColumnSpec:
    """A string the platform generates (an ID, currency code, category or status), never text a
    merchant or customer typed."""
    return ColumnSpec(name, "string", description, sql, default=default, user_text=False)


@dataclass(frozen=True)
class QueryContext:
    """Everything a builder needs, already validated."""

    marts: str  # marts database name (from settings, not from the request)
    account_id: str
    timezone: str
    interval_start: datetime | None  # aware
    interval_end: datetime | None  # aware
    filters: dict[str, Any]
    columns: tuple[ColumnSpec, ...]  # selected, in output order
    # Summaries read the 15-minute pre-aggregates (True) or scan the fact (False: the baseline
    # they must equal, see exports/reports/types/buckets.py).
    preaggregated: bool = True
    # A batch (types with `batches_accounts`): the rows of all these accounts in one query, each
    # row's account in ACCOUNT_COLUMN; () = the one account_id. See exports.reports.batches.
    account_ids: tuple[str, ...] = ()

    def base_parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"account_id": self.account_id, "tz": self.timezone}
        if self.account_ids:
            params["account_ids"] = list(self.account_ids)
        if self.interval_start is not None:
            params["start_us"] = to_unix_micros(self.interval_start)
        if self.interval_end is not None:
            params["end_us"] = to_unix_micros(self.interval_end)
        for name, value in self.filters.items():
            params[f"f_{name}"] = list(value) if isinstance(value, (list, tuple)) else value
        for spec in self.columns:
            params.update(spec.parameters)
        return params


@dataclass(frozen=True)
class ReportType:
    id: str
    title: str
    description: str
    shape: ReportShape
    columns: tuple[ColumnSpec, ...]
    build: Callable[[QueryContext], tuple[str, dict[str, Any]]]  # -> (sql, parameters)
    filters: frozenset[str] = frozenset()
    interval: IntervalRule = "required"
    reporting_categories: tuple[str, ...] = REPORTING_CATEGORIES
    statuses: tuple[str, ...] = ()
    chart_label_column: str | None = None
    chart_value_column: str | None = None
    # The manifest's totals (see ReportQuery.totals): None = every money column summed over
    # every row; summaries whose rows are totals or balances declare their figures.
    totals: tuple[Figure, ...] | None = None
    identity: tuple[str, tuple[str, ...]] | None = None  # see ReportQuery
    extra: dict[str, Any] = field(default_factory=dict)
    # `build` honours QueryContext.account_ids: every account condition is `account_is` and the
    # select list names the row's account (select_list's `account`), so one query answers a
    # batch of accounts with each account's rows exactly as its own query gives them, in the
    # same order (the ORDER BY must be a total order within an account).
    batches_accounts: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def default_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.default]

    @property
    def totals_are_additive(self) -> bool:
        return self.totals is None

    @property
    def has_metadata_columns(self) -> bool:
        return METADATA_SOURCE_COLUMN in self.column_names

    def column(self, name: str) -> ColumnSpec:
        """A catalog column, or a `payment_metadata[key]` column of a type with metadata."""
        for spec in self.columns:
            if spec.name == name:
                return spec
        if self.has_metadata_columns:
            found = metadata_column(name, self.column(METADATA_SOURCE_COLUMN))
            if found is not None:
                return found
        raise KeyError(name)

    def has_column(self, name: str) -> bool:
        try:
            self.column(name)
        except KeyError:
            return False
        return True


def total_row_figures(label_column: str = "reporting_category", label: str = "total",
                      columns: tuple[str, ...] = ("gross", "fee", "net")) -> tuple[Figure, ...]:
    """A category summary's totals: its `total` rows (one per currency), column by column."""
    return tuple(Figure(c, c, label_column, label) for c in columns)


def labelled_figures(label_column: str, value_column: str,
                     labels: tuple[str, ...]) -> tuple[Figure, ...]:
    """One figure per row label, e.g. a balance summary's starting_balance ... ending_balance."""
    return tuple(Figure(label, value_column, label_column, label) for label in labels)


def to_unix_micros(value: datetime) -> int:
    # Integer arithmetic on the aware instant: exact, no float rounding of microseconds.
    epoch = datetime.fromtimestamp(0, tz=value.tzinfo)
    diff = value - epoch
    return (diff.days * 86_400 + diff.seconds) * 1_000_000 + diff.microseconds


# ---- SQL fragments -------------------------------------------------------------------------

START = "fromUnixTimestamp64Micro({start_us:Int64}, 'UTC')"
END = "fromUnixTimestamp64Micro({end_us:Int64}, 'UTC')"


def local_ts(expr: str) -> str:
    """A UTC timestamp shown in the report timezone, to the second like Stripe's files.
    DateTime64(0, tz) rather than DateTime(tz): the latter loses its zone on the way through
    clickhouse-connect on chdb and comes back as UTC wall time."""
    return f"toDateTime64({expr}, 0, {{tz:String}})"


def utc_ts(expr: str) -> str:
    return f"toDateTime64({expr}, 0, 'UTC')"


def local_day(expr: str) -> str:
    return f"toDate({expr}, {{tz:String}})"


def text(expr: str) -> str:
    """Strings never come out NULL: Stripe's files have empty cells, not \\N."""
    return f"ifNull(toString({expr}), '')"


def interval_conditions(ctx: QueryContext, expr: str) -> list[str]:
    out = []
    if ctx.interval_start is not None:
        out.append(f"{expr} >= {START}")
    if ctx.interval_end is not None:
        out.append(f"{expr} < {END}")
    return out


def filter_conditions(ctx: QueryContext, columns: dict[str, str]) -> list[str]:
    """WHERE terms for those of the request's filters that `columns` maps (filter name -> SQL
    column). A builder maps every filter its type accepts, possibly across several calls (e.g.
    `payout` on the payout subquery, `currency` on the transactions)."""
    out = []
    for name, column in columns.items():
        if name not in ctx.filters:
            continue
        if isinstance(ctx.filters[name], (list, tuple)):
            out.append(f"{column} IN {{f_{name}:Array(String)}}")
        else:
            out.append(f"{column} = {{f_{name}:String}}")
    return out


def selects_from(ctx: QueryContext, alias: str) -> bool:
    """A selected column reads the joined table `alias` (e.g. `po`). A join nothing reads still
    costs the engine its planning and hash table (~5-7 ms of a small report's ~30 ms)."""
    reference = re.compile(rf"\b{re.escape(alias)}\.")
    return any(reference.search(spec.sql) for spec in ctx.columns)


def account_is(ctx: QueryContext, column: str) -> str:
    """SQL: `column` is the report's account, or one of the batch's accounts."""
    if ctx.account_ids:
        return f"{column} IN {{account_ids:Array(String)}}"
    return f"{column} = {{account_id:String}}"


def account_grouping(ctx: QueryContext, column: str) -> tuple[str, str]:
    """A summary's grouping by the rows' account in a batch query: (its select item, its
    GROUP BY item), each followed by ', ', the key named `s_account` (select_list's `account`);
    ('', '') for one account."""
    if not ctx.account_ids:
        return "", ""
    return f"{column} AS s_account, ", "s_account, "


def select_list(ctx: QueryContext, currency_expr: str, exponent_expr: str,
                account: str | None = None) -> str:
    """The selected columns, then the hidden currency and exponent, then (a batch query only)
    ACCOUNT_COLUMN from the expression `account`."""
    parts = [f"{spec.sql} AS `{spec.sql_alias}`" for spec in ctx.columns]
    parts.append(f"{text(currency_expr)} AS _currency")
    parts.append(f"toUInt8({exponent_expr}) AS _exponent")
    if ctx.account_ids:
        if account is None:
            raise ValueError("a batch query needs the expression of its rows' account")
        parts.append(f"{account} AS {ACCOUNT_COLUMN}")
    return ",\n    ".join(parts)


def money(expr: str) -> str:
    return f"toInt64({expr})"
