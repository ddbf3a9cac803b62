"""The formatting rules of every column kind, defined once and rendered by each format.

A report column has a kind (exports.reports.query.ColumnKind); how a value of that kind looks in
a file is decided here and nowhere else:

| kind      | text (CSV; PDF tables)                       | XLSX                              | Parquet                      |
|-----------|----------------------------------------------|-----------------------------------|------------------------------|
| money     | exact major units: 10.00, 1234, 1.234, -0.05  | number, format by exponent        | decimal128(38, 4), exact     |
|           | (no '+', no thousands separator)             | ('#,##0.00' for USD)              | + currency, currency_exponent |
|           | minor units: integer, header `<name>_minor`  | integer, header `<name>_minor`    | int64 `<name>_minor`         |
| timestamp | TIMESTAMP_STYLES[style] in the column's zone | serial date, 'yyyy-mm-dd hh:mm:ss' | timestamp[us, tz=<zone>]     |
| date      | YYYY-MM-DD                                   | serial date, 'yyyy-mm-dd'         | date32                       |
| integer   | decimal digits                               | number                            | int64                        |
| boolean   | true / false                                 | boolean                           | bool                         |
| string    | as is; CSV guards formulas in user text      | inline string                     | string                       |
| json      | the JSON text                                | inline string                     | string                       |
| NULL      | empty                                        | empty cell                        | null                         |

Renderers: `sqlformat` (ClickHouse SQL: the CSV writer, the PDF tables), `xlsx_writer` (SQL
emitting SpreadsheetML), `parquet_writer` (Arrow types), `exports.money.format_minor` (Python).
Human-facing presentation (thousands separators, locale currency symbols) is the PDF's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TimestampStyle = Literal["stripe", "iso8601"]


@dataclass(frozen=True)
class TimestampRule:
    description: str
    clickhouse_pattern: str  # formatDateTime pattern of the wall time
    with_offset: bool  # followed by the UTC offset as +HH:MM
    excel_format: str


TIMESTAMP_STYLES: dict[str, TimestampRule] = {
    # Stripe's files: wall time in the column's zone (UTC for *_utc columns), no offset.
    "stripe": TimestampRule("YYYY-MM-DD HH:MM:SS, wall time in the column's time zone",
                            "%Y-%m-%d %H:%i:%S", False, "yyyy-mm-dd hh:mm:ss"),
    # Opt-in: ISO 8601 with the offset, so the repeated hour of a DST fall-back is unambiguous.
    "iso8601": TimestampRule("YYYY-MM-DDTHH:MM:SS+HH:MM, ISO 8601 with the UTC offset",
                             "%Y-%m-%dT%H:%i:%S", True, "yyyy-mm-dd hh:mm:ss"),
}
DEFAULT_TIMESTAMP_STYLE = "stripe"
# Documents for people (PDF) write numbers and dates in a CLDR locale (writers.presentation).
DEFAULT_LOCALE = "en_US"

DATE_PATTERN = "%Y-%m-%d"  # ClickHouse formatDateTime
DATE_EXCEL_FORMAT = "yyyy-mm-dd"
BOOLEAN_TEXT = ("true", "false")

# A leading character a spreadsheet would treat as the start of a formula (OWASP CSV injection):
# CSV prefixes user text starting with one with an apostrophe.
FORMULA_START_CHARS = "=+-@\t\r"
# What makes a CSV field need quotes (RFC 4180): the delimiter, the quote, a line break.
CSV_SPECIAL_CHARS = (",", '"', "\n", "\r")

# The largest minor-unit exponent a currency can have (the source's currencies CHECK): Parquet's
# one money scale, so every currency is exact in one schema.
MAX_CURRENCY_EXPONENT = 4
PARQUET_MONEY_PRECISION = 38


def minor_units_name(column: str) -> str:
    """Header of a money column written in integer minor units: it says so."""
    return f"{column}_minor"


def column_headers(columns, money_format: str) -> list[str]:
    """A file's header: the report's column names; money in minor units says so."""
    return [minor_units_name(c.name) if c.kind == "money" and money_format == "minor" else c.name
            for c in columns]


def excel_money_format(exponent: int) -> str:
    """'#,##0' for JPY, '#,##0.00' for USD, '#,##0.000' for KWD."""
    return "#,##0" + ("." + "0" * exponent if exponent else "")


def validate_timestamp_style(style: str) -> str:
    from exports.errors import InvalidParameter

    if style not in TIMESTAMP_STYLES:
        raise InvalidParameter(
            f"Unsupported timestamp format {style!r}; use one of {', '.join(TIMESTAMP_STYLES)} "
            "('iso8601' adds the UTC offset, e.g. 2024-11-03T01:30:00-04:00).",
            param="timestamp_format")
    return style


def parquet_type(kind: str, *, money_format: str = "major", timezone: str = "UTC"):
    """The Arrow type of a column kind in Parquet files: the same for every currency mix and
    for an empty file, so one report type and options always give one schema."""
    import pyarrow as pa

    if kind == "money":
        return (pa.int64() if money_format == "minor"
                else pa.decimal128(PARQUET_MONEY_PRECISION, MAX_CURRENCY_EXPONENT))
    return {"timestamp": pa.timestamp("us", tz=timezone), "date": pa.date32(),
            "integer": pa.int64(), "boolean": pa.bool_()}.get(kind, pa.string())
