"""The contract between the report catalog (which builds queries) and the writers (which stream
query results into files). Nothing here talks to ClickHouse.

A `ReportQuery` is a typed ClickHouse SELECT plus a description of its output columns:
- `sql` selects, in order, one expression per entry of `columns`, then two hidden trailing
  columns: `_currency` (String, lowercase ISO code; '' where a row has no money) and `_exponent`
  (UInt8, the currency's minor-unit exponent; 0 where no money). Writers never output them; they
  use them to format money and to total it per currency.
- A batch query (the same report for many accounts: exports.reports.batches) selects one more
  hidden column, ACCOUNT_COLUMN (String): the row's account.
- Values are typed, not formatted: money is Int64 minor units, timestamps are DateTime64/DateTime
  already converted to the report's timezone (or UTC for `*_utc` columns), dates are Date.
- Every user-supplied value is a server-side bound parameter (`{name:Type}` in `sql`, value in
  `parameters`); nothing from a request is formatted into the SQL text.
- Rows come out in the report's documented order (the SQL has its ORDER BY).
Writers format in ClickHouse where it keeps the path at engine speed (CSV), or from typed
blocks (XLSX, Parquet, PDF).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ACCOUNT_COLUMN = "_account"

ColumnKind = Literal["string", "money", "integer", "timestamp", "date", "boolean", "json"]
ReportShape = Literal["itemized", "summary"]


@dataclass(frozen=True)
class Column:
    name: str  # output header; Stripe's name where Stripe has the column
    kind: ColumnKind
    description: str = ""
    # True for columns whose value a spreadsheet should total (money columns are totalled per
    # currency in the manifest whatever this says).
    summable: bool = False
    # string/json columns: False for values the platform itself generates (IDs, currency codes,
    # categories, statuses), which no merchant or customer can make start with '='. CSV
    # neutralises spreadsheet formulas only in user text, so IDs stay byte-exact for matching.
    user_text: bool = True


@dataclass(frozen=True)
class Figure:
    """One figure of a report's totals: the sum, per currency, of money column `column` over
    the rows whose `label_column` holds `label` (every row when `label_column` is None)."""

    name: str  # key in Manifest.totals_minor, e.g. "net" or "ending_balance"
    column: str
    label_column: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class ReportQuery:
    report_type: str  # e.g. "balance_change_from_activity.itemized"
    title: str  # human title, e.g. "Balance change from activity (itemized)"
    shape: ReportShape
    sql: str
    parameters: dict[str, Any]
    columns: tuple[Column, ...]
    # Context shown in PDF headers and recorded in manifests.
    account_id: str
    account_name: str = ""
    timezone: str = "UTC"
    interval_start: datetime | None = None  # inclusive, aware
    interval_end: datetime | None = None  # exclusive, aware
    filters: dict[str, Any] = field(default_factory=dict)
    # For summary PDFs: which column holds the category label and which holds the value to chart.
    chart_label_column: str | None = None
    chart_value_column: str | None = None
    # What the manifest's totals are. None: every money column summed over every row (itemized
    # reports, and summaries whose rows partition the data, e.g. per day). Otherwise the report's
    # own figures (a category summary's `total` rows; a balance summary's starting balance,
    # activity, payouts and ending balance): a sum over rows that are balances, flows or already
    # totals means nothing, so it is never computed. () = no totals.
    totals: tuple[Figure, ...] | None = None
    # (result label, addend labels): per currency, the chart_value_column of the row labelled
    # `result` must equal the sum over the addend rows, e.g. ending = starting + activity + payouts.
    # Writers that render for people show the identity and whether it holds.
    identity: tuple[str, tuple[str, ...]] | None = None
    # For documents people read (PDF): the locale numbers and dates are written in (Babel/CLDR
    # name), when the warehouse data was last updated (shown as "data as of"), and supporting
    # queries by role, e.g. "activity_by_category" for the balance summary's waterfall.
    locale: str = "en_US"
    data_as_of: datetime | None = None
    companions: dict[str, "ReportQuery"] = field(default_factory=dict)
    # An upper bound of the rows, when known (itemized reports: the account's size in the marts);
    # writers use it to pick a path for small results, never as the row count.
    rows_bound: int | None = None

    def parameters_key(self, *, except_account: bool = False) -> tuple[tuple[str, str], ...]:
        """The bound parameters as a sorted, hashable tuple (for cache keys); `except_account`:
        without the account, i.e. what the same report's queries for every account share."""
        return tuple(sorted((k, repr(v)) for k, v in (self.parameters or {}).items()
                            if not (except_account and k == "account_id")))

    @property
    def money_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "money"]

    @property
    def totals_are_additive(self) -> bool:
        """Every figure is a column summed over all rows (writers may show grand totals under
        the columns)."""
        return all(f.label_column is None for f in self.figures)

    @property
    def figures(self) -> tuple[Figure, ...]:
        """The totals as figures: the declared ones, or one per money column."""
        if self.totals is not None:
            return self.totals
        return tuple(Figure(c.name, c.name) for c in self.columns if c.kind == "money")


@dataclass
class Manifest:
    """What a caller needs to trust and reconcile a file without opening it."""

    report_type: str
    format: str  # csv | xlsx | pdf | parquet
    file_name: str
    row_count: int  # data rows (header excluded)
    byte_size: int
    sha256: str
    # figure -> currency -> total in minor units, computed from the same rows as the file: the
    # money columns' sums for itemized reports, the report's own figures for summaries (see
    # ReportQuery.totals).
    totals_minor: dict[str, dict[str, int]]
    columns: list[str]
    compressed: str | None = None  # "gzip" when the CSV is gzipped
    sheets: int | None = None  # XLSX: number of data sheets
    # currency -> minor-unit exponent, for every currency in totals_minor (from the rows themselves),
    # so a caller can format the totals without a currency table of its own.
    currency_exponents: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_type": self.report_type, "format": self.format, "file_name": self.file_name,
            "row_count": self.row_count, "byte_size": self.byte_size, "sha256": self.sha256,
            "totals_minor": self.totals_minor, "columns": self.columns,
            "compressed": self.compressed, "sheets": self.sheets,
            "currency_exponents": self.currency_exponents, **({"extra": self.extra} if self.extra else {}),
        }
