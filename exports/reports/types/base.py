"""What a report type is, and the SQL pieces every query builder shares.

A type declares its columns (each with the ClickHouse expression that produces it), which of them
are defaults, which filters it accepts, and a `build` function that turns a `QueryContext` into the
FROM/WHERE/ORDER BY around the selected columns. Everything a request supplies reaches the SQL as
a bound parameter; only names from the catalog itself (column aliases, the marts database from
settings) are written into the SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from exports import reporting_categories
from exports.reports.query import Column, ColumnKind, ReportShape

IntervalRule = Literal["required", "end_only", "required_unless_payout"]

REPORTING_CATEGORIES: tuple[str, ...] = reporting_categories.names()  # the dbt seed's rows
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

    @property
    def column(self) -> Column:
        return Column(self.name, self.kind, self.description, self.summable, self.user_text)


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

    def base_parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"account_id": self.account_id, "tz": self.timezone}
        if self.interval_start is not None:
            params["start_us"] = to_unix_micros(self.interval_start)
        if self.interval_end is not None:
            params["end_us"] = to_unix_micros(self.interval_end)
        for name, value in self.filters.items():
            params[f"f_{name}"] = list(value) if isinstance(value, (list, tuple)) else value
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
    totals_are_additive: bool = True  # see ReportQuery
    identity: tuple[str, tuple[str, ...]] | None = None  # see ReportQuery
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def default_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.default]

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)


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


def select_list(ctx: QueryContext, currency_expr: str, exponent_expr: str) -> str:
    parts = [f"{spec.sql} AS `{spec.name}`" for spec in ctx.columns]
    parts.append(f"{text(currency_expr)} AS _currency")
    parts.append(f"toUInt8({exponent_expr}) AS _exponent")
    return ",\n    ".join(parts)


def money(expr: str) -> str:
    return f"toInt64({expr})"
